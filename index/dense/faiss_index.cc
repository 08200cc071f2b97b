#include "index/dense/faiss_index.h"

#include <fstream>
#include <regex>

#include "index/dense/soar_ivf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <faiss/Index.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <numeric>
#include <random>

#include "common/fsync.h"

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

namespace {

// Sizes in a factory string that FAISS would accept and then crash on, or allocate without bound for
// ("HNSW0", "IVF99999999999"): each number must be in a sane range.
Status CheckFactorySizes(const std::string& factory) {
  static const std::regex sized("(HNSW|IVF|SOAR|PQ|NSG)([0-9]+)");
  for (std::sregex_iterator it(factory.begin(), factory.end(), sized), end; it != end; ++it) {
    const std::string kind = (*it)[1], digits = (*it)[2];
    const uint64_t n = digits.size() > 9 ? UINT64_MAX : std::stoull(digits);
    const uint64_t lo = kind == "HNSW" || kind == "NSG" ? 2 : 1, hi = kind == "HNSW" || kind == "NSG" ? 512 : (1u << 24);
    if (n < lo || n > hi) {
      return Status::InvalidArgument("dense index: '" + factory + "': " + kind + " takes a size in " + std::to_string(lo) +
                                     ".." + std::to_string(hi) + ", not " + digits);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<FaissIndex>> FaissIndex::Create(size_t dim, const std::string& factory, DenseMetric metric) {
  if (dim == 0 || dim > 65536) return Status::InvalidArgument("dense index: dim " + std::to_string(dim) + " out of range");
  QUARRY_RETURN_IF_ERROR(CheckFactorySizes(factory));
  std::unique_ptr<FaissIndex> f(new FaissIndex());
  f->dim_ = dim;
  if (factory.rfind("SOAR", 0) == 0) {
    std::smatch m;
    if (!std::regex_match(factory, m, std::regex("SOAR([0-9]+)(,lambda=([0-9]{1,6}(\\.[0-9]{0,6})?))?"))) {
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
    // IVF indexes keep ids themselves, which lets them remove vectors; the others go in an id map.
    const bool native_ids = factory.rfind("IVF", 0) == 0;
    const std::string spec = factory.rfind("IDMap", 0) == 0 || native_ids ? factory : "IDMap2," + factory;
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

bool FaissIndex::CanRemove() const {
  if (soar_ || mapped_) return false;
  if (dynamic_cast<const faiss::IndexIVF*>(index_.get())) return true;  // ids native (not under a map)
  auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get());
  return map && dynamic_cast<const faiss::IndexFlatCodes*>(map->index) != nullptr;
}

Result<size_t> FaissIndex::Remove(const std::vector<int64_t>& ids) {
  if (!CanRemove()) return Status::FailedPrecondition("dense index: this index cannot remove vectors");
  try {
    faiss::IDSelectorBatch selector(static_cast<size_t>(ids.size()), reinterpret_cast<const faiss::Index::idx_t*>(ids.data()));
    return index_->remove_ids(selector);
  } catch (const std::exception& e) {
    return FaissError(e);
  }
}

Result<std::vector<bool>> FaissIndex::Contains(const std::vector<int64_t>& ids) const {
  std::vector<bool> out(ids.size(), false);
  if (soar_) {
    std::vector<int64_t> held = soar_->ids();
    std::sort(held.begin(), held.end());
    for (size_t i = 0; i < ids.size(); ++i) out[i] = std::binary_search(held.begin(), held.end(), ids[i]);
    return out;
  }
  if (auto* map2 = dynamic_cast<const faiss::IndexIDMap2*>(index_.get())) {
    for (size_t i = 0; i < ids.size(); ++i) out[i] = map2->rev_map.count(ids[i]) > 0;
    return out;
  }
  if (auto* map = dynamic_cast<const faiss::IndexIDMap*>(index_.get())) {
    std::vector<faiss::Index::idx_t> held(map->id_map.begin(), map->id_map.end());
    std::sort(held.begin(), held.end());
    for (size_t i = 0; i < ids.size(); ++i) out[i] = std::binary_search(held.begin(), held.end(), ids[i]);
    return out;
  }
  return Status::FailedPrecondition("dense index: this index cannot list its ids");
}

namespace {

// A FAISS writer into a file descriptor that hashes what it writes.
struct HashingFileWriter : faiss::IOWriter {
  int fd;
  XXH64_state_t* state;
  uint64_t bytes = 0;
  bool failed = false;
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    const auto* p = static_cast<const char*>(ptr);
    size_t left = size * nitems;
    XXH64_update(state, p, left);
    bytes += left;
    while (left > 0 && !failed) {
      const ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) failed = true;
      else p += w, left -= static_cast<size_t>(w);
    }
    return failed ? 0 : nitems;
  }
};

}  // namespace

Result<FaissIndex::FileInfo> FaissIndex::WriteFile(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": " + std::strerror(errno));
  HashingFileWriter writer;
  writer.fd = fd;
  writer.state = XXH64_createState();
  XXH64_reset(writer.state, 0);
  Status s;
  try {
    if (soar_) {
      const std::string bytes = soar_->Serialize();
      writer(bytes.data(), 1, bytes.size());
    } else {
      faiss::write_index(index_.get(), &writer);
    }
  } catch (const std::exception& e) {
    s = FaissError(e);
  }
  if (s.ok() && writer.failed) s = Status::IOError(tmp + ": write failed (disk full?)");
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError(tmp + ": fsync: " + std::strerror(errno));
  if (::close(fd) != 0 && s.ok()) s = Status::IOError(tmp + ": close: " + std::strerror(errno));
  FileInfo info{writer.bytes, XXH64_digest(writer.state)};
  XXH64_freeState(writer.state);
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) s = Status::IOError(path + ": rename: " + std::strerror(errno));
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  const std::string parent = std::filesystem::path(path).parent_path().string();
  QUARRY_RETURN_IF_ERROR(SyncDirectory(parent.empty() ? "." : parent));
  return info;
}

Result<std::unique_ptr<FaissIndex>> FaissIndex::ReadFile(const std::string& path, const FileInfo& expected, bool map) {
  // FAISS trusts the sizes it reads, so the file is checked whole before FAISS sees it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? Status::NotFound(path + ": dense index file missing")
                           : Status::IOError(path + ": " + std::strerror(errno));
  }
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  std::vector<char> buf(1 << 20);
  uint64_t bytes = 0;
  Status s;
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      s = Status::IOError(path + ": read: " + std::strerror(errno));
      break;
    }
    if (r == 0) break;
    XXH64_update(state, buf.data(), static_cast<size_t>(r));
    bytes += static_cast<uint64_t>(r);
  }
  ::close(fd);
  const uint64_t checksum = XXH64_digest(state);
  XXH64_freeState(state);
  QUARRY_RETURN_IF_ERROR(s);
  if (bytes != expected.bytes || checksum != expected.checksum) {
    return Status::Corruption(path + ": dense index file does not match the checksum the collection recorded");
  }
  std::unique_ptr<FaissIndex> f(new FaissIndex());
  char head[5] = {};
  if (std::FILE* in = std::fopen(path.c_str(), "rb")) {
    const size_t got = std::fread(head, 1, 5, in);
    std::fclose(in);
    if (got == 5 && std::string_view(head, 5) == "QSOAR") {
      std::ifstream file(path, std::ios::binary);
      std::string all((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      QUARRY_ASSIGN_OR_RETURN(f->soar_, SoarIvf::Deserialize(all));
      f->dim_ = f->soar_->dim();
      return f;
    }
  }
  try {
    f->index_.reset(faiss::read_index(path.c_str(), map ? faiss::IO_FLAG_MMAP | faiss::IO_FLAG_READ_ONLY : 0));
  } catch (const std::exception& e) {
    return Status::Corruption(path + ": dense index: " + e.what());
  }
  f->dim_ = static_cast<size_t>(f->index_->d);
  f->mapped_ = map;
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(Inner(f->index_.get()))) {
    // Mapped lists would otherwise start FAISS's prefetch threads on every search (32 by default):
    // milliseconds per query, for pages the search touches anyway.
    if (auto* on_disk = dynamic_cast<faiss::OnDiskInvertedLists*>(ivf->invlists)) on_disk->prefetch_nthread = 0;
  }
  return f;
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
