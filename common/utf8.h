// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace quarry {

// Returns the byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

// An identifier that a TREC run or qrels line can hold: non-empty, no ASCII whitespace or control
// character (those files separate fields by whitespace), no leading byte order mark (readers strip one
// from a first line). `why` says what is wrong otherwise.
bool IsRunSafeId(std::string_view id, std::string* why);

// `line` without a leading UTF-8 byte order mark (files saved by some editors start with one).
inline std::string_view StripBom(std::string_view line) {
  return line.starts_with("\xEF\xBB\xBF") ? line.substr(3) : line;
}

// Truncates to at most `max_bytes` without splitting a code point (for snippets).
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace quarry
