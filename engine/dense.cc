// Dense retrieval in a collection: stored vectors (the source of truth), the persisted FAISS index that
// mirrors them (the base) with the vectors written since, and the encoder that embeds documents on
// upsert and queries at search time.
//
// Vectors live in a key space of the `dense` family named by dense.config ("space"): space 0 is the
// original layout ('d'/'q' + BE32 doc); a rebuild with an encoder writes space n + 1
// ('V' + BE32 n+1 + 'd'/'q' + BE32 doc) beside the old one and switches to it in the batch that writes
// the new configuration, so a failed or killed rebuild leaves the old vectors and index untouched.
// 'c' + BE32 doc marks a document whose vector changed since the base file (it is searched from memory
// until the next base); 's' + BE32 doc a base entry that is stale but could not be removed (HNSW, SOAR).
#include <chrono>
#include <filesystem>
#include <limits>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "engine/collection_impl.h"
#include "index/dense/autotune.h"
#include "model/kernels.h"

namespace quarry {

namespace fs = std::filesystem;

namespace {

constexpr char kMetaDenseBase[] = "dense.base";        // JSON: the base file's name, generation, bytes, checksum
constexpr char kMetaDenseCount[] = "dense.n_vectors";  // BE64: document vectors of the active space
constexpr uint64_t kMinDeltaForRefresh = 4096;         // vectors since the base before it is rewritten

std::string Be32(uint32_t v) { return EncodeFixed32BE(v); }

char TableChar(VectorTable t) { return t == VectorTable::kDocuments ? 'd' : 'q'; }

std::string VectorPrefix(uint32_t space, VectorTable table) {
  if (space == 0) return std::string(1, TableChar(table));
  return "V" + Be32(space) + TableChar(table);
}
std::string VectorKey(uint32_t space, VectorTable table, DocNum doc) { return VectorPrefix(space, table) + Be32(doc); }
std::string ChangedKey(DocNum doc) { return "c" + Be32(doc); }
std::string StaleKey(DocNum doc) { return "s" + Be32(doc); }

std::string VectorBytes(const float* v, size_t dim) {
  static_assert(std::endian::native == std::endian::little, "vectors are stored little-endian");
  return std::string(reinterpret_cast<const char*>(v), dim * sizeof(float));
}

void PutU64(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* meta, const char* key, uint64_t v) {
  std::string value;
  PutFixed64BE(&value, v);
  batch->Put(meta, key, value);
}

Result<std::optional<nlohmann::json>> LoadConfig(const Store& store, const Store::Snapshot* snap = nullptr) {
  QUARRY_ASSIGN_OR_RETURN(auto bytes, store.Get(kCfMeta, kMetaDenseConfig, snap));
  if (!bytes) return std::optional<nlohmann::json>();
  auto j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("dim") || !j["dim"].is_number_unsigned() ||
      !j.value("factory", nlohmann::json()).is_string()) {
    return Status::Corruption(store.dir() + ": meta dense.config is not a valid dense configuration");
  }
  return std::optional<nlohmann::json>(std::move(j));
}

uint32_t SpaceOf(const nlohmann::json& config) { return config.value("space", uint32_t{0}); }
DenseMetric MetricOf(const nlohmann::json& config) {
  return config.value("metric", "ip") == "ip" ? DenseMetric::kInnerProduct : DenseMetric::kL2;
}

// Options left unset are stored as null, so the model keeps choosing them when the collection opens.
nlohmann::json EncoderJson(const DenseIndexOptions& o) {
  if (o.encoder.empty()) return nullptr;
  auto optional = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  // The model path is stored absolute (searches may run from any directory).
  return {{"model", fs::absolute(o.encoder).lexically_normal().string()},
          {"query_prefix", optional(o.query_prefix)},
          {"document_prefix", optional(o.document_prefix)},
          {"pooling", o.pooling},
          {"normalize", optional(o.normalize)},
          {"max_length", o.max_length}};
}

DualEncoderOptions EncoderOptions(const nlohmann::json& e) {
  DualEncoderOptions o;
  auto text = [&](const char* name) {
    auto it = e.find(name);
    return it != e.end() && it->is_string() ? std::optional<std::string>(it->get<std::string>()) : std::nullopt;
  };
  o.query_prefix = text("query_prefix");
  o.document_prefix = text("document_prefix");
  const std::string pooling = text("pooling").value_or("");
  o.pooling = pooling == "cls"    ? Pooling::kCls
              : pooling == "mean" ? Pooling::kMean
              : pooling == "last" ? Pooling::kLastToken
                                  : Pooling::kDefault;
  if (auto it = e.find("normalize"); it != e.end() && it->is_boolean()) o.normalize = it->get<bool>();
  if (auto it = e.find("max_length"); it != e.end() && it->is_number_unsigned()) o.max_length = it->get<size_t>();
  return o;
}

std::string DocumentText(const Document& d) { return d.title.empty() ? d.text : d.title + " " + d.text; }

// Every stored vector of `table` in `space`, in doc-number order.
Status ForEachVector(const Store& store, uint32_t space, VectorTable table, size_t dim,
                     const std::function<void(DocNum, const float*)>& fn, const Store::Snapshot* snap = nullptr) {
  const std::string prefix = VectorPrefix(space, table);
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ReadOptionsAt(snap), store.cf(kCfDense)));
  std::vector<float> v(dim);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view key(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    uint32_t doc = 0;
    if (key.size() != 4 || !GetFixed32BE(&key, &doc) || it->value().size() != dim * sizeof(float)) {
      return Status::Corruption(store.dir() + ": dense vector record of " + std::to_string(it->value().size()) +
                                " bytes where dim is " + std::to_string(dim));
    }
    std::memcpy(v.data(), it->value().data(), dim * sizeof(float));
    fn(doc, v.data());
  }
  return FromRocks(it->status(), store.dir() + ": reading dense vectors");
}

Status LoadDocumentVectors(const Store& store, uint32_t space, size_t dim, std::vector<int64_t>* ids,
                           std::vector<float>* vectors, const Store::Snapshot* snap = nullptr) {
  return ForEachVector(
      store, space, VectorTable::kDocuments, dim,
      [&](DocNum doc, const float* v) {
        ids->push_back(doc);
        vectors->insert(vectors->end(), v, v + dim);
      },
      snap);
}

Result<std::optional<std::vector<float>>> ReadVector(const Store& store, uint32_t space, VectorTable table, DocNum doc,
                                                     size_t dim, const Store::Snapshot* snap = nullptr) {
  QUARRY_ASSIGN_OR_RETURN(auto bytes, store.Get(kCfDense, VectorKey(space, table, doc), snap));
  if (!bytes) return std::optional<std::vector<float>>();
  if (dim ? bytes->size() != dim * sizeof(float) : bytes->size() % sizeof(float)) {
    return Status::Corruption(store.dir() + ": dense vector of doc " + std::to_string(doc) + " has " +
                              std::to_string(bytes->size()) + " bytes");
  }
  std::vector<float> v(bytes->size() / sizeof(float));
  std::memcpy(v.data(), bytes->data(), bytes->size());
  return std::optional<std::vector<float>>(std::move(v));
}

Status ApplyKnobs(FaissIndex* index, const nlohmann::json& config) {
  if (size_t n = config.value("nprobe", size_t{0}); n && index->HasSearchParameter("nprobe")) {
    QUARRY_RETURN_IF_ERROR(index->SetSearchParameter("nprobe", n));
  }
  if (size_t n = config.value("ef_search", size_t{0}); n && index->HasSearchParameter("efSearch")) {
    QUARRY_RETURN_IF_ERROR(index->SetSearchParameter("efSearch", n));
  }
  return Status::Ok();
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A fresh index of every stored document vector of `config`'s space (IVF/PQ trained on a seeded sample).
Result<std::unique_ptr<FaissIndex>> BuildFromVectors(const Store& store, const nlohmann::json& config,
                                                     const Store::Snapshot* snap = nullptr) {
  const size_t dim = config["dim"].get<size_t>();
  QUARRY_ASSIGN_OR_RETURN(auto index, FaissIndex::Create(dim, config.value("factory", "Flat"), MetricOf(config)));
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  QUARRY_RETURN_IF_ERROR(LoadDocumentVectors(store, SpaceOf(config), dim, &ids, &vectors, snap));
  if (!index->is_trained() && !ids.empty()) {
    QUARRY_RETURN_IF_ERROR(index->Train(SampleRows(vectors, dim, config.value("train_sample", size_t{100000}), /*seed=*/42)));
  }
  if (!ids.empty()) QUARRY_RETURN_IF_ERROR(index->Add(ids, vectors));
  return index;
}

}  // namespace

// --- DenseView -------------------------------------------------------------------------------------

uint64_t DenseView::n_delta() const {
  uint64_t n = 0;
  for (const auto& c : chunks) n += c->ids.size();
  return n;
}

uint32_t DenseView::StaleBelow(DocNum doc) const {
  auto it = std::lower_bound(superseded->begin(), superseded->end(), std::make_pair(doc, uint32_t{0}));
  return it != superseded->end() && it->first == doc ? it->second : 0;
}

namespace {

// What an index scores a stored vector against a query: the inner product, or the squared L2 distance.
float RawScore(const float* v, const float* query, size_t dim, bool ip) {
  if (ip) return model::Dot(v, query, dim);
  float d2 = 0;
  for (size_t i = 0; i < dim; ++i) d2 += (v[i] - query[i]) * (v[i] - query[i]);
  return d2;
}

}  // namespace

Result<std::vector<DenseHit>> DenseView::Search(const std::vector<float>& query, size_t k) const {
  if (query.size() != dim) {
    return Status::InvalidArgument("dense search: query vector of dim " + std::to_string(query.size()) +
                                   " for an index of dim " + std::to_string(dim));
  }
  const bool ip = metric == DenseMetric::kInnerProduct;
  std::vector<DenseHit> hits;
  if (base && base->size() > 0 && k > 0) {
    // Stale base entries are filtered out, so the base is asked for as many more.
    const size_t want = std::min<size_t>(base->size(), k + superseded->size());
    QUARRY_ASSIGN_OR_RETURN(auto found, base->Search(query, want));
    for (const auto& h : found[0]) {
      if (StaleBelow(static_cast<DocNum>(h.id)) == 0) hits.push_back(h);
    }
  }
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = *chunks[c];
    for (size_t r = 0; r < chunk.ids.size(); ++r) {
      if (StaleBelow(static_cast<DocNum>(chunk.ids[r])) > c + 1) continue;
      hits.push_back({chunk.ids[r], RawScore(&chunk.vectors[r * dim], query.data(), dim, ip)});
    }
  }
  std::sort(hits.begin(), hits.end(), [ip](const DenseHit& a, const DenseHit& b) {
    if (a.score != b.score) return ip ? a.score > b.score : a.score < b.score;
    return a.id < b.id;
  });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

// --- loading -------------------------------------------------------------------------------------

Result<std::shared_ptr<const DualEncoder>> Collection::Impl::CurrentEncoder(std::string* identity) const {
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config || (*config)["encoder"].is_null()) {
    return Status::FailedPrecondition(store->dir() + ": the dense index has no encoder (its vectors were imported); "
                                      "search it with a query vector (`quarry search DIR --vector FILE.npy`, SearchVector)");
  }
  const std::string key = (*config)["encoder"].dump();
  if (identity) *identity = key;
  std::lock_guard lock(index_mu);
  if (!dense_encoder || dense_encoder_config != key) {
    QUARRY_ASSIGN_OR_RETURN(auto e, DualEncoder::Load((*config)["encoder"].value("model", ""),
                                                      EncoderOptions((*config)["encoder"])));
    dense_encoder = std::move(e);
    dense_encoder_config = key;
  }
  return dense_encoder;
}

Result<std::shared_ptr<const DenseView>> Collection::Impl::CurrentDenseView(bool holding_write_lock) const {
  std::lock_guard lock(index_mu);
  if (dense_view) return dense_view;
  // Only a writer writes a rebuilt base back: a search (a const call) changes nothing on disk.
  const bool can_write_back = writable && holding_write_lock;
  if (!writable) {
    // A reader's view may name a base file the writer has replaced (and removed) since: catch up.
    for (int attempt = 0; attempt < 8; ++attempt) {
      QUARRY_ASSIGN_OR_RETURN(auto meta, store->Get(kCfMeta, kMetaDenseBase));
      const auto m = meta ? nlohmann::json::parse(*meta, nullptr, false) : nlohmann::json();
      const std::string file = m.is_object() ? m.value("file", "") : "";
      if (file.empty() || fs::exists(store->dir() + "/" + file)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(attempt, 4)));
      QUARRY_RETURN_IF_ERROR(store->CatchUp());
    }
  }
  // Everything is read as of one snapshot; its generation tells CommitDense whether a write that
  // committed meanwhile is already in the view.
  const auto snapshot = store->TakeSnapshot();
  const Store::Snapshot* snap = snapshot.get();
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store, snap));
  if (!config) return Status::NotFound(store->dir() + ": no dense index (run `quarry index DIR --encoder MODEL`)");
  auto view = std::make_shared<DenseView>();
  view->config = *config;
  view->space = SpaceOf(*config);
  view->dim = (*config)["dim"].get<size_t>();
  view->metric = MetricOf(*config);
  QUARRY_ASSIGN_OR_RETURN(view->n_vectors, store->GetCounter(kMetaDenseCount, snap));
  QUARRY_ASSIGN_OR_RETURN(view->generation, store->GetCounter(kMetaDenseGeneration, snap));
  // The base file, used only when it is the one the meta record vouches for.
  QUARRY_ASSIGN_OR_RETURN(auto base_meta, store->Get(kCfMeta, kMetaDenseBase, snap));
  if (base_meta) {
    auto m = nlohmann::json::parse(*base_meta, nullptr, false);
    if (!m.is_discarded() && m.is_object() && m.value("factory", "") == config->value("factory", "") &&
        m.value("file", "").find('/') == std::string::npos && !m.value("file", "").empty()) {
      const FaissIndex::FileInfo expected{m.value("bytes", uint64_t{0}),
                                          std::strtoull(m.value("xxh64", "").c_str(), nullptr, 16)};
      auto loaded = FaissIndex::ReadFile(store->dir() + "/" + m.value("file", ""), expected, /*map=*/!writable);
      if (loaded.ok() && (*loaded)->dim() == view->dim) {
        QUARRY_RETURN_IF_ERROR(ApplyKnobs(loaded->get(), *config));
        view->base = std::move(*loaded);
        view->base_file = m.value("file", "");
        view->base_bytes = expected.bytes;
      } else if (!loaded.ok() && loaded.status().code() == StatusCode::kIOError) {
        return loaded.status();
      }
    }
  }
  if (!view->base) {
    // Missing, stale or corrupt: rebuilt from the vectors, and written back when the caller is a writer.
    view->rebuilt = true;
    QUARRY_ASSIGN_OR_RETURN(auto fresh, BuildFromVectors(*store, *config, snap));
    QUARRY_RETURN_IF_ERROR(ApplyKnobs(fresh.get(), *config));
    if (can_write_back) {
      const uint64_t gen = view->generation;
      const std::string file = "dense-" + std::to_string(gen) + ".faiss";
      QUARRY_ASSIGN_OR_RETURN(auto info, fresh->WriteFile(store->dir() + "/" + file));
      rocksdb::WriteBatch batch;
      batch.Put(store->cf(kCfMeta), kMetaDenseBase,
                nlohmann::json({{"file", file}, {"generation", gen}, {"factory", config->value("factory", "")},
                                {"bytes", info.bytes}, {"xxh64", Hex(info.checksum)}})
                    .dump());
      batch.DeleteRange(store->cf(kCfDense), "c", "d");
      batch.DeleteRange(store->cf(kCfDense), "s", "t");
      QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
      view->base_file = file;
      view->base_bytes = info.bytes;
    }
    view->base = std::move(fresh);
  } else {
    // The vectors written since the base: every marked document's current vector, one chunk.
    auto chunk = std::make_shared<DenseView::Chunk>();
    auto superseded = std::make_shared<std::vector<std::pair<DocNum, uint32_t>>>();
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(snap), store->cf(kCfDense)));
    for (char kind : {'c', 's'}) {
      const std::string prefix(1, kind);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        if (it->key().size() != 5) return Status::Corruption(store->dir() + ": dense marker of wrong size");
        const DocNum doc = DecodeFixed32BE(it->key().data() + 1);
        superseded->emplace_back(doc, 1);
        if (kind == 'c') {
          QUARRY_ASSIGN_OR_RETURN(auto v, ReadVector(*store, view->space, VectorTable::kDocuments, doc, view->dim, snap));
          if (v) {
            chunk->ids.push_back(doc);
            chunk->vectors.insert(chunk->vectors.end(), v->begin(), v->end());
          }
        }
      }
      if (!it->status().ok()) return FromRocks(it->status(), store->dir() + ": reading dense markers");
    }
    std::sort(superseded->begin(), superseded->end());
    superseded->erase(std::unique(superseded->begin(), superseded->end()), superseded->end());
    view->superseded = std::move(superseded);
    if (!chunk->ids.empty()) view->chunks.push_back(std::move(chunk));
  }
  dense_view = std::move(view);
  return dense_view;
}

// --- writes --------------------------------------------------------------------------------------

Status Collection::Impl::DenseUpdates(const std::vector<DocNum>& removed,
                                      const std::vector<std::pair<DocNum, const Document*>>& added,
                                      rocksdb::WriteBatch* batch) {
  dense_pending = DensePending{};
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config) return Status::Ok();
  const uint32_t space = SpaceOf(*config);
  QUARRY_ASSIGN_OR_RETURN(int64_t count, store->GetCounter(kMetaDenseCount));
  auto* cf = store->cf(kCfDense);
  for (DocNum doc : removed) {
    QUARRY_ASSIGN_OR_RETURN(auto had, store->Get(kCfDense, VectorKey(space, VectorTable::kDocuments, doc)));
    if (had) {
      --count;
      batch->Put(cf, ChangedKey(doc), "");
      dense_pending.removed.push_back(doc);
    }
    batch->Delete(cf, VectorKey(space, VectorTable::kDocuments, doc));
    batch->Delete(cf, VectorKey(space, VectorTable::kQueries, doc));
  }
  // A document replaced later in the same batch is in both lists: it must end without a vector.
  std::vector<std::pair<DocNum, const Document*>> kept;
  for (const auto& a : added) {
    if (std::find(removed.begin(), removed.end(), a.first) == removed.end()) kept.push_back(a);
  }
  if (!(*config)["encoder"].is_null() && !kept.empty()) {
    QUARRY_ASSIGN_OR_RETURN(auto encoder, CurrentEncoder());
    std::vector<std::string> texts;
    for (const auto& [doc, d] : kept) texts.push_back(DocumentText(*d));
    QUARRY_ASSIGN_OR_RETURN(auto vectors, encoder->EncodeDocuments(texts));
    const size_t dim = encoder->dim();
    for (float x : vectors) {
      if (!std::isfinite(x)) return Status::InvalidArgument("dense: the encoder produced a non-finite value");
    }
    auto chunk = std::make_shared<DenseView::Chunk>();
    for (size_t i = 0; i < kept.size(); ++i) {
      batch->Put(cf, VectorKey(space, VectorTable::kDocuments, kept[i].first), VectorBytes(&vectors[i * dim], dim));
      batch->Put(cf, ChangedKey(kept[i].first), "");
      chunk->ids.push_back(kept[i].first);
      ++count;
    }
    chunk->vectors = std::move(vectors);
    dense_pending.added = std::move(chunk);
  }
  QUARRY_ASSIGN_OR_RETURN(const uint64_t gen, store->GetCounter(kMetaDenseGeneration));
  PutU64(batch, store->cf(kCfMeta), kMetaDenseGeneration, gen + 1);
  PutU64(batch, store->cf(kCfMeta), kMetaDenseCount, static_cast<uint64_t>(std::max<int64_t>(0, count)));
  dense_pending.n_vectors = static_cast<uint64_t>(std::max<int64_t>(0, count));
  dense_pending.generation = gen + 1;
  dense_pending.active = true;
  return Status::Ok();
}

Status Collection::Impl::CommitDense() {
  DensePending pending = std::move(dense_pending);
  dense_pending = DensePending{};
  if (!pending.active) return Status::Ok();
  std::shared_ptr<const DenseView> old;
  {
    std::lock_guard lock(index_mu);
    old = dense_view;
  }
  if (!old) return Status::Ok();  // never loaded: the next load reads the markers
  if (old->generation >= pending.generation) return Status::Ok();  // loaded after the write: in it already
  if (old->generation + 1 != pending.generation) {  // missed a write: load again when next needed
    std::lock_guard lock(index_mu);
    dense_view.reset();
    return Status::Ok();
  }
  auto view = std::make_shared<DenseView>(*old);
  view->generation = pending.generation;
  const uint32_t seq = static_cast<uint32_t>(view->chunks.size()) + 1;
  std::vector<std::pair<DocNum, uint32_t>> superseded(*old->superseded);
  auto supersede = [&](DocNum doc) {
    auto it = std::lower_bound(superseded.begin(), superseded.end(), std::make_pair(doc, uint32_t{0}));
    if (it != superseded.end() && it->first == doc) it->second = seq;
    else superseded.insert(it, {doc, seq});
  };
  for (DocNum doc : pending.removed) supersede(doc);
  if (pending.added) {
    for (int64_t id : pending.added->ids) supersede(static_cast<DocNum>(id));
    view->chunks.push_back(pending.added);
  }
  view->superseded = std::make_shared<const std::vector<std::pair<DocNum, uint32_t>>>(std::move(superseded));
  view->n_vectors = pending.n_vectors;
  const uint64_t base_size = view->base ? view->base->size() : 0;
  const uint64_t limit = view->config.value("max_unindexed", uint64_t{0});
  // Due when enough has changed since the base, or when the base was rebuilt by a search and never
  // written (a write is the first chance to persist it).
  const bool due = view->base_file.empty() ||
                   std::max<uint64_t>(view->n_delta(), view->superseded->size()) >
                       (limit ? limit : std::max<uint64_t>(kMinDeltaForRefresh, base_size / 128));
  {
    std::lock_guard lock(index_mu);
    dense_view = view;
  }
  return due ? RefreshDenseBase() : Status::Ok();
}

Status Collection::Impl::RefreshDenseBase() {
  QUARRY_ASSIGN_OR_RETURN(auto view, CurrentDenseView(/*holding_write_lock=*/true));
  if (view->chunks.empty() && view->superseded->empty() && !view->base_file.empty()) return Status::Ok();
  const nlohmann::json& config = view->config;
  // The latest vector of each document written since the base.
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  for (size_t c = 0; c < view->chunks.size(); ++c) {
    const auto& chunk = *view->chunks[c];
    for (size_t r = 0; r < chunk.ids.size(); ++r) {
      if (view->StaleBelow(static_cast<DocNum>(chunk.ids[r])) > c + 1) continue;
      ids.push_back(chunk.ids[r]);
      vectors.insert(vectors.end(), &chunk.vectors[r * view->dim], &chunk.vectors[(r + 1) * view->dim]);
    }
  }
  std::vector<int64_t> superseded;
  for (const auto& [doc, s] : *view->superseded) superseded.push_back(doc);
  std::unique_ptr<FaissIndex> next;
  std::vector<DocNum> stale;  // base entries an index that cannot remove keeps, filtered at search
  if (view->base && !view->base_file.empty()) {
    QUARRY_ASSIGN_OR_RETURN(auto base_meta, store->Get(kCfMeta, kMetaDenseBase));
    auto m = nlohmann::json::parse(base_meta.value_or("{}"), nullptr, false);
    const FaissIndex::FileInfo expected{m.value("bytes", uint64_t{0}), std::strtoull(m.value("xxh64", "").c_str(), nullptr, 16)};
    QUARRY_ASSIGN_OR_RETURN(next, FaissIndex::ReadFile(store->dir() + "/" + view->base_file, expected, /*map=*/false));
    if (next->CanRemove()) {
      QUARRY_RETURN_IF_ERROR(next->Remove(superseded).status());
    } else {
      QUARRY_ASSIGN_OR_RETURN(auto in_base, next->Contains(superseded));
      for (size_t i = 0; i < superseded.size(); ++i) {
        if (in_base[i]) stale.push_back(static_cast<DocNum>(superseded[i]));
      }
      // A document given a new vector under a doc number the base holds would have two entries; and
      // past a tenth of the base, stale entries cost more than a rebuild.
      bool duplicate = false;
      for (int64_t id : ids) duplicate = duplicate || std::binary_search(stale.begin(), stale.end(), static_cast<DocNum>(id));
      if (duplicate || stale.size() > next->size() / 10) next.reset();
    }
    if (next && !ids.empty()) QUARRY_RETURN_IF_ERROR(next->Add(ids, vectors));
  }
  if (!next) {
    QUARRY_ASSIGN_OR_RETURN(next, BuildFromVectors(*store, config));
    stale.clear();
  }
  QUARRY_RETURN_IF_ERROR(ApplyKnobs(next.get(), config));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t gen, store->GetCounter(kMetaDenseGeneration));
  const std::string file = "dense-" + std::to_string(gen) + ".faiss";
  QUARRY_ASSIGN_OR_RETURN(auto info, next->WriteFile(store->dir() + "/" + file));
  rocksdb::WriteBatch batch;
  batch.Put(store->cf(kCfMeta), kMetaDenseBase,
            nlohmann::json({{"file", file}, {"generation", gen}, {"factory", config.value("factory", "")},
                            {"bytes", info.bytes}, {"xxh64", Hex(info.checksum)}})
                .dump());
  batch.DeleteRange(store->cf(kCfDense), "c", "d");
  batch.DeleteRange(store->cf(kCfDense), "s", "t");
  for (DocNum d : stale) batch.Put(store->cf(kCfDense), StaleKey(d), "");
  QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  auto fresh = std::make_shared<DenseView>(*view);
  fresh->chunks.clear();
  auto marks = std::make_shared<std::vector<std::pair<DocNum, uint32_t>>>();
  for (DocNum d : stale) marks->emplace_back(d, 1);
  fresh->superseded = std::move(marks);
  fresh->base = std::move(next);
  fresh->base_file = file;
  fresh->base_bytes = info.bytes;
  fresh->rebuilt = false;
  {
    std::lock_guard lock(index_mu);
    dense_view = std::move(fresh);
  }
  if (view->base_file != file) {
    std::error_code ec;
    fs::remove(store->dir() + "/" + view->base_file, ec);
  }
  return Status::Ok();
}

Status Collection::Impl::RepairDenseBase() {
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config) return Status::Ok();
  QUARRY_ASSIGN_OR_RETURN(auto view, CurrentDenseView(/*holding_write_lock=*/true));
  return view->base_file.empty() ? RefreshDenseBase() : Status::Ok();
}

Status Collection::Impl::RecountDenseVectors() {
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config) return Status::Ok();
  uint64_t n = 0;
  QUARRY_RETURN_IF_ERROR(ForEachVector(*store, SpaceOf(*config), VectorTable::kDocuments, (*config)["dim"].get<size_t>(),
                                       [&](DocNum, const float*) { ++n; }));
  rocksdb::WriteBatch batch;
  PutU64(&batch, store->cf(kCfMeta), kMetaDenseCount, n);
  return store->Write(&batch, /*sync=*/true);
}

Status Collection::Impl::RemoveUnusedDenseFiles() {
  // Base files and vector spaces the configuration no longer names: left by a crash during a rebuild
  // or a refresh, or by format 1 (dense.faiss).
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  QUARRY_ASSIGN_OR_RETURN(auto base_meta, store->Get(kCfMeta, kMetaDenseBase));
  std::string current;
  if (base_meta) {
    auto m = nlohmann::json::parse(*base_meta, nullptr, false);
    if (!m.is_discarded() && m.is_object()) current = m.value("file", "");
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store->dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name != current && name.starts_with("dense") && (name.ends_with(".faiss") || name.ends_with(".tmp"))) {
      fs::remove(e.path(), ec);
    }
  }
  const uint32_t active = config ? SpaceOf(*config) : 0;
  std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(nullptr), store->cf(kCfDense)));
  rocksdb::WriteBatch batch;
  for (it->Seek("V"); it->Valid() && it->key().starts_with("V") && it->key().size() >= 5;) {
    const uint32_t space = DecodeFixed32BE(it->key().data() + 1);
    const std::string from = "V" + Be32(space), to = space == UINT32_MAX ? "W" : "V" + Be32(space + 1);
    if (space != active) batch.DeleteRange(store->cf(kCfDense), from, to);
    it->Seek(to);
  }
  QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), store->dir() + ": scan dense spaces"));
  if (batch.Count() > 0) QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  return Status::Ok();
}

Result<uint64_t> DenseIndex::Build(const DenseIndexOptions& options,
                                             const std::function<void(uint64_t, uint64_t)>& progress) {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto old, LoadConfig(store));
  nlohmann::json config = {{"metric", options.inner_product ? "ip" : "l2"}, {"factory", options.factory},
                           {"encoder", EncoderJson(options)}, {"nprobe", options.nprobe},
                           {"ef_search", options.ef_search}, {"train_sample", options.train_sample},
                           {"max_unindexed", options.max_unindexed}};
  const uint32_t old_space = old ? SpaceOf(*old) : 0;
  uint32_t space = old_space;
  if (!options.encoder.empty()) {
    QUARRY_ASSIGN_OR_RETURN(auto encoder, DualEncoder::Load(options.encoder, EncoderOptions(config["encoder"])));
    config["dim"] = encoder->dim();
    // Every document is embedded into a new key space; the old vectors and index stay in use until the
    // batch that switches the configuration.
    space = old_space + 1;
    rocksdb::WriteBatch clear;
    clear.DeleteRange(store.cf(kCfDense), "V" + Be32(space), "V" + Be32(space + 1));
    QUARRY_RETURN_IF_ERROR(store.Write(&clear, /*sync=*/false));
    const uint64_t total = impl_->n_docs;
    uint64_t done = 0;
    std::vector<DocNum> docs;
    std::vector<std::string> texts;
    Status error;
    auto flush = [&]() -> Status {
      if (docs.empty()) return Status::Ok();
      QUARRY_ASSIGN_OR_RETURN(auto vectors, encoder->EncodeDocuments(texts));
      for (size_t i = 0; i < vectors.size(); ++i) {
        if (!std::isfinite(vectors[i])) {
          return Status::InvalidArgument("dense: the encoder gave a non-finite value for document number " +
                                         std::to_string(docs[i / encoder->dim()]));
        }
      }
      rocksdb::WriteBatch batch;
      for (size_t i = 0; i < docs.size(); ++i) {
        batch.Put(store.cf(kCfDense), VectorKey(space, VectorTable::kDocuments, docs[i]),
                  VectorBytes(&vectors[i * encoder->dim()], encoder->dim()));
      }
      QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/false));
      done += docs.size();
      if (progress) progress(done, total);
      docs.clear();
      texts.clear();
      return Status::Ok();
    };
    QUARRY_RETURN_IF_ERROR(store.ForEachDocument([&](DocNum doc, const Document& d) {
      docs.push_back(doc);
      texts.push_back(DocumentText(d));
      if (docs.size() == 256) error = flush();
      return error.ok();
    }));
    QUARRY_RETURN_IF_ERROR(error);
    QUARRY_RETURN_IF_ERROR(flush());
  } else {
    if (!old) return Status::FailedPrecondition(impl_->store->dir() + ": no vectors to index: give an encoder or import vectors first");
    config["dim"] = (*old)["dim"];
    config["encoder"] = (*old)["encoder"];  // a new index over the same vectors keeps their encoder
  }
  config["space"] = space;
  // The index is built and written before anything that names it is.
  QUARRY_ASSIGN_OR_RETURN(auto index, BuildFromVectors(store, config));
  QUARRY_RETURN_IF_ERROR(ApplyKnobs(index.get(), config));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t gen, store.GetCounter(kMetaDenseGeneration));
  const std::string file = "dense-" + std::to_string(gen + 1) + ".faiss";
  QUARRY_ASSIGN_OR_RETURN(auto info, index->WriteFile(impl_->store->dir() + "/" + file));
  rocksdb::WriteBatch batch;
  batch.Put(store.cf(kCfMeta), kMetaDenseConfig, config.dump());
  batch.Put(store.cf(kCfMeta), kMetaDenseBase,
            nlohmann::json({{"file", file}, {"generation", gen + 1}, {"factory", options.factory},
                            {"bytes", info.bytes}, {"xxh64", Hex(info.checksum)}})
                .dump());
  PutU64(&batch, store.cf(kCfMeta), kMetaDenseGeneration, gen + 1);
  PutU64(&batch, store.cf(kCfMeta), kMetaDenseCount, index->size());
  batch.DeleteRange(store.cf(kCfDense), "c", "d");
  batch.DeleteRange(store.cf(kCfDense), "s", "t");
  if (space != old_space) {
    if (old_space == 0) {
      batch.DeleteRange(store.cf(kCfDense), "d", "e");
      batch.DeleteRange(store.cf(kCfDense), "q", "r");
    } else {
      batch.DeleteRange(store.cf(kCfDense), "V" + Be32(old_space), "V" + Be32(old_space + 1));
    }
  }
  QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/true));
  auto view = std::make_shared<DenseView>();
  view->config = config;
  view->space = space;
  view->dim = config["dim"].get<size_t>();
  view->metric = MetricOf(config);
  view->n_vectors = index->size();
  view->generation = gen + 1;
  view->base = std::move(index);
  view->base_file = file;
  view->base_bytes = info.bytes;
  {
    std::lock_guard index_lock(impl_->index_mu);
    impl_->dense_view = view;
  }
  QUARRY_RETURN_IF_ERROR(impl_->RemoveUnusedDenseFiles());
  return view->n_vectors;
}

Status DenseIndex::PutVectors(const std::vector<std::string>& ids, const std::vector<float>& vectors, size_t dim,
                              VectorTable table) {
  if (dim == 0 || dim > 65536 || ids.size() > vectors.size() || vectors.size() / dim != ids.size() ||
      vectors.size() % dim != 0) {
    return Status::InvalidArgument("vectors: " + std::to_string(vectors.size()) + " floats for " +
                                   std::to_string(ids.size()) + " ids of dim " + std::to_string(dim));
  }
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(store));
  if (config && (*config)["dim"].get<size_t>() != dim) {
    return Status::InvalidArgument("vectors: dim " + std::to_string(dim) + " but the collection's vectors have dim " +
                                   std::to_string((*config)["dim"].get<size_t>()));
  }
  const uint32_t space = config ? SpaceOf(*config) : 0;
  QUARRY_ASSIGN_OR_RETURN(uint64_t count, store.GetCounter(kMetaDenseCount));
  rocksdb::WriteBatch batch;
  auto chunk = std::make_shared<DenseView::Chunk>();
  std::vector<DocNum> nums;
  for (size_t i = 0; i < ids.size(); ++i) {
    for (size_t k = 0; k < dim; ++k) {
      if (!std::isfinite(vectors[i * dim + k])) return Status::InvalidArgument("vectors: id '" + ids[i] + "' has a non-finite value");
    }
    QUARRY_ASSIGN_OR_RETURN(auto doc, store.LookupDocNum(ids[i]));
    if (!doc) return Status::NotFound("vectors: no document with id '" + ids[i] + "'");
    nums.push_back(*doc);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string key = VectorKey(space, table, nums[i]);
    if (table == VectorTable::kDocuments) {
      QUARRY_ASSIGN_OR_RETURN(auto had, store.Get(kCfDense, key));
      // A repeated id counts once; its last vector wins, as the batch's last Put does.
      if (!had && std::find(nums.begin(), nums.begin() + static_cast<std::ptrdiff_t>(i), nums[i]) == nums.begin() + static_cast<std::ptrdiff_t>(i)) ++count;
      batch.Put(store.cf(kCfDense), ChangedKey(nums[i]), "");
      chunk->ids.push_back(nums[i]);
      chunk->vectors.insert(chunk->vectors.end(), &vectors[i * dim], &vectors[(i + 1) * dim]);
    }
    batch.Put(store.cf(kCfDense), key, VectorBytes(&vectors[i * dim], dim));
  }
  if (!config) {
    const nlohmann::json fresh = {{"dim", dim}, {"metric", "ip"}, {"factory", "Flat"}, {"encoder", nullptr},
                                  {"nprobe", 0}, {"ef_search", 0}, {"train_sample", 100000}, {"space", 0}};
    batch.Put(store.cf(kCfMeta), kMetaDenseConfig, fresh.dump());
  }
  QUARRY_ASSIGN_OR_RETURN(uint64_t gen, store.GetCounter(kMetaDenseGeneration));
  PutU64(&batch, store.cf(kCfMeta), kMetaDenseGeneration, gen + 1);
  PutU64(&batch, store.cf(kCfMeta), kMetaDenseCount, count);
  QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/true));
  if (table != VectorTable::kDocuments) return Status::Ok();
  impl_->dense_pending = Collection::Impl::DensePending{};
  impl_->dense_pending.active = true;
  impl_->dense_pending.n_vectors = count;
  impl_->dense_pending.generation = gen + 1;
  // Within the chunk a repeated doc's last row is its vector: keep only that one.
  {
    std::vector<int64_t> ids_kept;
    std::vector<float> rows;
    for (size_t r = 0; r < chunk->ids.size(); ++r) {
      bool later = false;
      for (size_t s = r + 1; s < chunk->ids.size() && !later; ++s) later = chunk->ids[s] == chunk->ids[r];
      if (later) continue;
      ids_kept.push_back(chunk->ids[r]);
      rows.insert(rows.end(), &chunk->vectors[r * dim], &chunk->vectors[(r + 1) * dim]);
    }
    chunk->ids = std::move(ids_kept);
    chunk->vectors = std::move(rows);
  }
  impl_->dense_pending.added = std::move(chunk);
  if (!config) {  // the first vectors: the view is built when first searched
    std::lock_guard index_lock(impl_->index_mu);
    impl_->dense_view.reset();
    impl_->dense_pending = Collection::Impl::DensePending{};
    return Status::Ok();
  }
  return impl_->CommitDense();
}

Result<std::optional<std::vector<float>>> DenseIndex::GetVector(std::string_view id, VectorTable table) const {
  const Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto doc, store.LookupDocNum(id));
  if (!doc) return std::optional<std::vector<float>>();
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(store));
  return ReadVector(store, config ? SpaceOf(*config) : 0, table, *doc, config ? (*config)["dim"].get<size_t>() : 0);
}

Result<std::vector<float>> DenseIndex::Scores(std::string_view query, const std::vector<std::string>& ids) const {
  const Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(store));
  if (!config) return Status::NotFound(impl_->store->dir() + ": no dense index (run `quarry index --encoder`)");
  QUARRY_ASSIGN_OR_RETURN(auto encoder, impl_->CurrentEncoder());
  QUARRY_ASSIGN_OR_RETURN(const auto q, encoder->EncodeQueries({std::string(query)}));
  const size_t dim = (*config)["dim"].get<size_t>();
  if (q.size() != dim) {
    return Status::FailedPrecondition(impl_->store->dir() + ": the encoder gives " + std::to_string(q.size()) +
                                      "-dimensional vectors, the index holds " + std::to_string(dim));
  }
  const bool ip = MetricOf(*config) == DenseMetric::kInnerProduct;
  std::vector<float> scores;
  scores.reserve(ids.size());
  for (const auto& id : ids) {
    QUARRY_ASSIGN_OR_RETURN(auto doc, store.LookupDocNum(id));
    if (!doc) return Status::NotFound(impl_->store->dir() + ": document '" + id + "' is not in the collection");
    QUARRY_ASSIGN_OR_RETURN(auto v, ReadVector(store, SpaceOf(*config), VectorTable::kDocuments, *doc, dim));
    if (!v) {
      scores.push_back(std::numeric_limits<float>::quiet_NaN());
    } else {
      const float raw = RawScore(v->data(), q.data(), dim, ip);
      scores.push_back(ip ? raw : -raw);
    }
  }
  return scores;
}

Result<DenseIndexInfo> DenseIndex::Info() const {
  // From the configuration and counters: no index is loaded for this.
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*impl_->store));
  if (!config) return Status::NotFound(impl_->store->dir() + ": no dense index (run `quarry index DIR --encoder MODEL`)");
  DenseIndexInfo info;
  info.dim = (*config)["dim"].get<size_t>();
  QUARRY_ASSIGN_OR_RETURN(info.n_vectors, impl_->store->GetCounter(kMetaDenseCount));
  info.factory = config->value("factory", "");
  info.metric = config->value("metric", "ip");
  if (!(*config)["encoder"].is_null()) info.encoder = (*config)["encoder"].value("model", "");
  info.nprobe = config->value("nprobe", size_t{0});
  info.ef_search = config->value("ef_search", size_t{0});
  QUARRY_ASSIGN_OR_RETURN(auto base_meta, impl_->store->Get(kCfMeta, kMetaDenseBase));
  if (base_meta) {
    auto m = nlohmann::json::parse(*base_meta, nullptr, false);
    if (!m.is_discarded() && m.is_object()) info.file_bytes = m.value("bytes", uint64_t{0});
  }
  std::lock_guard lock(impl_->index_mu);
  if (impl_->dense_view) {
    info.rebuilt = impl_->dense_view->rebuilt;
    info.n_unindexed = impl_->dense_view->n_delta();
    info.file_bytes = impl_->dense_view->base_file.empty() ? 0 : impl_->dense_view->base_bytes;
  }
  return info;
}

Result<DenseTuning> DenseIndex::Tune(double target, size_t k, size_t n_queries) {
  QUARRY_ASSIGN_OR_RETURN(auto view, impl_->CurrentDenseView());
  if (!view->base) return Status::FailedPrecondition(impl_->store->dir() + ": no vectors to tune on");
  // Tuning changes the knob while searching: it works on a private copy of the index.
  QUARRY_ASSIGN_OR_RETURN(auto bytes, view->base->Serialize());
  QUARRY_ASSIGN_OR_RETURN(auto index, FaissIndex::Deserialize(bytes));
  const size_t dim = index->dim();
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  QUARRY_RETURN_IF_ERROR(LoadDocumentVectors(*impl_->store, view->space, dim, &ids, &vectors));
  if (ids.empty()) return Status::FailedPrecondition(impl_->store->dir() + ": no vectors to tune on");
  const std::vector<float> queries = SampleRows(vectors, dim, n_queries, /*seed=*/7);
  QUARRY_ASSIGN_OR_RETURN(auto exact, FaissIndex::Create(dim, "Flat", index->metric()));
  QUARRY_RETURN_IF_ERROR(exact->Add(ids, vectors));
  QUARRY_ASSIGN_OR_RETURN(auto exact_hits, exact->Search(queries, k));
  std::vector<std::vector<int64_t>> truth(exact_hits.size());
  for (size_t q = 0; q < exact_hits.size(); ++q) {
    for (const auto& h : exact_hits[q]) truth[q].push_back(h.id);
  }
  const size_t max_value = index->n_lists() ? index->n_lists() : 4096;
  QUARRY_ASSIGN_OR_RETURN(auto t, TuneSearchParameter(index.get(), queries, truth, k, target, max_value));
  DenseTuning out{t.knob, t.chosen, t.recall, t.recall_low, t.reached, {}};
  for (const auto& p : t.tried) out.tried.emplace_back(p.value, p.recall);
  QUARRY_RETURN_IF_ERROR(SetSearchParameters(t.knob == "nprobe" ? t.chosen : 0, t.knob == "efSearch" ? t.chosen : 0));
  return out;
}

Status DenseIndex::SetSearchParameters(size_t nprobe, size_t ef_search) {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*impl_->store));
  if (!config) return Status::NotFound(impl_->store->dir() + ": no dense index");
  if (nprobe) (*config)["nprobe"] = nprobe;
  if (ef_search) (*config)["ef_search"] = ef_search;
  rocksdb::WriteBatch batch;
  batch.Put(impl_->store->cf(kCfMeta), kMetaDenseConfig, config->dump());
  QUARRY_RETURN_IF_ERROR(impl_->store->Write(&batch, /*sync=*/true));
  // Searches in flight keep the view they hold; the next one loads it again (from the file) with the knobs.
  std::lock_guard index_lock(impl_->index_mu);
  impl_->dense_view.reset();
  return Status::Ok();
}

Status Collection::Impl::CheckDense(const Store::Snapshot* snap, const std::unordered_map<DocNum, std::string>& docs,
                                    CheckReport* report) const {
  auto problem = [&](std::string p) { AddProblem(report, std::move(p)); };
  auto config = LoadConfig(*store, snap);
  if (!config.ok()) {
    problem(config.status().message());
    return Status::Ok();
  }
  if (!*config) {
    // Vectors are written with their configuration (PutVectors) or switched to with it (rebuilds), so
    // vectors of space 0 without one are damage. (Spaces above 0 that nothing names are an interrupted
    // rebuild's, invisible, and removed by the next writable open.)
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(snap), store->cf(kCfDense)));
    for (const char* prefix : {"d", "q"}) {
      it->Seek(prefix);
      if (it->Valid() && it->key().starts_with(prefix)) problem("dense: vectors stored without a dense configuration");
    }
    return FromRocks(it->status(), store->dir() + ": scan dense");
  }
  const uint32_t space = SpaceOf(**config);
  const size_t dim = (**config)["dim"].get<size_t>();
  uint64_t n_doc_vectors = 0;
  for (VectorTable table : {VectorTable::kDocuments, VectorTable::kQueries}) {
    const std::string prefix = VectorPrefix(space, table);
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(snap), store->cf(kCfDense)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      ++report->n_vectors;
      if (table == VectorTable::kDocuments) ++n_doc_vectors;
      if (it->key().size() != prefix.size() + 4) {
        problem("dense: malformed key");
        continue;
      }
      const DocNum d = DecodeFixed32BE(it->key().data() + prefix.size());
      if (!docs.count(d)) problem("dense: vector of doc " + std::to_string(d) + ", which is not in docs");
      if (it->value().size() != dim * sizeof(float)) {
        problem("dense: vector of doc " + std::to_string(d) + " has " + std::to_string(it->value().size()) +
                " bytes, dim " + std::to_string(dim) + " needs " + std::to_string(dim * sizeof(float)));
      }
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), store->dir() + ": scan dense"));
  }
  QUARRY_ASSIGN_OR_RETURN(const uint64_t counted, store->GetCounter(kMetaDenseCount, snap));
  if (counted != n_doc_vectors) {
    problem("meta dense.n_vectors " + std::to_string(counted) + " but the dense family holds " +
            std::to_string(n_doc_vectors) + " document vectors");
  }
  return Status::Ok();
}

}  // namespace quarry
