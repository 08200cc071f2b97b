// Hierarchical-retrieval embeddings: an asymmetric lookup-table dual encoder (a query table and a
// document table, rows unit-normalised, score = inner product) trained with softmax cross-entropy, and
// the pretrain-finetune recipe of You et al. 2025 ("Hierarchical Retrieval: The Geometry and a
// Pretrain-Finetune Recipe"): pretrain on all training pairs, then finetune on long-distance pairs only
// with a lower learning rate and a larger logit scale, keeping the epoch best on validation.
//
// The options, softmaxes and result types are public (include/quarry/hierarchical.h).
// Matrix products use BLAS; the per-row work runs on oneTBB. Training is deterministic for a seed and
// a thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/hierarchical/hierarchy.h"
#include "quarry/hierarchical.h"  // TrainOptions, Embeddings, RecallTable, SearchIndex
#include "quarry/status.h"

namespace quarry::hr {

struct TrainResult {
  Embeddings standard;   // best pretraining epoch on validation
  Embeddings finetuned;  // best finetuning epoch (empty when finetune_epochs == 0)
  size_t best_pretrain_epoch = 0, best_finetune_epoch = 0;  // 0: the starting point was best
  std::vector<EpochReport> log;
};

// One training step's mean loss over `pairs`, with `draws` as the uniform negatives, and its gradient
// with respect to every entry of the raw (unnormalised) tables in `raw` (d_queries, d_docs: same shapes);
// no update is made. Training takes exactly these gradients; exposed so tests can check them against
// finite differences. Pairs and draws must name nodes of `closure`.
double StepGradient(const Closure& closure, const Embeddings& raw, const std::vector<Pair>& pairs,
                    const std::vector<NodeId>& draws, Softmax softmax, float scale, bool mask,
                    std::vector<float>* d_queries, std::vector<float>* d_docs);

// Errors: empty training pairs, dim 0, a pair naming a node outside `closure`.
Result<TrainResult> Train(const Closure& closure, const Split& split, const TrainOptions& options,
                          const std::function<void(const EpochReport&)>& on_epoch = {});

// Searches every distinct query of `pairs` (a seeded sample of `max_queries` when nonzero) against all
// documents with `index` and counts the pairs found.
Result<RecallTable> EvaluateRecall(const Embeddings& e, const Closure& closure, const std::vector<Pair>& pairs,
                                   const SearchIndex& index = {}, size_t max_queries = 0, uint64_t seed = 1);

}  // namespace quarry::hr
