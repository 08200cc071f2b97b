// Collection::Impl: the state behind the public Collection (engine-internal).
#pragma once

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "index/dense/dual_encoder.h"
#include "engine/dense_view.h"
#include "index/dense/faiss_index.h"
#include "index/lexical/lexical_store.h"
#include "rerank/blockrank.h"
#include "rerank/resmem.h"
#include "quarry/collection.h"
#include "storage/store.h"

namespace quarry {

class Collection::Impl {
 public:
  std::unique_ptr<Store> store;

  bool writable = false;
  // The lexical index: segments, dead documents, merges; publishes a snapshot after each write.
  std::unique_ptr<LexicalStore> lexical;

  // --- writer state (guarded by write_mu) ---
  mutable std::mutex write_mu;
  uint64_t next_docnum = 0, n_docs = 0;           // committed values
  Status RequireWritable() const {
    return writable ? Status::Ok() : Status::FailedPrecondition(store->dir() + ": opened read-only");
  }

  // Applies `docs` as one atomic batch, analyzed by lexical->Analyze; `segment`, when given, is their
  // segment (LexicalStore::WriteSegmentOf of NewDocumentsChange). `n_replaced` counts replaced ids.
  Status ApplyUpserts(const std::vector<Document>& docs, std::vector<AnalyzedDoc> analyzed,
                      std::unique_ptr<LexicalStore::NewSegment> segment, uint64_t* n_replaced, bool sync);

  // --- reader state ---
  std::atomic<uint64_t> resmem_version{0};  // bumped when ResMemory::Build stores a new memory
  mutable std::mutex index_mu;
  mutable std::shared_ptr<const ResMem> resmem;          // guarded by index_mu
  std::shared_ptr<const BlockRanker> reranker;           // guarded by index_mu
  std::string reranker_cache_config;                     // guarded by index_mu
  mutable uint64_t resmem_loaded = UINT64_MAX;           // guarded by index_mu: resmem_version it holds
  // Dense retrieval (engine/dense.cc, engine/dense_view.h).
  mutable std::shared_ptr<const DenseView> dense_view;      // guarded by index_mu; null until first needed
  mutable std::shared_ptr<const DualEncoder> dense_encoder;  // guarded by index_mu
  mutable std::string dense_encoder_config;                  // guarded by index_mu: what it was loaded from
  // What the write being prepared changes in the dense index (writer-only, write_mu).
  struct DensePending {
    bool active = false;
    std::vector<DocNum> removed;                     // documents whose vector goes
    std::shared_ptr<const DenseView::Chunk> added;   // new vectors
    uint64_t n_vectors = 0;                          // document vectors after the write
    uint64_t generation = 0;                         // dense.generation the write sets
  } dense_pending;
  // The dense index of the latest committed state: the base file (mapped when read-only) when it is
  // the one meta vouches for, else rebuilt in memory from the stored vectors, plus the vectors written
  // since it. Searches never write: a rebuilt base is written back only by a writer (the caller holds
  // write_mu: `holding_write_lock`), by the next write (CommitDense) or by `Check(repair)`.
  Result<std::shared_ptr<const DenseView>> CurrentDenseView(bool holding_write_lock = false) const;
  // The encoder named by the dense configuration; FailedPrecondition when there is none.
  // The dense index's encoder; `identity` (if given) gets what it was configured from, the key a dense
  // ResMem memory records.
  Result<std::shared_ptr<const DualEncoder>> CurrentEncoder(std::string* identity = nullptr) const;
  // Adds to `batch` what an upsert or delete changes in the dense column family: the old vectors of
  // `removed` go; `added` documents get vectors when an encoder is configured; each is marked changed
  // since the base. Stages dense_pending. Writer-only.
  Status DenseUpdates(const std::vector<DocNum>& removed, const std::vector<std::pair<DocNum, const Document*>>& added,
                      rocksdb::WriteBatch* batch);
  // After the batch was written: extends the loaded view by dense_pending, and folds the vectors since
  // the base into a new base file once they pass a threshold.
  Status CommitDense();
  Status RefreshDenseBase();
  // Writes the base file when the loaded one had to be rebuilt (missing, stale or corrupt). Writer-only.
  Status RepairDenseBase();
  // Removes base files and vector spaces nothing names (a crash during a rebuild leaves them).
  Status RemoveUnusedDenseFiles();
  // Sets meta dense.n_vectors from the stored vectors (format 1 collections had no such counter).
  Status RecountDenseVectors();
  // quarry check's part for the dense family, as of `snap`.
  Status CheckDense(const Store::Snapshot* snap, const std::unordered_map<DocNum, std::string>& docs,
                    CheckReport* report) const;

  // The lexical index of the latest committed state.
  std::shared_ptr<const LexicalIndex> CurrentLexicalIndex() const { return lexical->Snapshot(); }
  // The loaded reranker; FailedPrecondition when none was loaded.
  Result<std::shared_ptr<const BlockRanker>> CurrentReranker() const;
  // Hits for document ids (score 0); NotFound names an id the collection lacks.
  Result<std::vector<SearchHit>> HitsOf(const std::vector<std::string>& ids) const;
  // The stored ResMem memory (reloaded after writes); NotFound when none was built.
  Result<std::shared_ptr<const ResMem>> CurrentResMem() const;
};

inline constexpr char kCfResMem[] = "resmem";        // "memory" -> ResMem::Encode()
inline constexpr char kCfRerankCache[] = "rerank_cache";  // BE32 doc number -> EncodeBlockCache()
inline constexpr char kMetaRerankCache[] = "rerank_cache.config";  // JSON: what the caches were made with
inline constexpr char kResMemKey[] = "memory";
inline constexpr char kCfDense[] = "dense";  // 'd'|'q' + BE32 doc number -> float32[dim] (little-endian)
inline constexpr char kMetaDenseConfig[] = "dense.config";          // JSON: dim, metric, factory, encoder, knobs
inline constexpr char kMetaDenseGeneration[] = "dense.generation";  // BE64: bumped by every vector change

// Replaces the top `depth` of `hits` (BM25 order) by their ResMem-corrected ranking, which may hold
// documents the memory adds; the rest of `hits` follows in its own order (engine/resmem.cc).
// `query_embedding`: the query's dense embedding, needed by a memory with dense neighbours.
Status ApplyResMem(const Store& store, const ResMem& resmem, std::string_view query,
                   const std::vector<float>* query_embedding, std::vector<SearchHit>* hits);

// Reorders the top `depth` of `hits` by BlockRank score (engine/rerank.cc); the rest follows. In the
// decoupled mode, document blocks cached by Reranking::BuildCache for this model and options are used.
// Documents and caches are read as of `snap`, the snapshot the hits were retrieved from.
Status ApplyRerank(const Store& store, const Store::Snapshot* snap, const BlockRanker& ranker, std::string_view query,
                   std::vector<SearchHit>* hits, const std::string& cache_config);

// `quarry check`'s part for each index module's column families, as of `snap`: `docs` maps every live
// doc number to its id; problems are appended to the report.
// BlockRank caches belong to live documents and decode, and have their configuration (engine/rerank.cc).
Status CheckRerankCaches(const Store& store, const Store::Snapshot* snap,
                         const std::unordered_map<DocNum, std::string>& docs, CheckReport* report);
// ResMem's memory decodes (engine/resmem.cc).
Status CheckResMem(const Store& store, const Store::Snapshot* snap, CheckReport* report);
// Appends `problem` unless the report already lists 100.
void AddProblem(CheckReport* report, std::string problem);
// What identifies a cache: the model's config and weights size, the scoring layer and block length.
std::string RerankCacheConfig(const std::string& model_dir, const RerankOptions& options);

// The lexical change of new documents numbered from `first` (what their segment holds).
LexicalStore::Change NewDocumentsChange(DocNum first, const std::vector<Document>& docs,
                                        const std::vector<AnalyzedDoc>& analyzed);

// Column families every collection opens besides the store's own.
std::vector<std::string> IndexColumnFamilies();

}  // namespace quarry
