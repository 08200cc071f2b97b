#include "storage/document_codec.h"

#include "common/coding.h"

namespace quarry {

std::string EncodeDocument(const Document& doc) {
  std::string out;
  out.reserve(doc.id.size() + doc.title.size() + doc.text.size() + doc.metadata.size() + 16);
  out.push_back(static_cast<char>(kDocumentRecordVersion));
  PutLengthPrefixed(&out, doc.id);
  PutLengthPrefixed(&out, doc.title);
  PutLengthPrefixed(&out, doc.text);
  PutLengthPrefixed(&out, doc.metadata);
  return out;
}

Status DecodeDocument(std::string_view bytes, Document* doc) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kDocumentRecordVersion) {
    return Status::Corruption("document record: unknown version");
  }
  bytes.remove_prefix(1);
  std::string_view id, title, text, metadata;
  if (!GetLengthPrefixed(&bytes, &id) || !GetLengthPrefixed(&bytes, &title) ||
      !GetLengthPrefixed(&bytes, &text) || !GetLengthPrefixed(&bytes, &metadata) || !bytes.empty()) {
    return Status::Corruption("document record: truncated or over-long");
  }
  doc->id.assign(id);
  doc->title.assign(title);
  doc->text.assign(text);
  doc->metadata.assign(metadata);
  return Status::Ok();
}

}  // namespace quarry
