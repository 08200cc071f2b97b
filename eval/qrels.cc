#include "quarry/eval.h"

#include <charconv>
#include <fstream>
#include <map>

#include "common/utf8.h"
#include <sstream>
#include <vector>

namespace quarry::eval {

namespace {

std::vector<std::string> SplitWhitespace(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(std::move(f));
  return fields;
}

}  // namespace

Result<Qrels> LoadQrels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open qrels");
  Qrels qrels;
  std::map<std::pair<std::string, std::string>, uint64_t> line_of;
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (n == 1) line = std::string(StripBom(line));
    auto f = SplitWhitespace(line);
    if (f.empty()) continue;
    if (n == 1 && f[0] == "query-id") continue;  // BEIR header
    if (f.size() != 3 && f.size() != 4) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) +
                                     ": expected 'qid docid grade' or 'qid iter docid grade'");
    }
    const std::string& grade_text = f.back();
    int grade = 0;
    auto [p, ec] = std::from_chars(grade_text.data(), grade_text.data() + grade_text.size(), grade);
    if (ec != std::errc() || p != grade_text.data() + grade_text.size()) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": grade '" + grade_text + "' is not an integer");
    }
    // trec_eval refuses a judgement given twice; silently keeping either would be a guess.
    if (auto [it, fresh] = line_of.emplace(std::make_pair(f[0], f[f.size() - 2]), n); !fresh) {
      return Status::InvalidArgument(path + ":" + std::to_string(n) + ": query '" + f[0] + "' judges document '" +
                                     f[f.size() - 2] + "' again (first on line " + std::to_string(it->second) + ")");
    }
    qrels[f[0]][f[f.size() - 2]] = grade;
  }
  return qrels;
}

}  // namespace quarry::eval
