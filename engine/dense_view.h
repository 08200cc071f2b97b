// The dense index as searches see it (engine-internal): the persisted FAISS index (the base,
// DIR/dense-<generation>.faiss) plus the document vectors written since it (held in memory, searched
// exactly), with the base entries those writes superseded filtered out. Writes extend a view without
// touching the base, so an upsert is searchable at once at the cost of its batch; when the vectors
// since the base pass a threshold, the writer folds them into a new base (engine/dense.cc).
//
// Immutable once built; searches share it through shared_ptr.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/dense/faiss_index.h"
#include "storage/store.h"

namespace quarry {

struct DenseView {
  nlohmann::json config;  // meta dense.config as it was loaded
  uint32_t space = 0;     // the vector key space the config names (engine/dense.cc)
  size_t dim = 0;
  DenseMetric metric = DenseMetric::kInnerProduct;
  std::shared_ptr<const FaissIndex> base;  // null when no vector had been indexed
  std::string base_file;                   // its file name in DIR; "" when it exists only in memory
  uint64_t base_bytes = 0;
  bool rebuilt = false;                    // the load found the file missing, stale or corrupt
  struct Chunk {
    std::vector<int64_t> ids;    // doc numbers
    std::vector<float> vectors;  // [ids.size(), dim]
  };
  // Vectors newer than the base, oldest first; chunk i has sequence i + 1, the base 0.
  std::vector<std::shared_ptr<const Chunk>> chunks;
  // (doc, s) sorted by doc: the doc's entries of sequence below s are stale (it was deleted, replaced or
  // given a new vector since).
  std::shared_ptr<const std::vector<std::pair<DocNum, uint32_t>>> superseded =
      std::make_shared<std::vector<std::pair<DocNum, uint32_t>>>();
  uint64_t n_vectors = 0;  // live document vectors
  uint64_t generation = 0;  // meta dense.generation of the state the view holds

  uint64_t n_delta() const;
  uint32_t StaleBelow(DocNum doc) const;  // 0 when nothing of the doc is stale

  // Top k, best first: FAISS's scores (inner product, or squared L2 where smaller is closer); ties
  // by doc number ascending.
  Result<std::vector<DenseHit>> Search(const std::vector<float>& query, size_t k) const;
};

}  // namespace quarry
