#include "quarry/eval.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "common/json.h"
#include "common/utf8.h"

namespace quarry::eval {

Result<std::vector<Query>> LoadQueries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open queries");
  const bool jsonl = path.ends_with(".jsonl") || path.ends_with(".json");
  std::vector<Query> queries;
  std::map<std::string, uint64_t> line_of;  // qid -> the line that defined it
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1) line = std::string(StripBom(line));
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto where = [&] { return path + ":" + std::to_string(n) + ": "; };
    if (const size_t bad = FindInvalidUtf8(line); bad != std::string::npos) {
      return Status::InvalidArgument(where() + "invalid UTF-8 at byte " + std::to_string(bad));
    }
    Query q;
    if (jsonl) {
      auto j = ParseJson(line, path + ":" + std::to_string(n));
      if (!j.ok()) return j.status();
      const auto id = j->is_object() ? j->find("_id") : j->end();
      const auto text = j->is_object() ? j->find("text") : j->end();
      if (id == j->end() || !(id->is_string() || id->is_number_integer() || id->is_number_unsigned()) ||
          text == j->end() || !text->is_string()) {
        return Status::InvalidArgument(where() + "expected {\"_id\": string or integer, \"text\": string}");
      }
      q = {id->is_string() ? id->get<std::string>() : id->dump(), text->get<std::string>()};
    } else {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos) return Status::InvalidArgument(where() + "expected 'qid<TAB>text'");
      q = {line.substr(0, tab), line.substr(tab + 1)};
    }
    if (std::string why; !IsRunSafeId(q.id, &why)) return Status::InvalidArgument(where() + "query id '" + q.id + "' " + why);
    if (auto [it, fresh] = line_of.emplace(q.id, n); !fresh) {
      return Status::InvalidArgument(where() + "query id '" + q.id + "' repeats line " + std::to_string(it->second));
    }
    queries.push_back(std::move(q));
  }
  return queries;
}

}  // namespace quarry::eval
