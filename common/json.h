// JSON from files and stored bytes, parsed defensively: nesting is bounded before nlohmann sees the
// text (its serializer and copies recurse, so a line nesting 100,000 arrays overflowed the stack),
// nothing throws, and output never fails on invalid UTF-8 in user strings.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
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

// Reads and parses the JSON file at `path`. NotFound when it does not exist; errors name the path.
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// Reads field `name` of object `j` into `out` when present and not null; a value of another type (an
// integer outside int32 for int fields) is InvalidArgument naming `source` and the field. `required`:
// absence is an error too.
template <typename T>
Status JsonField(const nlohmann::json& j, const char* name, T* out, bool required, const std::string& source) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    return required ? Status::InvalidArgument(source + ": missing field '" + name + "'") : Status::Ok();
  }
  bool fits;
  if constexpr (std::is_same_v<T, std::string>) fits = it->is_string();
  else if constexpr (std::is_same_v<T, bool>) fits = it->is_boolean();
  else if constexpr (std::is_integral_v<T>) fits = it->is_number_integer() && it->template get<int64_t>() >= INT32_MIN &&
                                                   it->template get<int64_t>() <= INT32_MAX;
  else fits = it->is_number();
  if (!fits) return Status::InvalidArgument(source + ": field '" + name + "' has the wrong type (" + it->type_name() + ")");
  *out = it->template get<T>();
  return Status::Ok();
}

// Serialises `j`, writing invalid UTF-8 in strings as U+FFFD rather than failing.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

}  // namespace quarry
