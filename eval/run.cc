#include "quarry/eval.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "common/utf8.h"

namespace quarry::eval {

Result<Run> LoadRun(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open run");
  Run run;
  std::map<std::pair<std::string, std::string>, uint64_t> line_of;
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (n == 1) line = std::string(StripBom(line));
    std::istringstream fields(line);
    std::string qid, q0, doc, rank, score_text;
    if (!(fields >> qid)) continue;  // blank line
    if (!(fields >> q0 >> doc >> rank >> score_text)) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": expected 'qid Q0 docid rank score tag'");
    }
    char* end = nullptr;
    const double score = std::strtod(score_text.c_str(), &end);
    if (end != score_text.c_str() + score_text.size()) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": score '" + score_text + "' is not a number");
    }
    // trec_eval refuses a document retrieved twice for a query (it would be counted twice).
    if (auto [it, fresh] = line_of.emplace(std::make_pair(qid, doc), n); !fresh) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": query '" + qid + "' retrieves document '" + doc +
                                     "' again (first on line " + std::to_string(it->second) + ")");
    }
    run[qid].push_back({doc, score});
  }
  return run;
}

void SortRun(Run* run) {
  for (auto& [qid, entries] : *run) {
    std::sort(entries.begin(), entries.end(), [](const RunEntry& a, const RunEntry& b) {
      if (a.score != b.score) return a.score > b.score;
      return a.doc > b.doc;  // bytewise, as strcmp
    });
  }
}

Status WriteRun(const std::string& path, const Run& run, const std::string& tag) {
  QUARRY_ASSIGN_OR_RETURN(auto writer, RunWriter::Create(path, tag));
  for (const auto& [qid, entries] : run) QUARRY_RETURN_IF_ERROR(writer->Write(qid, entries));
  return writer->Close();
}

RunWriter::RunWriter(std::string path, std::string tag, FILE* file, Target target)
    : path_(std::move(path)), tag_(std::move(tag)), file_(file), target_(target) {}

Result<std::unique_ptr<RunWriter>> RunWriter::Create(const std::string& path, std::string tag) {
  if (std::string why; !IsRunSafeId(tag, &why)) return Status::InvalidArgument(path + ": run tag '" + tag + "' " + why);
  // "-" and /dev/stdout are the process's stdout (opening /dev/stdout anew would truncate a redirected
  // file and write over what stdout writes); other devices and pipes cannot be replaced by a rename,
  // so they are written directly.
  if (path == "-" || path == "/dev/stdout") {
    return std::unique_ptr<RunWriter>(new RunWriter(path, std::move(tag), stdout, Target::kStdout));
  }
  std::error_code ec;
  const bool direct = path.starts_with("/dev/") || (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec));
  const std::string target = direct ? path : path + ".partial";
  FILE* f = std::fopen(target.c_str(), "w");
  if (!f) return Status::IOError(target + ": cannot write run: " + std::strerror(errno));
  return std::unique_ptr<RunWriter>(new RunWriter(path, std::move(tag), f, direct ? Target::kDirect : Target::kRenamed));
}

RunWriter::~RunWriter() {
  if (!file_ || target_ == Target::kStdout) return;
  std::fclose(file_);
  if (target_ == Target::kRenamed) std::remove((path_ + ".partial").c_str());
}

Status RunWriter::Write(const std::string& qid, const std::vector<RunEntry>& entries) {
  std::string why;
  if (!IsRunSafeId(qid, &why)) return Status::InvalidArgument(path_ + ": query id '" + qid + "' " + why);
  for (const auto& e : entries) {
    if (!IsRunSafeId(e.doc, &why)) return Status::InvalidArgument(path_ + ": document id '" + e.doc + "' " + why);
  }
  int rank = 1;
  for (const auto& e : entries) {
    if (std::fprintf(file_, "%s Q0 %s %d %.6f %s\n", qid.c_str(), e.doc.c_str(), rank++, e.score, tag_.c_str()) < 0) {
      return Status::IOError(path_ + ": write failed");
    }
  }
  return Status::Ok();
}

Status RunWriter::Close() {
  if (!file_) return Status::FailedPrecondition(path_ + ": run already closed");
  const bool flushed = std::fflush(file_) == 0 && std::ferror(file_) == 0;
  const bool closed = target_ == Target::kStdout || std::fclose(file_) == 0;
  file_ = nullptr;
  if (target_ != Target::kRenamed) return flushed && closed ? Status::Ok() : Status::IOError(path_ + ": write failed");
  const std::string partial = path_ + ".partial";
  if (!flushed || !closed) {
    std::remove(partial.c_str());
    return Status::IOError(partial + ": write failed");
  }
  if (std::rename(partial.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(partial.c_str());
    return Status::IOError(path_ + ": cannot rename " + partial + " to it: " + why);
  }
  return Status::Ok();
}

double RunFileScore(double score) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", score);
  return std::strtod(buf, nullptr);
}

}  // namespace quarry::eval
