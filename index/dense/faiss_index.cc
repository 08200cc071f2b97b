#include "index/dense/faiss_index.h"

#include <regex>

#include "index/dense/soar_ivf.h"

#include <faiss/Index.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <exception>

namespace quarry {

namespace {

Status FaissError(const std::exception& e) { return Status::InvalidArgument(std::string("dense index: ") + e.what()); }

// The index inside the id map, where the search knobs live.
faiss::Index* Inner(faiss::Index* index) {
  if (auto* map = dynamic_cast<faiss::IndexIDMap2*>(index)) return map->index;
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index)) return map->index;
  return index;
}

}  // namespace

FaissIndex::FaissIndex() = default;
FaissIndex::~FaissIndex() = default;

size_t FaissIndex::n_lists() const {
  if (soar_) return soar_->n_lists();
  auto* ivf = dynamic_cast<faiss::IndexIVF*>(Inner(index_.get()));
  return ivf ? ivf->nlist : 0;
}

bool FaissIndex::HasSearchParameter(const std::string& name) const {
  if (soar_) return name == "nprobe";
  faiss::Index* inner = Inner(index_.get());
  if (name == "nprobe") return dynamic_cast<faiss::IndexIVF*>(inner) != nullptr;
  if (name == "efSearch") return dynamic_cast<faiss::IndexHNSW*>(inner) != nullptr;
  return false;
}

Status FaissIndex::SetSearchParameter(const std::string& name, size_t value) {
  if (soar_ && name == "nprobe") {
    soar_nprobe_ = std::max<size_t>(1, value);
    return Status::Ok();
  }
  faiss::Index* inner = soar_ ? nullptr : Inner(index_.get());
  if (!inner) return Status::InvalidArgument("dense index: this index has no search parameter '" + name + "'");
  if (name == "nprobe") {
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(inner)) {
      ivf->nprobe = std::max<size_t>(1, value);
      return Status::Ok();
    }
  } else if (name == "efSearch") {
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(inner)) {
      hnsw->hnsw.efSearch = static_cast<int>(std::max<size_t>(1, value));
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("dense index: this index has no search parameter '" + name + "'");
}

Result<std::string> FaissIndex::Serialize() const {
  if (soar_) return soar_->Serialize();
  try {
    faiss::VectorIOWriter writer;
    faiss::write_index(index_.get(), &writer);
    return std::string(writer.data.begin(), writer.data.end());
  } catch (const std::exception& e) {
    return FaissError(e);
  }
}

Result<std::unique_ptr<FaissIndex>> FaissIndex::Deserialize(const std::string& bytes) {
  std::unique_ptr<FaissIndex> f(new FaissIndex());
  if (bytes.rfind("QSOAR", 0) == 0) {
    QUARRY_ASSIGN_OR_RETURN(f->soar_, SoarIvf::Deserialize(bytes));
    f->dim_ = f->soar_->dim();
    return f;
  }
  try {
    faiss::VectorIOReader reader;
    reader.data.assign(bytes.begin(), bytes.end());
    f->index_.reset(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("dense index: ") + e.what());
  }
  f->dim_ = static_cast<size_t>(f->index_->d);
  return f;
}

Result<std::unique_ptr<FaissIndex>> FaissIndex::Create(size_t dim, const std::string& factory, DenseMetric metric) {
  std::unique_ptr<FaissIndex> f(new FaissIndex());
  f->dim_ = dim;
  if (factory.rfind("SOAR", 0) == 0) {
    std::smatch m;
    if (!std::regex_match(factory, m, std::regex("SOAR([0-9]+)(,lambda=([0-9.]+))?"))) {
      return Status::InvalidArgument("dense index: bad SOAR spec '" + factory + "' (SOAR<lists>[,lambda=<x>])");
    }
    if (metric != DenseMetric::kInnerProduct) return Status::InvalidArgument("dense index: SOAR is for inner product");
    SoarIvfOptions o;
    o.n_lists = std::stoul(m[1]);
    if (m[3].matched) o.lambda = std::stof(m[3]);
    f->soar_ = std::make_unique<SoarIvf>(dim, o);
    return f;
  }
  try {
    const std::string spec = factory.rfind("IDMap", 0) == 0 ? factory : "IDMap2," + factory;
    f->index_.reset(faiss::index_factory(static_cast<int>(dim), spec.c_str(),
                                         metric == DenseMetric::kInnerProduct ? faiss::METRIC_INNER_PRODUCT
                                                                              : faiss::METRIC_L2));
  } catch (const std::exception& e) {
    return FaissError(e);
  }
  return f;
}

DenseMetric FaissIndex::metric() const {
  if (soar_) return DenseMetric::kInnerProduct;
  return index_->metric_type == faiss::METRIC_INNER_PRODUCT ? DenseMetric::kInnerProduct : DenseMetric::kL2;
}

bool FaissIndex::is_trained() const { return soar_ ? soar_->is_trained() : index_->is_trained; }

size_t FaissIndex::size() const { return soar_ ? soar_->size() : static_cast<size_t>(index_->ntotal); }

Status FaissIndex::Train(const std::vector<float>& vectors) {
  if (vectors.size() % dim_) return Status::InvalidArgument("dense index: training vectors are not a multiple of dim");
  if (soar_) return soar_->Train(vectors).WithContext("dense index");
  try {
    index_->train(static_cast<faiss::Index::idx_t>(vectors.size() / dim_), vectors.data());
  } catch (const std::exception& e) {
    return FaissError(e);
  }
  return Status::Ok();
}

Status FaissIndex::Add(const std::vector<int64_t>& ids, const std::vector<float>& vectors) {
  if (vectors.size() != ids.size() * dim_) {
    return Status::InvalidArgument("dense index: " + std::to_string(vectors.size()) + " floats for " +
                                   std::to_string(ids.size()) + " vectors of dim " + std::to_string(dim_));
  }
  if (soar_) return soar_->Add(ids, vectors).WithContext("dense index");
  try {
    index_->add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), vectors.data(),
                         reinterpret_cast<const faiss::Index::idx_t*>(ids.data()));
  } catch (const std::exception& e) {
    return FaissError(e);
  }
  return Status::Ok();
}

Result<std::vector<std::vector<DenseHit>>> FaissIndex::Search(const std::vector<float>& queries, size_t k) const {
  if (queries.size() % dim_) return Status::InvalidArgument("dense index: query floats are not a multiple of dim");
  if (soar_) return soar_->Search(queries, k, soar_nprobe_);
  const size_t n = queries.size() / dim_;
  std::vector<float> scores(n * k);
  std::vector<faiss::Index::idx_t> labels(n * k);
  try {
    index_->search(static_cast<faiss::Index::idx_t>(n), queries.data(), static_cast<faiss::Index::idx_t>(k), scores.data(),
                   labels.data());
  } catch (const std::exception& e) {
    return FaissError(e);
  }
  std::vector<std::vector<DenseHit>> out(n);
  for (size_t q = 0; q < n; ++q) {
    for (size_t j = 0; j < k; ++j) {
      if (labels[q * k + j] < 0) break;  // fewer than k vectors
      out[q].push_back({labels[q * k + j], scores[q * k + j]});
    }
  }
  return out;
}

std::vector<float> SampleRows(const std::vector<float>& rows, size_t dim, size_t n, uint64_t seed) {
  const size_t total = dim ? rows.size() / dim : 0;
  if (total <= n) return rows;
  std::vector<size_t> order(total);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> out;
  out.reserve(n * dim);
  for (size_t i = 0; i < n; ++i) out.insert(out.end(), &rows[order[i] * dim], &rows[order[i] * dim] + dim);
  return out;
}

}  // namespace quarry
