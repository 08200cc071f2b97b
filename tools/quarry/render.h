// How hits look on a terminal and in JSON; shared by `quarry search` and `quarry shell`.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quarry/collection.h"

namespace quarry::cli {

// The snippet with query terms in bold yellow when `colour`, plain otherwise.
std::string Highlight(const SearchHit& hit, bool colour);
// "  1  id           score  title" and an indented snippet line per hit ("no hits" when empty).
void PrintHits(FILE* out, const std::vector<SearchHit>& hits, bool colour);
// Rank, id, score, title, snippet and the stages' scores (those that ran) of each hit.
nlohmann::json HitsJson(const std::vector<SearchHit>& hits);
// A float as JSON with the digits it has: 10.191782, not 10.191781997680664 (its widened double).
nlohmann::json FloatJson(float v);
// Each stage's wall time in milliseconds: {"retrieve_ms": ..., "rerank_ms": ..., ...}.
nlohmann::json TimingsJson(const SearchTimings& t);
// "time: retrieve 0.21 ms, rerank 0.00 ms, correct 0.00 ms, hydrate 0.10 ms"
std::string TimingsLine(const SearchTimings& t);

}  // namespace quarry::cli
