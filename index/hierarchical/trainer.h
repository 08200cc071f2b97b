// Hierarchical-retrieval embeddings: an asymmetric lookup-table dual encoder (a query table and a
// document table, rows unit-normalised, score = inner product) trained with softmax cross-entropy, and
// the pretrain-finetune recipe of You et al. 2025 ("Hierarchical Retrieval: The Geometry and a
// Pretrain-Finetune Recipe"): pretrain on all training pairs, then finetune on long-distance pairs only
// with a lower learning rate and a larger logit scale, keeping the epoch best on validation.
//
// Each step takes `batch` training pairs and draws `negatives` documents uniformly. Two softmaxes:
//  - in-batch: a row's candidates are the step's documents (one per pair, repeats kept) plus the
//    uniform draws; a document that is the positive of many pairs (a generic ancestor) is a candidate
//    that many times, so it weighs as a negative in proportion to how often it is a positive.
//  - corpus: the softmax over every document once, as with a full softmax: the row's relevant
//    documents (the query and its ancestors) are scored exactly, and the other documents are
//    estimated from the uniform draws, each standing for (N - |relevant|) / negatives documents.
// Masking (mask_false_negatives) drops the row's relevant documents other than its positive from the
// softmax, so a true ancestor is never pushed away.
// Matrix products use BLAS; the per-row work runs on oneTBB. Training is deterministic for a seed and
// a thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/hierarchical/hierarchy.h"
#include "quarry/status.h"

namespace quarry::hr {

struct Embeddings {
  size_t dim = 0;
  std::vector<float> queries, docs;  // [n_nodes, dim] each, rows unit length
  size_t n_nodes() const { return dim ? docs.size() / dim : 0; }
};

// Recall of (query, document) pairs by distance, each query cut at k = |relevant(query)| (itself and
// all its ancestors in the whole hierarchy, whatever the split): a query that ranks its relevant
// documents first scores 1 at every distance, and a short list cannot buy recall by returning more.
struct RecallTable {
  std::vector<uint64_t> hits, total;  // indexed by distance
  uint64_t n_queries = 0;
  double query_recall_sum = 0;  // sum over queries of the share of their pairs found
  double Recall(size_t distance) const;
  double Overall() const;   // over all pairs (micro average)
  double PerQuery() const;  // mean over queries of the share of their pairs found (macro average)
};

enum class Softmax { kInBatch, kCorpus };
const char* SoftmaxName(Softmax s);
Result<Softmax> ParseSoftmax(const std::string& name);  // "in-batch" or "corpus"

struct TrainOptions {
  // Default: 64. Embedding dimension.
  size_t dim = 64;
  // Default: 1024. Training pairs per step.
  size_t batch = 1024;
  // Default: 1024. Uniformly drawn documents added to every step's candidates.
  size_t negatives = 1024;
  // Default: in-batch. Which softmax both phases minimise (see the top of this file).
  Softmax softmax = Softmax::kInBatch;
  // Default: 20. Pretraining epochs over all training pairs (the "standard" recipe stops here).
  size_t epochs = 20;
  // Default: 0.01. Adam learning rate of pretraining.
  float lr = 0.01f;
  // Default: 40. Logit scale (inverse temperature) of pretraining. With in-batch negatives it sets how
  // much the long distances are lost (WordNet d=64 overall: 47.9% at 10, 55.3% at 20, 60.3% at 40);
  // 40 comes closest to the paper's standard row.
  float scale = 40.0f;
  // Default: 30 (0: the standard recipe only). Finetuning epochs over long-distance training pairs.
  size_t finetune_epochs = 30;
  // Default: 0.001. Adam learning rate of finetuning.
  float finetune_lr = 0.001f;
  // Default: 50. Logit scale of finetuning.
  float finetune_scale = 50.0f;
  // Default: 4. Pairs at least this far apart are finetuned on.
  size_t finetune_min_distance = 4;
  // Default: false, as in standard in-batch softmax training: every other candidate is a negative, so
  // the generic ancestors that many queries share (other rows' positives) are pushed away from the
  // queries they belong to, the paper's "lost in the long distance". True masks candidates relevant to
  // the row's query out of its softmax, which avoids the loss in the first place.
  bool mask_false_negatives = false;
  // Default: true. The same for finetuning, where every candidate is a generic (long-distance) document
  // and unmasked, most of a row's candidates would be its own ancestors.
  bool finetune_mask_false_negatives = true;
  // Default: 3000. Validation queries evaluated after each epoch (0: all).
  size_t validation_queries = 3000;
  // Default: 1.
  uint64_t seed = 1;
};

struct EpochReport {
  std::string phase;  // "pretrain" or "finetune"
  size_t epoch = 0;   // 1-based within the phase
  double loss = 0;    // mean training cross-entropy
  double validation_recall = 0;
  double seconds = 0;  // since training began
};

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

// The FAISS index (inner product) EvaluateRecall searches: a factory string and its search-time knobs
// (0: FAISS's default; a knob the index lacks is an error).
struct SearchIndex {
  std::string factory = "Flat";
  size_t nprobe = 0, ef_search = 0;
};

// Searches every distinct query of `pairs` (a seeded sample of `max_queries` when nonzero) against all
// documents with `index` and counts the pairs found.
Result<RecallTable> EvaluateRecall(const Embeddings& e, const Closure& closure, const std::vector<Pair>& pairs,
                                   const SearchIndex& index = {}, size_t max_queries = 0, uint64_t seed = 1);

}  // namespace quarry::hr
