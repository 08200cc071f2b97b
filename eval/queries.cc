#include "eval/queries.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace quarry::eval {

Result<std::vector<Query>> LoadQueries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open queries");
  const bool jsonl = path.ends_with(".jsonl") || path.ends_with(".json");
  std::vector<Query> queries;
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto where = [&] { return path + ":" + std::to_string(n) + ": "; };
    if (jsonl) {
      try {
        auto j = nlohmann::json::parse(line);
        const auto& id = j.at("_id");
        queries.push_back({id.is_string() ? id.get<std::string>() : id.dump(), j.at("text").get<std::string>()});
      } catch (const nlohmann::json::exception& e) {
        return Status::InvalidArgument(where() + "bad query line: " + e.what());
      }
    } else {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos) return Status::InvalidArgument(where() + "expected 'qid<TAB>text'");
      queries.push_back({line.substr(0, tab), line.substr(tab + 1)});
    }
  }
  return queries;
}

}  // namespace quarry::eval
