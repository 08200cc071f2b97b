// Collection: a directory holding Quarry's documents and indexes (a RocksDB database).
//
//   auto c = quarry::Collection::Open("scifact", {.create_if_missing = true});
//   if (!c.ok()) { std::cerr << c.status().ToString(); return 1; }
//   auto report = (*c)->IngestFile("corpus.jsonl", {}, {});
//   auto hits = (*c)->Search("cholesterol statins", {.k = 10});
//
// Thread safety: every method may be called from many threads at once. Writes (Upsert, Delete,
// IngestFile) are serialised; each write batch is atomic. Readers see consistent snapshots: a Get or
// a Search never observes half of a batch. Search answers from an in-memory index that is reloaded
// after writes.
// Errors: every call returns Status/Result; no exception escapes.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quarry/document.h"
#include "quarry/options.h"
#include "quarry/status.h"

namespace quarry {

struct IngestReport {
  uint64_t n_read = 0;      // valid documents read
  uint64_t n_added = 0;     // new ids
  uint64_t n_replaced = 0;  // ids that existed (upserts)
  uint64_t n_skipped = 0;   // bad lines skipped (skip_invalid)
  uint64_t n_batches = 0;
  uint64_t n_lines = 0;     // input lines consumed
  double seconds = 0;
};

// What each pipeline stage made of a hit (for :explain and debugging).
struct HitStages {
  float bm25 = std::numeric_limits<float>::quiet_NaN();  // NaN: not retrieved by BM25 (added later)
  float dense = std::numeric_limits<float>::quiet_NaN();  // inner product (or -squared L2); NaN: not retrieved densely
  double resmem_base = std::numeric_limits<double>::quiet_NaN();  // calibrated BM25 probability; NaN: no ResMem
  double resmem_correction = 0;                                    // ResMem's lambda * sum w r
  double rerank = std::numeric_limits<double>::quiet_NaN();        // BlockRank score; NaN: not reranked
};

struct SearchHit {
  std::string id;
  float score = 0;          // the final score (BM25, dense, fused, or ResMem's corrected probability)
  HitStages stages;
  uint32_t doc = 0;        // internal doc number
  std::string title, text;  // filled when SearchOptions::hydrate
  std::string snippet;      // a window of the text around the first query-term match (hydrate)
  std::vector<std::pair<size_t, size_t>> highlights;  // byte spans of query terms in `snippet`
};

// Wall time of each stage of one search, in milliseconds.
struct SearchTimings {
  double retrieve_ms = 0;  // analysis and BM25 top-k
  double rerank_ms = 0;    // BlockRank
  double correct_ms = 0;   // ResMem
  double hydrate_ms = 0;   // titles, texts and snippets
};

struct CollectionStats {
  uint32_t format_version = 0;
  uint64_t n_docs = 0;           // live documents
  uint64_t next_docnum = 0;      // doc numbers ever assigned
  uint64_t lex_doc_count = 0;    // documents with at least one indexed term
  uint64_t lex_sum_ttf = 0;      // indexed terms in all documents
  uint64_t lex_segments = 0;     // lexical index segment files
  uint64_t lex_bytes = 0;        // their bytes
  uint64_t lex_postings = 0;     // postings they hold (dead documents' included until merged away)
  uint64_t lex_dead = 0;         // deleted or replaced documents whose postings remain in segments
  uint64_t disk_bytes = 0;
};

// A query with relevance judgements (doc id -> grade; grade > 0 is relevant), for ResMem.
struct LabeledQuery {
  std::string id, text;
  std::map<std::string, int> judgements;
};

struct ResMemTuningRow {
  ResMemOptions options;
  double validation_ndcg10 = 0;
};

struct ResMemTuning {
  std::vector<ResMemTuningRow> rows;  // every grid point, in grid order
  ResMemOptions best;                 // the row with the highest validation nDCG@10 (first on ties)
  double best_ndcg10 = 0;
  double baseline_ndcg10 = 0;         // the base pipeline on the same validation queries
  size_t n_memory = 0, n_validation = 0;
};

// Which stored vectors: the document tower's (what the dense index searches), or the query tower's of
// documents that are themselves queries (hierarchical retrieval).
enum class VectorTable { kDocuments, kQueries };

struct DenseIndexInfo {
  size_t dim = 0;
  uint64_t n_vectors = 0;       // document vectors stored
  std::string factory, metric;  // metric: "ip" or "l2"
  std::string encoder;          // empty: imported vectors
  size_t nprobe = 0, ef_search = 0;
  uint64_t file_bytes = 0;      // DIR/dense.faiss; 0 until an index has been written
  bool rebuilt = false;         // the last load found the file missing, stale or corrupt and rebuilt it
  uint64_t n_unindexed = 0;     // vectors written since the index file, searched exactly from memory
                                // until the next one (known once a dense search has loaded the index)
};

// What DenseIndex::Tune chose: the cheapest setting of the index's knob reaching the target recall@k.
struct DenseTuning {
  std::string knob;  // "nprobe" (IVF) or "efSearch" (HNSW)
  size_t chosen = 0;
  double recall = 0;      // at `chosen`, mean over the sample queries
  double recall_low = 0;  // its one-sided 95% lower confidence bound, which must reach the target
  bool reached = false;
  std::vector<std::pair<size_t, double>> tried;  // (value, recall) in the order tried
};

struct CheckReport {
  uint64_t n_docs = 0;
  uint64_t n_ids = 0;
  uint64_t n_indexed = 0;   // live documents in the lexical segments
  uint64_t n_segments = 0;
  uint64_t n_postings = 0;
  uint64_t n_vectors = 0;  // dense vectors (both tables)
  std::vector<std::string> problems;  // empty when the column families agree
  bool ok() const { return problems.empty(); }
};

class DenseIndex;
class Reranking;
class ResMemory;

// A collection's documents and search. What each index area adds is reached through a facade:
// dense() (vectors and the FAISS index), rerank() (BlockRank), resmem() (the residual memory); the
// hierarchical-retrieval pipeline is in quarry/hierarchical.h, evaluation in quarry/eval.h.
class Collection {
 public:
  static Result<std::unique_ptr<Collection>> Open(const std::string& dir, const OpenOptions& options = {});
  ~Collection();
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  const std::string& dir() const;

  // --- Documents ---
  // Adds or replaces (by id) the documents as one atomic batch. Ids must be non-empty UTF-8; a later
  // duplicate in `docs` replaces an earlier one.
  Status Upsert(const std::vector<Document>& docs);
  // true when the id existed and is now deleted; false when there was no such id.
  Result<bool> Delete(std::string_view id);
  Result<std::optional<Document>> Get(std::string_view id) const;
  // Streams a corpus file into the collection in atomic batches. On a bad line (without skip_invalid)
  // it returns the error naming file and line; earlier batches stay committed, the failing batch is
  // not applied.
  Result<IngestReport> IngestFile(const std::string& path, const ReaderOptions& reader,
                                  const IngestOptions& options);

  // --- Search: BM25 (Lucene 8 EnglishAnalyzer, k1 0.9, b 0.4) over title + " " + text, dense or
  // hybrid (SearchOptions::mode), then BlockRank (rerank) and ResMem (resmem) when the options ask.
  // Loads the in-memory search index now rather than on the first Search.
  Status Preload() const;
  // `timings`, when given, receives each stage's wall time.
  Result<std::vector<SearchHit>> Search(std::string_view query, const SearchOptions& options = {},
                                        SearchTimings* timings = nullptr) const;
  // Many queries in parallel (oneTBB); results in input order.
  Result<std::vector<std::vector<SearchHit>>> SearchBatch(const std::vector<std::string>& queries,
                                                          const SearchOptions& options = {}) const;
  // Top options.k documents for a query vector (already embedded), best first; score = inner product,
  // or negated squared L2 distance.
  Result<std::vector<SearchHit>> SearchVector(const std::vector<float>& query, const SearchOptions& options = {}) const;

  // --- Index areas ---
  DenseIndex& dense() { return *dense_; }
  const DenseIndex& dense() const { return *dense_; }
  Reranking& rerank() { return *rerank_; }
  const Reranking& rerank() const { return *rerank_; }
  ResMemory& resmem() { return *resmem_; }
  const ResMemory& resmem() const { return *resmem_; }

  // --- Maintenance ---
  // Merges the lexical segments into one without the postings of deleted and replaced documents
  // (searches go on meanwhile). Returns the number of dead documents whose postings were dropped.
  Result<uint64_t> Compact();
  // Lexical segments are merged in the background after writes (IngestFile waits for them at its end).
  // Blocks until no merge is running or due; the error of a merge that failed.
  Status WaitForMerges();
  Result<CollectionStats> Stats() const;
  // Verifies that docs, ids, the lexical segments (every checksum and block), dead records, dense
  // vectors and counters agree. `repair` (writable opens) rebuilds damaged segments from the documents
  // and writes the dense index file again when it is missing, stale or corrupt (searches rebuild it in
  // memory but never write; the next write or a repair persists it).
  Result<CheckReport> Check(bool repair = false) const;

  class Impl;

 private:
  explicit Collection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<DenseIndex> dense_;
  std::unique_ptr<Reranking> rerank_;
  std::unique_ptr<ResMemory> resmem_;
};

// Dense retrieval (docs/formats.md "dense"): stored vectors are the source of truth; the FAISS index
// (a checksummed file in DIR) is rebuilt from them whenever it is missing, stale or corrupt. With an
// encoder, upserts embed new documents and deletes drop their vectors in the same atomic batch, so the
// index always mirrors the store. Reached as Collection::dense(); valid while the collection lives.
class DenseIndex {
 public:
  // Configures and builds the dense index. With options.encoder every document is embedded and stored
  // first (`progress(done, total)` after each batch); without, the vectors stored by PutVectors are
  // indexed. Returns the number of vectors indexed. A failure leaves the previous index as it was.
  Result<uint64_t> Build(const DenseIndexOptions& options, const std::function<void(uint64_t, uint64_t)>& progress = {});
  // Stores vectors computed elsewhere, row-major [ids.size(), dim], in one atomic batch. Every id must
  // exist (NotFound names the first that does not); dim must equal any dim stored before.
  Status PutVectors(const std::vector<std::string>& ids, const std::vector<float>& vectors, size_t dim,
                    VectorTable table = VectorTable::kDocuments);
  // The stored vector of `id`; nullopt when the document has none (or does not exist).
  Result<std::optional<std::vector<float>>> GetVector(std::string_view id,
                                                      VectorTable table = VectorTable::kDocuments) const;
  // The dense similarity of `query` (embedded by the index's encoder) to each listed document's stored
  // vector, in the order given: inner product, or negated squared L2 distance (as SearchHit::stages.dense);
  // NaN for a document without a vector. NotFound names the first id not in the collection. Reranks
  // any candidate list (a BM25 run, another system's) by embedding similarity.
  Result<std::vector<float>> Scores(std::string_view query, const std::vector<std::string>& ids) const;
  // The configuration and state (loading the index, or rebuilding it in memory, if needed); NotFound
  // when the collection has no dense configuration.
  Result<DenseIndexInfo> Info() const;
  // Auto-tunes the index's search knob: the smallest nprobe/efSearch whose recall@k against exact search
  // reaches `target` (on the 95% lower confidence bound) over `n_queries` stored document vectors drawn
  // with a fixed seed, and records it with the index (used by every later search). InvalidArgument for
  // indexes without a knob (Flat).
  Result<DenseTuning> Tune(double target, size_t k = 10, size_t n_queries = 500);
  // Sets the search knobs recorded with the index (e.g. after auto-tuning); 0 leaves a knob unchanged.
  Status SetSearchParameters(size_t nprobe, size_t ef_search);

 private:
  friend class Collection;
  explicit DenseIndex(Collection::Impl* impl) : impl_(impl) {}
  Collection::Impl* impl_;
};

// BlockRank in-context reranking: the model searches use with SearchOptions::rerank, its scores for
// any list of documents, and decoupled document caches. Reached as Collection::rerank().
class Reranking {
 public:
  // Loads a BlockRank reranker (a Mistral/Llama checkpoint directory with tokenizer.model, or a GGUF
  // file of a llama or qwen2 model); replaces any earlier one. The model is shared by all threads.
  Status Load(const std::string& model_dir, const RerankOptions& options = {});
  bool loaded() const;
  // BlockRank scores of the documents `ids` for `query` with the loaded reranker (one pass, or windows),
  // from cached blocks in the decoupled mode. NotFound names an id the collection lacks.
  Result<std::vector<double>> Scores(std::string_view query, const std::vector<std::string>& ids) const;
  // Scores at each of `layers` (ascending, none deeper than the reranker's scoring layer) from one pass
  // per window: for choosing a scoring layer; from cached blocks as Scores() does.
  Result<std::vector<std::vector<double>>> ScoresAtLayers(std::string_view query, const std::vector<std::string>& ids,
                                                          const std::vector<int>& layers) const;
  // Decoupled document caches: encodes every document's BlockRank block (keys and values up to the
  // scoring layer, the prompt without the query) once and stores them in the collection; reranking
  // with the same model and options (query_in_instruction = false) then computes only the query block.
  // `half_precision` stores f16 (half the bytes, scores within ~2e-4) instead of exact f32. Documents
  // are encoded a few at a time and written as they come (`progress(done, total)` after each batch);
  // until the build completes no search uses the caches. Returns the number of documents encoded.
  Result<uint64_t> BuildCache(const std::string& model_dir, const RerankOptions& options, bool half_precision = false,
                              const std::function<void(uint64_t, uint64_t)>& progress = {});

 private:
  friend class Collection;
  explicit Reranking(Collection::Impl* impl) : impl_(impl) {}
  Collection::Impl* impl_;
};

// ResMem: a k-nearest-neighbour memory of training residuals that corrects the first stage's scores
// (SearchOptions::resmem). Reached as Collection::resmem().
class ResMemory {
 public:
  // Builds a memory from `training` (never test queries) with `options` and stores it in the collection
  // (replacing any earlier one). With dense neighbours the training queries are embedded by the dense
  // index's encoder, which searches must then still use (FailedPrecondition otherwise).
  Status Build(const std::vector<LabeledQuery>& training, const ResMemOptions& options);
  // Chooses the hyperparameters on a seeded validation part of `training`: the memory is built from the
  // rest, every grid point is scored by nDCG@10 on the validation part. Stores nothing. Neighbours are
  // found as `neighbours` says (the sigma grid follows its similarity scale).
  Result<ResMemTuning> Tune(const std::vector<LabeledQuery>& training, double validation_fraction = 0.2,
                            uint64_t seed = 42, ResMemNeighbours neighbours = ResMemNeighbours::kBm25) const;
  // The stored memory's options and size; NotFound when none was built.
  Result<std::pair<ResMemOptions, size_t>> Info() const;

 private:
  friend class Collection;
  ResMemory(const Collection* collection, Collection::Impl* impl) : collection_(collection), impl_(impl) {}
  const Collection* collection_;  // its first stage is what the memory corrects
  Collection::Impl* impl_;
};

}  // namespace quarry
