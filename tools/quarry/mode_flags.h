// First-stage retrieval flags shared by `quarry search` and `quarry eval`: --mode, --fusion, --alpha,
// --rrf-k, --fusion-depth; and the FAISS search knobs shared by `quarry index` and `quarry hr eval`.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "quarry/options.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

struct ModeFlags {
  RetrievalMode mode = RetrievalMode::kBm25;
  Fusion fusion = Fusion::kRrf;
  float alpha = 0.5f;
  size_t rrf_k = 60, fusion_depth = 100;

  // "bm25", "dense", "hybrid-rrf", "hybrid-linear0.3": names a run.
  std::string Name() const {
    if (mode == RetrievalMode::kBm25) return "bm25";
    if (mode == RetrievalMode::kDense) return "dense";
    if (fusion == Fusion::kRrf) return "hybrid-rrf";
    char alpha_text[32];
    std::snprintf(alpha_text, sizeof alpha_text, "%g", alpha);
    return std::string("hybrid-linear") + alpha_text;
  }

  void ApplyTo(SearchOptions* o) const {
    o->mode = mode;
    o->fusion = fusion;
    o->alpha = alpha;
    o->rrf_k = rrf_k;
    o->fusion_depth = fusion_depth;
  }
};

inline void AddModeFlags(CLI::App* cmd, ModeFlags* f) {
  AddChoice<RetrievalMode>(cmd, "--mode", &f->mode,
                           {{"bm25", RetrievalMode::kBm25}, {"dense", RetrievalMode::kDense}, {"hybrid", RetrievalMode::kHybrid}},
                           "first stage: bm25, dense (needs `quarry index`), hybrid (both, fused)", "bm25");
  AddChoice<Fusion>(cmd, "--fusion", &f->fusion, {{"rrf", Fusion::kRrf}, {"linear", Fusion::kLinear}},
                    "hybrid fusion: rrf (reciprocal rank) or linear (min-max normalised)", "rrf");
  cmd->add_option("--alpha", f->alpha, "weight of the dense list in linear fusion")->capture_default_str();
  cmd->add_option("--rrf-k", f->rrf_k, "rank offset of reciprocal rank fusion")->capture_default_str();
  cmd->add_option("--fusion-depth", f->fusion_depth, "candidates taken from each list before fusing")
      ->capture_default_str();
}

// --nprobe and --ef-search: the FAISS index's search-time knobs (0: FAISS's default).
inline void AddSearchKnobFlags(CLI::App* cmd, size_t* nprobe, size_t* ef_search) {
  cmd->add_option("--nprobe", *nprobe, "IVF lists visited per query (0: FAISS default)")->capture_default_str();
  cmd->add_option("--ef-search", *ef_search, "HNSW search list size (0: FAISS default)")->capture_default_str();
}

}  // namespace quarry::cli
