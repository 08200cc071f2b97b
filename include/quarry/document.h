// A document as users give and get it.
#pragma once

#include <string>

namespace quarry {

struct Document {
  std::string id;        // external id, unique in a collection, non-empty UTF-8
  std::string title;     // may be empty
  std::string text;      // may be empty
  std::string metadata;  // compact JSON text of the input's metadata value; empty when none
};

inline bool operator==(const Document& a, const Document& b) {
  return a.id == b.id && a.title == b.title && a.text == b.text && a.metadata == b.metadata;
}

}  // namespace quarry
