#include "common/utf8.h"

#include <cstdint>

namespace quarry {

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min_cp, cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, min_cp = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min_cp = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min_cp = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t j = 1; j < len; ++j) {
      if ((p[i + j] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + j] & 0x3f);
    }
    if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<uint8_t>(s[end]) & 0xc0) == 0x80) --end;
  return s.substr(0, end);
}

bool IsRunSafeId(std::string_view id, std::string* why) {
  if (id.empty()) {
    *why = "is empty";
    return false;
  }
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      *why = u == ' ' ? "contains a space" : u == '\t' ? "contains a tab" : "contains a control character";
      *why += " (TREC runs and qrels separate fields by whitespace)";
      return false;
    }
  }
  if (id.starts_with("\xEF\xBB\xBF")) {
    *why = "starts with a byte order mark (which readers strip from a file's first line)";
    return false;
  }
  return true;
}

}  // namespace quarry
