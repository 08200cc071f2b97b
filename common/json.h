// JSON from files and stored bytes, parsed defensively: nesting is bounded before nlohmann sees the
// text (its serializer and copies recurse, so a line nesting 100,000 arrays overflowed the stack),
// nothing throws, and output never fails on invalid UTF-8 in user strings.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "quarry/status.h"

namespace quarry {

inline constexpr size_t kMaxJsonDepth = 256;

// The deepest nesting of arrays and objects in `text` (string contents skipped).
size_t JsonDepth(std::string_view text);

// Parses `text`. InvalidArgument, prefixed by `where` (a file and line, a field), when it is not
// JSON or nests deeper than kMaxJsonDepth.
Result<nlohmann::json> ParseJson(std::string_view text, const std::string& where);

// Serialises `j`, writing invalid UTF-8 in strings as U+FFFD rather than failing.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

}  // namespace quarry
