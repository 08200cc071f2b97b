// Hierarchical retrieval (You et al. 2025, "Hierarchical Retrieval: The Geometry and a Pretrain-Finetune
// Recipe"): embeddings of a hierarchy's nodes such that a node's nearest documents are itself and its
// ancestors. Every node is both a query and a document.
//
//   auto data = quarry::hr::Dataset::Load({});                       // WordNet's nouns, seeded split
//   QUARRY_RETURN_IF_ERROR(quarry::hr::CheckStorable("wordnet", *data));
//   auto trained = quarry::hr::TrainEmbeddings(*data, {.dim = 64});  // pretrain, then finetune
//   QUARRY_RETURN_IF_ERROR(quarry::hr::StoreHierarchy("wordnet", *data, trained->final()));
//   auto c = quarry::Collection::Open("wordnet", {.read_only = true});
//   auto dog = quarry::hr::SearchNode(**c, "dog", 8);                // its ancestors, ideally
//
// The stored form is an ordinary collection (nodes as documents, both embedding tables as dense
// vectors, a Flat dense index), so `quarry search --vector` and the library's SearchVector work on it.
// Thread safety: a Dataset is immutable and may be shared by threads; training uses oneTBB threads and
// is deterministic for a seed and a thread count. Errors: Status/Result; no exception escapes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quarry/collection.h"
#include "quarry/status.h"

namespace quarry::hr {

// --- Where a hierarchy comes from, and how its (query, relevant document) pairs are split.
inline constexpr char kDefaultWordNetNouns[] = "/usr/share/wordnet/data.noun";  // Debian's wordnet-base

struct HierarchySource {
  // Default: empty (WordNet). An edge list, "child<TAB>parent" per line ('#' starts a comment).
  std::string edges;
  // Default: kDefaultWordNetNouns. WordNet 3.x data.noun, read when `edges` is empty: one node per
  // synset, parents from its hypernym and instance-hypernym pointers.
  std::string wordnet = kDefaultWordNetNouns;
  // Default: 0.05 and 0.1. Shares of the pairs at distance >= 2 held out for validation and test (self
  // pairs and direct edges always train, so every held-out pair is implied by training pairs).
  double validation_fraction = 0.05, test_fraction = 0.1;
  // Default: 42. Seed of the split.
  uint64_t split_seed = 42;
};

// A hierarchy loaded with its closure (every node's ancestors and their distances) and its split: what
// training, evaluation and storing share. Immutable; copies share one loaded hierarchy.
class Dataset {
 public:
  // Errors name the file and line of a malformed record, a pointer to a missing node, or a cycle.
  static Result<Dataset> Load(const HierarchySource& source);

  size_t n_nodes() const;
  size_t n_pairs() const;  // relevant (query, document) pairs, the self pairs included
  int max_distance() const;
  size_t n_train() const;
  size_t n_validation() const;
  size_t n_test() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Dataset(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// --- Embeddings and their quality.

struct Embeddings {
  size_t dim = 0;
  std::vector<float> queries, docs;  // [n_nodes, dim] each, in node order, rows unit length
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

// Recall on the held-out test pairs and on all pairs (train and held out: the paper's table).
struct RecallReport {
  RecallTable test, all;
};

// The FAISS index (inner product) that recall is measured through: a factory string and its
// search-time knobs (0: FAISS's default; a knob the index lacks is an error).
struct SearchIndex {
  std::string factory = "Flat";
  size_t nprobe = 0, ef_search = 0;
};

// --- Training: an asymmetric lookup-table dual encoder (a query table and a document table, rows
// unit-normalised, score = inner product) trained with softmax cross-entropy. Each step takes `batch`
// training pairs and draws `negatives` documents uniformly. Two softmaxes:
//  - in-batch: a row's candidates are the step's documents (one per pair, repeats kept) plus the
//    uniform draws; a document that is the positive of many pairs (a generic ancestor) is a candidate
//    that many times, so it weighs as a negative in proportion to how often it is a positive.
//  - corpus: the softmax over every document once: the row's relevant documents scored exactly, the
//    others estimated from the uniform draws, each standing for (N - |relevant|) / negatives documents.
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
  // Default: in-batch. Which softmax both phases minimise.
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

struct TrainedEmbeddings {
  Embeddings standard;   // the best pretraining epoch on validation
  Embeddings finetuned;  // the best finetuning epoch (empty when finetune_epochs == 0)
  size_t best_pretrain_epoch = 0, best_finetune_epoch = 0;  // 0: the starting point was best
  RecallReport standard_recall, finetuned_recall;           // by exact search
  bool has_finetuned() const { return finetuned.dim != 0; }
  // The recipe's result: the finetuned embeddings, or the standard ones without finetuning.
  const Embeddings& final() const { return has_finetuned() ? finetuned : standard; }
};

// Pretrains (and finetunes) on the dataset's training pairs, keeping each phase's best epoch on
// validation, then measures both by exact search. `on_epoch` is called after every epoch.
Result<TrainedEmbeddings> TrainEmbeddings(const Dataset& data, const TrainOptions& options,
                                          const std::function<void(const EpochReport&)>& on_epoch = {});

// Recall of `e` (in the dataset's node order) searched through `index`.
Result<RecallReport> EvaluateEmbeddings(const Dataset& data, const Embeddings& e, const SearchIndex& index = {});

// --- Stored hierarchies: a collection holding the nodes as documents (id = node name, title = label,
// text = gloss) and their embeddings (documents' and queries' tables).

// What would make StoreHierarchy fail, checked before minutes of training: node names that cannot be
// document ids, names or glosses that are not UTF-8, or a DIR holding documents other than this
// hierarchy's nodes (StoreHierarchy replaces the collection whole). OK when DIR does not exist.
Status CheckStorable(const std::string& dir, const Dataset& data);
// Writes the nodes and `e` into a new collection beside DIR and exchanges the two directories in one
// rename: a failure or SIGKILL leaves DIR as it was, or holding all of the new state.
Status StoreHierarchy(const std::string& dir, const Dataset& data, const Embeddings& e);
// The embeddings StoreHierarchy stored, in the dataset's node order. NotFound names a node without
// them; FailedPrecondition when `c` holds no hierarchy.
Result<Embeddings> LoadEmbeddings(const Collection& c, const Dataset& data);

// A node's nearest documents by its query embedding (ideally itself and its ancestors). `node` is a
// node name, or else words whose best BM25 match among the node documents is taken as the node.
struct NodeNeighbours {
  std::string node, label;  // the node searched, and its label (the document's title)
  std::vector<SearchHit> hits;
};
// FailedPrecondition when `c` holds no hierarchy (no query embeddings, as `quarry hr train DIR` stores);
// NotFound when no node matches.
Result<NodeNeighbours> SearchNode(const Collection& c, std::string_view node, size_t k);

}  // namespace quarry::hr
