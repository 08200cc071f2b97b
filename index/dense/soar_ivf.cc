#include "index/dense/soar_ivf.h"

#include <cblas.h>
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cmath>
#include <numeric>
#include <random>

#include "common/thread_scratch.h"
#include "model/kernels.h"

namespace quarry {

Result<std::unique_ptr<SoarIvf>> SoarIvf::Build(size_t dim, const std::vector<int64_t>& ids,
                                                const std::vector<float>& vectors, const SoarIvfOptions& o) {
  if (dim == 0 || vectors.size() != ids.size() * dim) return Status::InvalidArgument("soar ivf: vectors do not match ids x dim");
  auto ivf = std::make_unique<SoarIvf>(dim, o);
  QUARRY_RETURN_IF_ERROR(ivf->Train(vectors));
  QUARRY_RETURN_IF_ERROR(ivf->Add(ids, vectors));
  return ivf;
}

Status SoarIvf::Train(const std::vector<float>& vectors) {
  const size_t dim = dim_, n = dim ? vectors.size() / dim : 0;
  const SoarIvfOptions& o = options_;
  if (dim == 0 || vectors.size() % dim) return Status::InvalidArgument("soar ivf: training vectors are not a multiple of dim");
  if (o.n_lists == 0 || n < o.n_lists) {
    return Status::InvalidArgument("soar ivf: " + std::to_string(n) + " vectors cannot train " +
                                   std::to_string(o.n_lists) + " lists");
  }
  centroids_.assign(o.n_lists * dim, 0.0f);
  try {
    const std::vector<float> sample = SampleRows(vectors, dim, o.train_sample, o.seed);
    faiss::ClusteringParameters cp;
    cp.niter = static_cast<int>(o.train_iterations);
    cp.seed = static_cast<int>(o.seed);
    cp.max_points_per_centroid = 1 << 20;  // the sample size is already chosen above
    faiss::Clustering clustering(static_cast<int>(dim), static_cast<int>(o.n_lists), cp);
    faiss::IndexFlatL2 assigner(static_cast<faiss::Index::idx_t>(dim));
    clustering.train(static_cast<faiss::Index::idx_t>(sample.size() / dim), sample.data(), assigner);
    std::copy(clustering.centroids.begin(), clustering.centroids.end(), centroids_.begin());
  } catch (const std::exception& e) {
    centroids_.clear();
    return Status::InvalidArgument(std::string("soar ivf: ") + e.what());
  }
  lists_.assign(o.n_lists, {});
  return Status::Ok();
}

Status SoarIvf::Add(const std::vector<int64_t>& ids, const std::vector<float>& vectors) {
  const size_t dim = dim_, n = ids.size();
  const SoarIvfOptions& o = options_;
  if (!is_trained()) return Status::FailedPrecondition("soar ivf: Add before Train");
  if (vectors.size() != n * dim) return Status::InvalidArgument("soar ivf: vectors do not match ids x dim");
  if (ids_.size() + n > UINT32_MAX) return Status::InvalidArgument("soar ivf: more than 2^32 vectors");
  // Nearest centroids of every vector (L2, the k-means partition), then the primary and spilled lists.
  const size_t m = std::min(o.n_lists, o.spill ? o.spill_candidates + 1 : size_t{1});
  std::vector<float> dist(n * m);
  std::vector<faiss::Index::idx_t> nearest(n * m);
  try {
    faiss::IndexFlatL2 quantizer(static_cast<faiss::Index::idx_t>(dim));
    quantizer.add(static_cast<faiss::Index::idx_t>(o.n_lists), centroids_.data());
    quantizer.search(static_cast<faiss::Index::idx_t>(n), vectors.data(), static_cast<faiss::Index::idx_t>(m),
                     dist.data(), nearest.data());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("soar ivf: ") + e.what());
  }
  std::vector<int64_t> spilled(n, -1);
  if (o.spill && m > 1) {
    tbb::parallel_for(size_t{0}, n, [&](size_t i) {
      const float* x = &vectors[i * dim];
      const float* c = &centroids_[static_cast<size_t>(nearest[i * m]) * dim];
      std::vector<float> r(dim);
      float r_norm2 = 0;
      for (size_t k = 0; k < dim; ++k) {
        r[k] = x[k] - c[k];
        r_norm2 += r[k] * r[k];
      }
      if (r_norm2 == 0) return;  // x is its centroid: no direction to be orthogonal to
      const float inv = 1.0f / std::sqrt(r_norm2);
      float best = INFINITY;
      for (size_t j = 1; j < m; ++j) {
        if (nearest[i * m + j] < 0) break;
        const float* c2 = &centroids_[static_cast<size_t>(nearest[i * m + j]) * dim];
        float parallel = 0;
        for (size_t k = 0; k < dim; ++k) parallel += (x[k] - c2[k]) * r[k] * inv;
        const float loss = dist[i * m + j] + o.lambda * parallel * parallel;
        if (loss < best) {
          best = loss;
          spilled[i] = nearest[i * m + j];
        }
      }
    });
  }
  const size_t base = ids_.size();
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  vectors_.insert(vectors_.end(), vectors.begin(), vectors.end());
  for (size_t i = 0; i < n; ++i) {
    for (int64_t list : {static_cast<int64_t>(nearest[i * m]), spilled[i]}) {
      if (list >= 0) lists_[static_cast<size_t>(list)].push_back(static_cast<uint32_t>(base + i));
    }
  }
  return Status::Ok();
}

namespace {

constexpr char kSoarMagic[] = "QSOAR";
constexpr uint8_t kSoarVersion = 1;

template <typename T>
void PutRaw(std::string* out, const T* data, size_t n) {
  out->append(reinterpret_cast<const char*>(data), n * sizeof(T));
}

template <typename T>
bool GetRaw(std::string_view* in, T* data, size_t n) {
  if (in->size() / sizeof(T) < n) return false;
  std::memcpy(data, in->data(), n * sizeof(T));
  in->remove_prefix(n * sizeof(T));
  return true;
}

}  // namespace

std::string SoarIvf::Serialize() const {
  static_assert(std::endian::native == std::endian::little, "the layout is little-endian");
  std::string out(kSoarMagic);
  out += static_cast<char>(kSoarVersion);
  const uint64_t header[] = {dim_, options_.n_lists, options_.spill, options_.spill_candidates, ids_.size()};
  PutRaw(&out, header, 5);
  PutRaw(&out, &options_.lambda, 1);
  PutRaw(&out, centroids_.data(), centroids_.size());
  PutRaw(&out, ids_.data(), ids_.size());
  PutRaw(&out, vectors_.data(), vectors_.size());
  for (const auto& l : lists_) {
    const uint64_t size = l.size();
    PutRaw(&out, &size, 1);
    PutRaw(&out, l.data(), l.size());
  }
  return out;
}

Result<std::unique_ptr<SoarIvf>> SoarIvf::Deserialize(std::string_view in) {
  auto corrupt = [](const std::string& what) { return Status::Corruption("soar ivf: " + what); };
  if (!in.starts_with(kSoarMagic)) return corrupt("bad magic");
  in.remove_prefix(sizeof(kSoarMagic) - 1);
  if (in.empty() || static_cast<uint8_t>(in[0]) != kSoarVersion) return corrupt("unknown version");
  in.remove_prefix(1);
  uint64_t h[5];
  float lambda = 0;
  if (!GetRaw(&in, h, 5) || !GetRaw(&in, &lambda, 1)) return corrupt("truncated header");
  const uint64_t dim = h[0], n_lists = h[1], rows = h[4];
  if (dim == 0 || dim > (1u << 20) || n_lists == 0 || n_lists > (1u << 24) || rows > UINT32_MAX) return corrupt("bad header");
  SoarIvfOptions o;
  o.n_lists = n_lists;
  o.spill = h[2] != 0;
  o.spill_candidates = h[3];
  o.lambda = lambda;
  auto ivf = std::make_unique<SoarIvf>(dim, o);
  ivf->centroids_.resize(n_lists * dim);
  ivf->ids_.resize(rows);
  ivf->vectors_.resize(rows * dim);
  if (!GetRaw(&in, ivf->centroids_.data(), ivf->centroids_.size()) || !GetRaw(&in, ivf->ids_.data(), rows) ||
      !GetRaw(&in, ivf->vectors_.data(), ivf->vectors_.size())) {
    return corrupt("truncated data");
  }
  ivf->lists_.resize(n_lists);
  for (auto& l : ivf->lists_) {
    uint64_t size = 0;
    if (!GetRaw(&in, &size, 1) || size > 2 * rows) return corrupt("truncated list");
    l.resize(size);
    if (!GetRaw(&in, l.data(), size)) return corrupt("truncated list");
    for (uint32_t row : l) {
      if (row >= rows) return corrupt("list entry out of range");
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return ivf;
}

size_t SoarIvf::n_entries() const {
  size_t n = 0;
  for (const auto& l : lists_) n += l.size();
  return n;
}

size_t SoarIvf::bytes() const {
  return (centroids_.size() + vectors_.size()) * sizeof(float) + ids_.size() * sizeof(int64_t) +
         n_entries() * sizeof(uint32_t);
}

Result<std::vector<std::vector<DenseHit>>> SoarIvf::Search(const std::vector<float>& queries, size_t k, size_t nprobe,
                                                           IvfSearchStats* stats) const {
  if (queries.size() % dim_) return Status::InvalidArgument("soar ivf: query floats are not a multiple of dim");
  const size_t nq = queries.size() / dim_, n_lists = lists_.size();
  if (ids_.empty()) return std::vector<std::vector<DenseHit>>(nq);
  nprobe = std::clamp<size_t>(nprobe, 1, n_lists);
  // Centroid scores for all queries at once: [nq, n_lists].
  std::vector<float> centroid_scores(nq * n_lists);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(n_lists),
              static_cast<int>(dim_), 1.0f, queries.data(), static_cast<int>(dim_), centroids_.data(),
              static_cast<int>(dim_), 0.0f, centroid_scores.data(), static_cast<int>(n_lists));
  std::vector<std::vector<DenseHit>> out(nq);
  std::vector<uint64_t> scanned(nq, 0);
  tbb::parallel_for(size_t{0}, nq, [&](size_t q) {
    const float* qv = &queries[q * dim_];
    const float* cs = &centroid_scores[q * n_lists];
    std::vector<uint32_t> probe(n_lists);
    std::iota(probe.begin(), probe.end(), 0u);
    std::partial_sort(probe.begin(), probe.begin() + static_cast<std::ptrdiff_t>(nprobe), probe.end(),
                      [&](uint32_t a, uint32_t b) { return cs[a] > cs[b]; });
    // Min-heap of the best k; `seen` keeps a spilled vector from being counted twice.
    auto worse = [](const DenseHit& a, const DenseHit& b) { return a.score > b.score; };
    std::vector<DenseHit> heap;
    // A spilled row is in two lists; a per-thread stamp array (one epoch per query) skips its second copy.
    struct Stamps {
      std::vector<uint32_t> stamps;
      uint32_t epoch = 0;
    };
    Stamps& scratch = ThreadScratch<Stamps>();
    std::vector<uint32_t>& stamps = scratch.stamps;
    uint32_t& epoch = scratch.epoch;
    if (stamps.size() < ids_.size()) stamps.resize(ids_.size(), 0);
    if (++epoch == 0) {
      std::fill(stamps.begin(), stamps.end(), 0);
      epoch = 1;
    }
    for (size_t p = 0; p < nprobe; ++p) {
      const List& l = lists_[probe[p]];
      scanned[q] += l.size();
      for (uint32_t row : l) {
        if (stamps[row] == epoch) continue;
        stamps[row] = epoch;
        const float s = model::Dot(qv, &vectors_[static_cast<size_t>(row) * dim_], dim_);
        if (heap.size() < k) {
          heap.push_back({ids_[row], s});
          std::push_heap(heap.begin(), heap.end(), worse);
        } else if (s > heap.front().score) {
          std::pop_heap(heap.begin(), heap.end(), worse);
          heap.back() = {ids_[row], s};
          std::push_heap(heap.begin(), heap.end(), worse);
        }
      }
    }
    std::sort_heap(heap.begin(), heap.end(), worse);
    out[q] = std::move(heap);
  });
  if (stats) stats->entries_scanned += std::accumulate(scanned.begin(), scanned.end(), uint64_t{0});
  return out;
}

}  // namespace quarry
