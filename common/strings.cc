#include "common/strings.h"

#include <algorithm>

namespace quarry {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];  // row[i-1][j-1]
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates, size_t max_distance) {
  if (word.empty()) return "";
  for (const auto& c : candidates) {
    if (c.starts_with(word)) return c;
  }
  std::string best;
  size_t best_distance = max_distance + 1;
  for (const auto& c : candidates) {
    if (const size_t d = EditDistance(word, c); d < best_distance) best_distance = d, best = c;
  }
  return best;
}

}  // namespace quarry
