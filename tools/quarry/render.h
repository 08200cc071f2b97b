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
nlohmann::json HitsJson(const std::vector<SearchHit>& hits);
// "time: retrieve 0.21 ms, rerank 0.00 ms, correct 0.00 ms, hydrate 0.10 ms"
std::string TimingsLine(const SearchTimings& t);

}  // namespace quarry::cli
