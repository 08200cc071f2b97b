#include "storage/document_reader.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "common/json.h"
#include "common/utf8.h"

namespace quarry {

Result<std::unique_ptr<DocumentReader>> DocumentReader::Open(const std::string& path,
                                                             const ReaderOptions& options) {
  std::unique_ptr<DocumentReader> r(new DocumentReader());
  r->path_ = path;
  r->options_ = options;
  if (options.format == InputFormat::kBeir) {
    r->options_.id_field = "_id";
    r->options_.title_field = "title";
    r->options_.text_field = "text";
    r->options_.metadata_field = "metadata";
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound(path + ": no such file");
  r->total_bytes_ = std::filesystem::file_size(path, ec);
  r->in_.open(path, std::ios::binary);
  if (!r->in_) return Status::IOError(path + ": cannot open for reading");
  return r;
}

Status DocumentReader::Error(const std::string& what) const {
  return Status::InvalidArgument(path_ + ":" + std::to_string(line_number_) + ": " + what);
}

Result<bool> DocumentReader::Next(Document* doc) {
  while (std::getline(in_, line_)) {
    ++line_number_;
    bytes_read_ += line_.size() + 1;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_number_ == 1 && line_.starts_with("\xEF\xBB\xBF")) line_.erase(0, 3);  // a byte order mark
    if (line_.find_first_not_of(" \t") == std::string::npos) continue;
    if (const size_t bad = FindInvalidUtf8(line_); bad != std::string::npos) {
      return Error("invalid UTF-8 at byte " + std::to_string(bad));
    }
    Status s = options_.format == InputFormat::kMsMarco ? ParseTsv(doc) : ParseJson(doc);
    if (!s.ok()) return s;
    if (doc->id.empty()) return Error("empty document id");
    if (std::string why; !IsRunSafeId(doc->id, &why)) return Error("document id '" + doc->id + "' " + why);
    const uint64_t size = doc->title.size() + doc->text.size() + doc->metadata.size();
    if (size > options_.max_doc_bytes) {
      return Error("document '" + doc->id + "' is " + std::to_string(size) + " bytes, over the limit of " +
                   std::to_string(options_.max_doc_bytes) + " (--max-doc-bytes)");
    }
    return true;
  }
  if (in_.bad()) return Status::IOError(path_ + ": read failed after line " + std::to_string(line_number_));
  return false;
}

Status DocumentReader::ParseTsv(Document* doc) {
  const size_t tab = line_.find('\t');
  if (tab == std::string::npos) return Error("expected 'pid<TAB>text', found no tab");
  doc->id.assign(line_, 0, tab);
  doc->title.clear();
  doc->text.assign(line_, tab + 1);
  doc->metadata.clear();
  return Status::Ok();
}

namespace {

// Ids may be JSON strings or integers (some corpora write numeric ids).
bool JsonIdToString(const nlohmann::json& v, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  if (v.is_number_integer() || v.is_number_unsigned()) {
    *out = v.dump();
    return true;
  }
  return false;
}

}  // namespace

Status DocumentReader::ParseJson(Document* doc) {
  auto parsed = quarry::ParseJson(line_, "");
  if (!parsed.ok()) return Error(parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Error("expected a JSON object");
  auto id = j.find(options_.id_field);
  if (id == j.end()) return Error("missing id field \"" + options_.id_field + "\"");
  if (!JsonIdToString(*id, &doc->id)) return Error("field \"" + options_.id_field + "\" is not a string");
  auto text = j.find(options_.text_field);
  if (text == j.end()) return Error("missing text field \"" + options_.text_field + "\"");
  if (!text->is_string()) return Error("field \"" + options_.text_field + "\" is not a string");
  doc->text = text->get<std::string>();
  doc->title.clear();
  if (auto title = j.find(options_.title_field); title != j.end() && !title->is_null()) {
    if (!title->is_string()) return Error("field \"" + options_.title_field + "\" is not a string");
    doc->title = title->get<std::string>();
  }
  doc->metadata.clear();
  if (auto meta = j.find(options_.metadata_field); meta != j.end() && !meta->is_null()) {
    doc->metadata = DumpJson(*meta);
  }
  return Status::Ok();
}

}  // namespace quarry
