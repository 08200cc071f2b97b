// Value format of the `docs` column family (docs/formats.md, "Document record").
#pragma once

#include <string>
#include <string_view>

#include "quarry/document.h"
#include "quarry/status.h"

namespace quarry {

inline constexpr uint8_t kDocumentRecordVersion = 1;

std::string EncodeDocument(const Document& doc);
// Corruption when the bytes are not a complete version-1 record.
Status DecodeDocument(std::string_view bytes, Document* doc);

}  // namespace quarry
