#include "quarry/eval.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <utility>

#include "common/utf8.h"
#include <sstream>

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
  std::string why;
  for (const auto& [qid, entries] : run) {
    if (!IsRunSafeId(qid, &why)) return Status::InvalidArgument(path + ": query id '" + qid + "' " + why);
    for (const auto& e : entries) {
      if (!IsRunSafeId(e.doc, &why)) return Status::InvalidArgument(path + ": document id '" + e.doc + "' " + why);
    }
  }
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return Status::IOError(path + ": cannot write run");
  for (const auto& [qid, entries] : run) {
    int rank = 1;
    for (const auto& e : entries) {
      std::fprintf(f, "%s Q0 %s %d %.6f %s\n", qid.c_str(), e.doc.c_str(), rank++, e.score, tag.c_str());
    }
  }
  if (std::fclose(f) != 0) return Status::IOError(path + ": write failed");
  return Status::Ok();
}

double RunFileScore(double score) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", score);
  return std::strtod(buf, nullptr);
}

}  // namespace quarry::eval
