// Collection::Impl: the state behind the public Collection (engine-internal).
#pragma once

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "index/dense/dual_encoder.h"
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
  std::mutex write_mu;
  uint64_t next_docnum = 0, n_docs = 0;           // committed values
  Status RequireWritable() const {
    return writable ? Status::Ok() : Status::FailedPrecondition(store->dir() + ": opened read-only");
  }

  // Applies `docs` as one atomic batch, analyzed by lexical->Analyze; `segment`, when given, is their
  // segment (LexicalStore::WriteSegmentOf of NewDocumentsChange). `n_replaced` counts replaced ids.
  Status ApplyUpserts(const std::vector<Document>& docs, std::vector<AnalyzedDoc> analyzed,
                      std::unique_ptr<LexicalStore::NewSegment> segment, uint64_t* n_replaced, bool sync);

  // --- reader state ---
  std::atomic<uint64_t> generation{0};  // bumped after every committed write
  mutable std::mutex index_mu;
  mutable std::shared_ptr<const ResMem> resmem;          // guarded by index_mu
  std::shared_ptr<const BlockRanker> reranker;           // guarded by index_mu
  std::string reranker_cache_config;                     // guarded by index_mu
  mutable uint64_t resmem_generation = UINT64_MAX;       // guarded by index_mu
  // Dense retrieval (engine/dense.cc).
  mutable std::shared_ptr<const FaissIndex> dense_index;  // guarded by index_mu
  mutable uint64_t dense_index_generation = UINT64_MAX;   // guarded by index_mu: `generation` it was loaded at
  mutable bool dense_rebuilt = false;                     // guarded by index_mu
  mutable std::shared_ptr<const DualEncoder> dense_encoder;  // guarded by index_mu
  mutable std::string dense_encoder_config;                  // guarded by index_mu: what it was loaded from
  // The dense index of the latest committed state: from DIR/dense.faiss when its checksum and vector
  // generation match, else rebuilt from the stored vectors (and rewritten when writable).
  Result<std::shared_ptr<const FaissIndex>> CurrentDenseIndex() const;
  // The encoder named by the dense configuration; FailedPrecondition when there is none.
  Result<std::shared_ptr<const DualEncoder>> CurrentEncoder() const;
  // Adds to `batch` what an upsert or delete changes in the dense column family: the old vectors of
  // `removed` go; `added` documents get vectors when an encoder is configured. Writer-only.
  Status DenseUpdates(const std::vector<DocNum>& removed, const std::vector<std::pair<DocNum, const Document*>>& added,
                      rocksdb::WriteBatch* batch);

  // The lexical index of the latest committed state.
  std::shared_ptr<const LexicalIndex> CurrentLexicalIndex() const { return lexical->Snapshot(); }
  // The loaded reranker; FailedPrecondition when none was loaded.
  Result<std::shared_ptr<const BlockRanker>> CurrentReranker() const;
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
inline constexpr char kMetaDenseFile[] = "dense.file";              // JSON: generation, bytes, fnv1a64 of DIR/dense.faiss
inline constexpr char kDenseFileName[] = "dense.faiss";

// Replaces the top `depth` of `hits` (BM25 order) by their ResMem-corrected ranking, which may hold
// documents the memory adds; the rest of `hits` follows in its own order (engine/resmem.cc).
Status ApplyResMem(const Store& store, const ResMem& resmem, std::string_view query, std::vector<SearchHit>* hits);

// Reorders the top `depth` of `hits` by BlockRank score (engine/rerank.cc); the rest follows. In the
// decoupled mode, document blocks cached by BuildRerankCache for this model and options are used.
Status ApplyRerank(const Store& store, const BlockRanker& ranker, std::string_view query, std::vector<SearchHit>* hits,
                   const std::string& cache_config);
// What identifies a cache: the model's config and weights size, the scoring layer and block length.
std::string RerankCacheConfig(const std::string& model_dir, const RerankOptions& options);

// The lexical change of new documents numbered from `first` (what their segment holds).
LexicalStore::Change NewDocumentsChange(DocNum first, const std::vector<Document>& docs,
                                        const std::vector<AnalyzedDoc>& analyzed);

// Column families every collection opens besides the store's own.
std::vector<std::string> IndexColumnFamilies();

}  // namespace quarry
