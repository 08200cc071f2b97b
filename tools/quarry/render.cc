#include "tools/quarry/render.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

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

nlohmann::json FloatJson(float v) {
  if (!std::isfinite(v)) return nullptr;
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, v).ptr;  // shortest text that reads back as v
  return std::strtod(std::string(text, end).c_str(), nullptr);
}

nlohmann::json HitsJson(const std::vector<SearchHit>& hits) {
  nlohmann::json j = nlohmann::json::array();
  int rank = 1;
  for (const auto& h : hits) {
    nlohmann::json stages = nlohmann::json::object();
    if (!std::isnan(h.stages.bm25)) stages["bm25"] = FloatJson(h.stages.bm25);
    if (!std::isnan(h.stages.dense)) stages["dense"] = FloatJson(h.stages.dense);
    if (!std::isnan(h.stages.resmem_base)) {
      stages["resmem_base"] = h.stages.resmem_base;
      stages["resmem_correction"] = h.stages.resmem_correction;
    }
    if (!std::isnan(h.stages.rerank)) stages["rerank"] = h.stages.rerank;
    j.push_back({{"rank", rank++}, {"id", h.id}, {"score", FloatJson(h.score)}, {"stages", std::move(stages)},
                 {"title", h.title}, {"snippet", h.snippet}});
  }
  return j;
}

nlohmann::json TimingsJson(const SearchTimings& t) {
  return {{"retrieve_ms", t.retrieve_ms}, {"rerank_ms", t.rerank_ms}, {"correct_ms", t.correct_ms},
          {"hydrate_ms", t.hydrate_ms}};
}

std::string TimingsLine(const SearchTimings& t) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "time: retrieve %.2f ms, rerank %.2f ms, correct %.2f ms, hydrate %.2f ms",
                t.retrieve_ms, t.rerank_ms, t.correct_ms, t.hydrate_ms);
  return buf;
}

}  // namespace quarry::cli
