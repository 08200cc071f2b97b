// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <string_view>

namespace quarry {

// Returns the byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

// Truncates to at most `max_bytes` without splitting a code point (for snippets).
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace quarry
