// An inverted-file index for maximum inner product search with SOAR spilling (Sun et al. 2024, "SOAR:
// Improved Indexing for Approximate Nearest Neighbor Search"). Vectors are partitioned by k-means
// (FAISS's clustering); each vector goes to its nearest centroid c (primary) and, with spilling, also to
// the list c' among the `spill_candidates` next-nearest centroids that minimises
//     ||x - c'||^2 + lambda * <x - c', r_hat>^2,   r_hat = (x - c) / ||x - c||,
// so the second residual is nearly orthogonal to the first and a query that the primary assignment
// scores badly is likely scored well by the spilled one. Search visits the `nprobe` lists whose
// centroids have the largest inner product with the query, scores every entry exactly, and keeps each id
// once. Without spilling this is a plain IVF-Flat index, the baseline SOAR is compared with.
//
// Build is single-writer; Search is thread-safe (queries run in parallel on oneTBB).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "index/dense/faiss_index.h"
#include "quarry/status.h"

namespace quarry {

struct SoarIvfOptions {
  // Default: 1024. Inverted lists (k-means centroids).
  size_t n_lists = 1024;
  // Default: true. Assign each vector to a second list by the SOAR loss.
  bool spill = true;
  // Default: 1. Weight of the residual-parallel penalty (ScaNN uses 1 to 1.5).
  float lambda = 1.0f;
  // Default: 32. Nearest centroids considered for the spilled assignment.
  size_t spill_candidates = 32;
  // Default: 20. k-means iterations.
  size_t train_iterations = 20;
  // Default: 100000. Vectors (a seeded sample) that train the centroids.
  size_t train_sample = 100000;
  // Default: 1234.
  uint64_t seed = 1234;
};

struct IvfSearchStats {
  uint64_t entries_scanned = 0;  // list entries scored, over all queries
};

class SoarIvf {
 public:
  SoarIvf(size_t dim, const SoarIvfOptions& options) : dim_(dim), options_(options) {}

  // Train (k-means on a seeded sample of `vectors`, row-major [n, dim]) then Add, in one call.
  static Result<std::unique_ptr<SoarIvf>> Build(size_t dim, const std::vector<int64_t>& ids,
                                                const std::vector<float>& vectors, const SoarIvfOptions& options);

  bool is_trained() const { return !centroids_.empty(); }
  // Errors: shape mismatch, fewer vectors than lists.
  Status Train(const std::vector<float>& vectors);
  // Assigns each vector to its primary list (and spilled one); needs Train first.
  Status Add(const std::vector<int64_t>& ids, const std::vector<float>& vectors);

  // Top k per query by inner product, best first, each id once. `stats` (optional) adds the work done.
  Result<std::vector<std::vector<DenseHit>>> Search(const std::vector<float>& queries, size_t k, size_t nprobe,
                                                    IvfSearchStats* stats = nullptr) const;

  size_t dim() const { return dim_; }
  size_t size() const { return ids_.size(); }  // vectors added
  const std::vector<int64_t>& ids() const { return ids_; }
  size_t n_lists() const { return options_.n_lists; }
  size_t n_entries() const;  // list entries: vectors stored, spilled copies included
  size_t bytes() const;      // centroids, vectors and ids once, 4 bytes per list entry

  // A versioned little-endian layout (docs/formats.md); Deserialize reports truncation as Corruption.
  std::string Serialize() const;
  static Result<std::unique_ptr<SoarIvf>> Deserialize(std::string_view bytes);

 private:
  // Lists hold row numbers into one copy of the vectors, so a spilled entry costs 4 bytes, not a vector.
  using List = std::vector<uint32_t>;
  size_t dim_ = 0;
  SoarIvfOptions options_;
  std::vector<float> centroids_;  // [n_lists, dim]
  std::vector<int64_t> ids_;      // [rows]
  std::vector<float> vectors_;    // [rows, dim]
  std::vector<List> lists_;
};

}  // namespace quarry
