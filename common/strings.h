// Small string helpers for helpful errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quarry {

// Levenshtein distance (insertions, deletions and substitutions of bytes).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` for a "did you mean" hint: one that `word` is a prefix of, else the
// nearest within `max_distance` edits; empty when none is that close. Ties go to the first candidate.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates, size_t max_distance = 2);

}  // namespace quarry
