#include "tools/quarry/render.h"

namespace quarry::cli {

std::string Highlight(const SearchHit& hit, bool colour) {
  if (!colour) return hit.snippet;
  std::string out;
  size_t at = 0;
  for (auto [b, e] : hit.highlights) {
    out.append(hit.snippet, at, b - at);
    out += "\033[1;33m";
    out.append(hit.snippet, b, e - b);
    out += "\033[0m";
    at = e;
  }
  out.append(hit.snippet, at);
  return out;
}

void PrintHits(FILE* out, const std::vector<SearchHit>& hits, bool colour) {
  if (hits.empty()) std::fprintf(out, "no hits\n");
  int rank = 1;
  for (const auto& h : hits) {
    std::fprintf(out, "%3d  %-12s %8.4f  %s\n", rank++, h.id.c_str(), h.score, h.title.c_str());
    std::fprintf(out, "     %s\n", Highlight(h, colour).c_str());
  }
}

nlohmann::json HitsJson(const std::vector<SearchHit>& hits) {
  nlohmann::json j = nlohmann::json::array();
  int rank = 1;
  for (const auto& h : hits) {
    j.push_back({{"rank", rank++}, {"id", h.id}, {"score", h.score}, {"title", h.title}, {"snippet", h.snippet}});
  }
  return j;
}

std::string TimingsLine(const SearchTimings& t) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "time: retrieve %.2f ms, rerank %.2f ms, correct %.2f ms, hydrate %.2f ms",
                t.retrieve_ms, t.rerank_ms, t.correct_ms, t.hydrate_ms);
  return buf;
}

}  // namespace quarry::cli
