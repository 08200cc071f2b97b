// A FAISS index behind Quarry's Status API: any factory string ("Flat", "HNSW32", "IVF256,Flat", ...)
// with inner-product or L2 metric, ids mapped to Quarry's doc numbers. FAISS exceptions are caught here
// and returned as "dense index: ..." errors. Search is thread-safe; Add/Train are not (one writer).
// "SOAR<lists>" or "SOAR<lists>,lambda=<x>" (inner product only) selects Quarry's SOAR-spilled IVF
// (soar_ivf.h) behind the same interface, with nprobe as its knob.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quarry/status.h"

namespace faiss { struct Index; }

namespace quarry {
class SoarIvf;
}

namespace quarry {

enum class DenseMetric { kInnerProduct, kL2 };

struct DenseHit {
  int64_t id;
  float score;  // inner product, or squared L2 distance (smaller is closer)
};

class FaissIndex {
 public:
  static Result<std::unique_ptr<FaissIndex>> Create(size_t dim, const std::string& factory, DenseMetric metric);
  ~FaissIndex();

  bool is_trained() const;
  Status Train(const std::vector<float>& vectors);
  // `vectors` row-major [ids.size(), dim].
  Status Add(const std::vector<int64_t>& ids, const std::vector<float>& vectors);
  // Top k per query, best first; queries row-major [n, dim].
  Result<std::vector<std::vector<DenseHit>>> Search(const std::vector<float>& queries, size_t k) const;
  size_t size() const;
  size_t dim() const { return dim_; }
  DenseMetric metric() const;

  // Search-time knob: "nprobe" (IVF lists visited) or "efSearch" (HNSW candidate list); InvalidArgument
  // when the index has no such knob. Not to be called while searches run.
  Status SetSearchParameter(const std::string& name, size_t value);
  // IVF lists (0 for other indexes): the largest useful nprobe.
  size_t n_lists() const;
  // Whether the index has the knob (IVF: nprobe, HNSW: efSearch).
  bool HasSearchParameter(const std::string& name) const;

  // Whether Remove works: flat indexes (Flat, PQ, SQ) and IVF indexes made by Create. HNSW and SOAR
  // cannot remove; a caller filters their stale entries at search instead.
  bool CanRemove() const;
  // Removes the vectors of `ids` (absent ids are ignored). Returns how many were removed.
  Result<size_t> Remove(const std::vector<int64_t>& ids);
  // Whether each id has a vector here; for indexes that keep an id map (HNSW, Flat, ...) and SOAR.
  Result<std::vector<bool>> Contains(const std::vector<int64_t>& ids) const;

  // FAISS's own serialisation (faiss::write_index), and back. Deserialize reports truncated or
  // corrupt bytes as Corruption.
  Result<std::string> Serialize() const;
  static Result<std::unique_ptr<FaissIndex>> Deserialize(const std::string& bytes);

  struct FileInfo {
    uint64_t bytes = 0, checksum = 0;  // checksum: XXH64 of the file's bytes
  };
  // Writes the index to `path` durably (a temporary file, fsync, rename, directory fsync), hashing it
  // as it goes. Never leaves a partial file under `path`.
  Result<FileInfo> WriteFile(const std::string& path) const;
  // Reads a file WriteFile wrote, after checking its size and checksum against `expected`.
  // `map`: memory-map what FAISS can (IVF lists, read in place, never copied); such an index cannot
  // be changed (Add/Remove fail). Corruption when the file fails its checks.
  static Result<std::unique_ptr<FaissIndex>> ReadFile(const std::string& path, const FileInfo& expected, bool map);

 private:
  FaissIndex();
  size_t dim_ = 0;
  std::unique_ptr<faiss::Index> index_;  // null when soar_ is set
  std::unique_ptr<SoarIvf> soar_;
  size_t soar_nprobe_ = 1;
  bool mapped_ = false;
};

// A seeded random sample of n rows of a row-major [rows, dim] matrix (all of it, in order, when it holds
// no more than n): what IVF and PQ indexes train on, and where tuning queries come from.
std::vector<float> SampleRows(const std::vector<float>& rows, size_t dim, size_t n, uint64_t seed);

}  // namespace quarry
