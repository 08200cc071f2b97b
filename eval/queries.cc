#include "quarry/eval.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <optional>
#include <string_view>

#include "common/json.h"
#include "common/utf8.h"

namespace quarry::eval {

namespace {

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t") + 1 - b));
}

// The query id and title of each <top> ... </top> of a TREC topics file (SGML without closing tags
// for <num>, <title>, <desc>, <narr>). The title is the query, as Pyserini reads it by default; a title
// may continue over the lines up to the next tag.
Status ParseTrecTopics(std::istream& in, const std::string& path, std::vector<Query>* queries) {
  std::string line, field;
  std::optional<Query> topic;
  uint64_t topic_line = 0;
  auto where = [&](uint64_t n) { return path + ":" + std::to_string(n) + ": "; };
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1) line = std::string(StripBom(line));
    if (const size_t bad = FindInvalidUtf8(line); bad != std::string::npos) {
      return Status::InvalidArgument(where(n) + "invalid UTF-8 at byte " + std::to_string(bad));
    }
    const std::string text = Trim(line);
    if (text.starts_with("<top>")) {
      if (topic) return Status::InvalidArgument(where(n) + "<top> inside the topic of line " + std::to_string(topic_line));
      topic.emplace();
      topic_line = n;
      field.clear();
    } else if (text.starts_with("</top>")) {
      if (!topic) return Status::InvalidArgument(where(n) + "</top> without <top>");
      if (topic->id.empty()) return Status::InvalidArgument(where(topic_line) + "topic without <num>");
      topic->text = Trim(topic->text);
      if (topic->text.empty()) return Status::InvalidArgument(where(topic_line) + "topic " + topic->id + " has no <title>");
      queries->push_back(std::move(*topic));
      topic.reset();
    } else if (text.starts_with("<")) {
      if (!topic) return Status::InvalidArgument(where(n) + "'" + text.substr(0, 20) + "' outside <top>");
      const size_t close = text.find('>');
      if (close == std::string::npos) return Status::InvalidArgument(where(n) + "unclosed tag");
      field = text.substr(1, close - 1);
      std::string rest = Trim(std::string_view(text).substr(close + 1));
      if (field == "num") {
        if (rest.starts_with("Number:")) rest = Trim(std::string_view(rest).substr(7));
        if (std::string why; rest.empty() || !IsRunSafeId(rest, &why)) {
          return Status::InvalidArgument(where(n) + "bad topic number '" + rest + "'" + (why.empty() ? "" : " " + why));
        }
        topic->id = rest;
      } else if (field == "title") {
        if (rest.starts_with("Topic:")) rest = Trim(std::string_view(rest).substr(6));
        topic->text = rest;
      }
    } else if (topic && field == "title" && !text.empty()) {
      topic->text += " " + text;
    } else if (!topic && !text.empty()) {
      return Status::InvalidArgument(where(n) + "text outside <top>");
    }
  }
  if (topic) return Status::InvalidArgument(where(topic_line) + "<top> without </top>");
  return Status::Ok();
}

bool IsTrecTopics(std::istream& in) {
  std::string line;
  const auto start = in.tellg();
  bool trec = false;
  while (std::getline(in, line)) {
    const std::string text = Trim(StripBom(line));
    if (text.empty() || text == "\r") continue;
    trec = text.starts_with("<top>");
    break;
  }
  in.clear();
  in.seekg(start);
  return trec;
}

}  // namespace

Result<std::vector<Query>> LoadQueries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open queries");
  if (IsTrecTopics(in)) {
    std::vector<Query> topics;
    QUARRY_RETURN_IF_ERROR(ParseTrecTopics(in, path, &topics));
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < topics.size(); ++i) {
      if (!seen.emplace(topics[i].id, i).second) return Status::InvalidArgument(path + ": topic " + topics[i].id + " repeats");
    }
    return topics;
  }
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
