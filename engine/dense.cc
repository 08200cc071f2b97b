// Dense retrieval in a collection: stored vectors (the source of truth), the persisted FAISS index that
// mirrors them, the encoder that embeds documents on upsert and queries at search time.
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "index/dense/autotune.h"
#include "engine/collection_impl.h"

namespace quarry {

namespace {

std::string VectorKey(VectorTable table, DocNum doc) {
  return (table == VectorTable::kDocuments ? "d" : "q") + EncodeFixed32BE(doc);
}

std::string VectorBytes(const float* v, size_t dim) {
  static_assert(std::endian::native == std::endian::little, "vectors are stored little-endian");
  return std::string(reinterpret_cast<const char*>(v), dim * sizeof(float));
}

void PutGeneration(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* meta, uint64_t v) {
  std::string value;
  PutFixed64BE(&value, v);
  batch->Put(meta, kMetaDenseGeneration, value);
}

Result<std::optional<nlohmann::json>> LoadConfig(const Store& store) {
  QUARRY_ASSIGN_OR_RETURN(auto bytes, store.Get(kCfMeta, kMetaDenseConfig));
  if (!bytes) return std::optional<nlohmann::json>();
  auto j = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("dim")) return Status::Corruption(store.dir() + ": meta dense.config is not valid JSON");
  return std::optional<nlohmann::json>(std::move(j));
}

nlohmann::json EncoderJson(const DenseIndexOptions& o) {
  if (o.encoder.empty()) return nullptr;
  // The model path is stored absolute (searches may run from any directory); pooling "" stays "", so the
  // model's kind keeps choosing it.
  return {{"model", std::filesystem::absolute(o.encoder).lexically_normal().string()},
          {"query_prefix", o.query_prefix},
          {"document_prefix", o.document_prefix},
          {"pooling", o.pooling},
          {"normalize", o.normalize},
          {"max_length", o.max_length}};
}

DualEncoderOptions EncoderOptions(const nlohmann::json& e) {
  DualEncoderOptions o;
  o.query_prefix = e.value("query_prefix", "");
  o.document_prefix = e.value("document_prefix", "");
  const std::string pooling = e.value("pooling", "");
  o.pooling = pooling == "cls"    ? Pooling::kCls
              : pooling == "mean" ? Pooling::kMean
              : pooling == "last" ? Pooling::kLastToken
                                  : Pooling::kDefault;
  o.normalize = e.value("normalize", true);
  o.max_length = e.value("max_length", size_t{512});
  return o;
}

std::string DocumentText(const Document& d) { return d.title.empty() ? d.text : d.title + " " + d.text; }

// Every stored vector of `table`, in doc-number order.
Status ForEachVector(const Store& store, VectorTable table, size_t dim,
                     const std::function<void(DocNum, const float*)>& fn) {
  const std::string prefix = table == VectorTable::kDocuments ? "d" : "q";
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(rocksdb::ReadOptions(), store.cf(kCfDense)));
  std::vector<float> v(dim);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view key(it->key().data() + 1, it->key().size() - 1);
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

// All stored document vectors: ids (doc numbers) and rows, in doc-number order.
Status LoadDocumentVectors(const Store& store, size_t dim, std::vector<int64_t>* ids, std::vector<float>* vectors) {
  return ForEachVector(store, VectorTable::kDocuments, dim, [&](DocNum doc, const float* v) {
    ids->push_back(doc);
    vectors->insert(vectors->end(), v, v + dim);
  });
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

}  // namespace

Result<std::shared_ptr<const DualEncoder>> Collection::Impl::CurrentEncoder() const {
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config || (*config)["encoder"].is_null()) {
    return Status::FailedPrecondition(store->dir() + ": the dense index has no encoder (its vectors were imported); "
                                      "search it with a vector");
  }
  const std::string key = (*config)["encoder"].dump();
  std::lock_guard lock(index_mu);
  if (!dense_encoder || dense_encoder_config != key) {
    QUARRY_ASSIGN_OR_RETURN(auto e, DualEncoder::Load((*config)["encoder"]["model"].get<std::string>(),
                                                      EncoderOptions((*config)["encoder"])));
    dense_encoder = std::move(e);
    dense_encoder_config = key;
  }
  return dense_encoder;
}

Result<std::shared_ptr<const FaissIndex>> Collection::Impl::CurrentDenseIndex() const {
  std::lock_guard lock(index_mu);
  const uint64_t gen = generation.load();
  if (dense_index && dense_index_generation == gen) return dense_index;
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config) return Status::NotFound(store->dir() + ": no dense index (run `quarry index DIR --encoder MODEL`)");
  const size_t dim = (*config)["dim"].get<size_t>();
  QUARRY_ASSIGN_OR_RETURN(const uint64_t vectors_gen, store->GetCounter(kMetaDenseGeneration));
  const std::string path = store->dir() + "/" + kDenseFileName;
  // The file is used only when it is the one the meta record describes, for the current vectors.
  QUARRY_ASSIGN_OR_RETURN(auto file_meta, store->Get(kCfMeta, kMetaDenseFile));
  std::shared_ptr<FaissIndex> index;
  if (file_meta) {
    auto fm = nlohmann::json::parse(*file_meta, nullptr, false);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!fm.is_discarded() && fm.value("generation", uint64_t{0}) == vectors_gen &&
        fm.value("factory", "") == (*config).value("factory", "") && fm.value("bytes", uint64_t{0}) == bytes.size() &&
        fm.value("fnv1a64", "") == Hex(Fnv1a64(bytes))) {
      auto loaded = FaissIndex::Deserialize(bytes);
      if (loaded.ok() && (*loaded)->dim() == dim) index = std::move(*loaded);
    }
  }
  dense_rebuilt = index == nullptr;
  if (!index) {
    const bool ip = (*config).value("metric", "ip") == "ip";
    QUARRY_ASSIGN_OR_RETURN(auto fresh, FaissIndex::Create(dim, (*config).value("factory", "Flat"),
                                                           ip ? DenseMetric::kInnerProduct : DenseMetric::kL2));
    std::vector<int64_t> ids;
    std::vector<float> vectors;
    QUARRY_RETURN_IF_ERROR(LoadDocumentVectors(*store, dim, &ids, &vectors));
    if (!fresh->is_trained() && !ids.empty()) {
      // Train on a seeded sample: IVF/PQ need far fewer vectors than large corpora hold.
      QUARRY_RETURN_IF_ERROR(
          fresh->Train(SampleRows(vectors, dim, (*config).value("train_sample", size_t{100000}), /*seed=*/42)));
    }
    if (!ids.empty()) QUARRY_RETURN_IF_ERROR(fresh->Add(ids, vectors));
    index = std::move(fresh);
    if (!store->read_only()) {
      // Written beside, then renamed over, so a crash never leaves a half file under the name; the
      // meta record that vouches for it is written last.
      QUARRY_ASSIGN_OR_RETURN(auto bytes, index->Serialize());
      const std::string tmp = path + ".tmp";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out.flush()) return Status::IOError(tmp + ": cannot write the dense index");
      }
      std::error_code ec;
      std::filesystem::rename(tmp, path, ec);
      if (ec) return Status::IOError(path + ": " + ec.message());
      const nlohmann::json fm = {{"generation", vectors_gen}, {"factory", (*config).value("factory", "")},
                                 {"bytes", bytes.size()}, {"fnv1a64", Hex(Fnv1a64(bytes))}};
      rocksdb::WriteBatch batch;
      batch.Put(store->cf(kCfMeta), kMetaDenseFile, fm.dump());
      QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
    }
  }
  QUARRY_RETURN_IF_ERROR(ApplyKnobs(index.get(), *config));
  dense_index = std::move(index);
  dense_index_generation = gen;
  return dense_index;
}

Status Collection::Impl::DenseUpdates(const std::vector<DocNum>& removed,
                                      const std::vector<std::pair<DocNum, const Document*>>& added,
                                      rocksdb::WriteBatch* batch) {
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*store));
  if (!config) return Status::Ok();
  for (DocNum doc : removed) {
    batch->Delete(store->cf(kCfDense), VectorKey(VectorTable::kDocuments, doc));
    batch->Delete(store->cf(kCfDense), VectorKey(VectorTable::kQueries, doc));
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
    for (size_t i = 0; i < kept.size(); ++i) {
      batch->Put(store->cf(kCfDense), VectorKey(VectorTable::kDocuments, kept[i].first), VectorBytes(&vectors[i * dim], dim));
    }
  }
  QUARRY_ASSIGN_OR_RETURN(const uint64_t gen, store->GetCounter(kMetaDenseGeneration));
  PutGeneration(batch, store->cf(kCfMeta), gen + 1);
  return Status::Ok();
}

Result<uint64_t> Collection::BuildDenseIndex(const DenseIndexOptions& options,
                                             const std::function<void(uint64_t, uint64_t)>& progress) {
  Store& store = *impl_->store;
  {
    std::lock_guard lock(impl_->write_mu);
    QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
    QUARRY_ASSIGN_OR_RETURN(auto old, LoadConfig(store));
    nlohmann::json config = {{"metric", options.inner_product ? "ip" : "l2"}, {"factory", options.factory},
                             {"encoder", EncoderJson(options)}, {"nprobe", options.nprobe},
                             {"ef_search", options.ef_search}, {"train_sample", options.train_sample}};
    QUARRY_ASSIGN_OR_RETURN(uint64_t gen, store.GetCounter(kMetaDenseGeneration));
    if (!options.encoder.empty()) {
      QUARRY_ASSIGN_OR_RETURN(auto encoder, DualEncoder::Load(options.encoder, EncoderOptions(config["encoder"])));
      config["dim"] = encoder->dim();
      // Old vectors go first (they may have another dim), then every document is embedded in batches.
      rocksdb::WriteBatch clear;
      clear.DeleteRange(store.cf(kCfDense), "d", "e");
      QUARRY_RETURN_IF_ERROR(store.Write(&clear, /*sync=*/false));
      const uint64_t total = impl_->n_docs;
      uint64_t done = 0;
      std::vector<DocNum> docs;
      std::vector<std::string> texts;
      Status error;
      auto flush = [&]() -> Status {
        if (docs.empty()) return Status::Ok();
        QUARRY_ASSIGN_OR_RETURN(auto vectors, encoder->EncodeDocuments(texts));
        rocksdb::WriteBatch batch;
        for (size_t i = 0; i < docs.size(); ++i) {
          batch.Put(store.cf(kCfDense), VectorKey(VectorTable::kDocuments, docs[i]), VectorBytes(&vectors[i * encoder->dim()], encoder->dim()));
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
      if (!old) return Status::FailedPrecondition(dir() + ": no vectors to index: give an encoder or import vectors first");
      config["dim"] = (*old)["dim"];
    }
    rocksdb::WriteBatch batch;
    batch.Put(store.cf(kCfMeta), kMetaDenseConfig, config.dump());
    PutGeneration(&batch, store.cf(kCfMeta), gen + 1);
    QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/true));
    impl_->generation.fetch_add(1);
  }
  QUARRY_ASSIGN_OR_RETURN(auto index, impl_->CurrentDenseIndex());
  return static_cast<uint64_t>(index->size());
}

Status Collection::PutVectors(const std::vector<std::string>& ids, const std::vector<float>& vectors, size_t dim,
                              VectorTable table) {
  if (dim == 0 || vectors.size() != ids.size() * dim) {
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
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    for (size_t k = 0; k < dim; ++k) {
      if (!std::isfinite(vectors[i * dim + k])) return Status::InvalidArgument("vectors: id '" + ids[i] + "' has a non-finite value");
    }
    QUARRY_ASSIGN_OR_RETURN(auto doc, store.LookupDocNum(ids[i]));
    if (!doc) return Status::NotFound("vectors: no document with id '" + ids[i] + "'");
    batch.Put(store.cf(kCfDense), VectorKey(table, *doc), VectorBytes(&vectors[i * dim], dim));
  }
  if (!config) {
    const nlohmann::json fresh = {{"dim", dim}, {"metric", "ip"}, {"factory", "Flat"}, {"encoder", nullptr},
                                  {"nprobe", 0}, {"ef_search", 0}, {"train_sample", 100000}};
    batch.Put(store.cf(kCfMeta), kMetaDenseConfig, fresh.dump());
  }
  QUARRY_ASSIGN_OR_RETURN(uint64_t gen, store.GetCounter(kMetaDenseGeneration));
  PutGeneration(&batch, store.cf(kCfMeta), gen + 1);
  QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/true));
  impl_->generation.fetch_add(1);
  return Status::Ok();
}

Result<std::optional<std::vector<float>>> Collection::GetVector(std::string_view id, VectorTable table) const {
  const Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto doc, store.LookupDocNum(id));
  if (!doc) return std::optional<std::vector<float>>();
  QUARRY_ASSIGN_OR_RETURN(auto bytes, store.Get(kCfDense, VectorKey(table, *doc)));
  if (!bytes) return std::optional<std::vector<float>>();
  if (bytes->size() % sizeof(float)) return Status::Corruption(dir() + ": dense vector of id '" + std::string(id) + "'");
  std::vector<float> v(bytes->size() / sizeof(float));
  std::memcpy(v.data(), bytes->data(), bytes->size());
  return std::optional<std::vector<float>>(std::move(v));
}

Result<DenseIndexInfo> Collection::DenseInfo() const {
  QUARRY_ASSIGN_OR_RETURN(auto index, impl_->CurrentDenseIndex());
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*impl_->store));
  DenseIndexInfo info;
  info.dim = index->dim();
  info.n_vectors = index->size();
  info.factory = (*config).value("factory", "");
  info.metric = (*config).value("metric", "ip");
  if (!(*config)["encoder"].is_null()) info.encoder = (*config)["encoder"].value("model", "");
  info.nprobe = (*config).value("nprobe", size_t{0});
  info.ef_search = (*config).value("ef_search", size_t{0});
  std::error_code ec;
  const auto size = std::filesystem::file_size(dir() + "/" + kDenseFileName, ec);
  info.file_bytes = ec ? 0 : size;
  std::lock_guard lock(impl_->index_mu);
  info.rebuilt = impl_->dense_rebuilt;
  return info;
}

Result<DenseTuning> Collection::TuneDenseIndex(double target, size_t k, size_t n_queries) {
  QUARRY_ASSIGN_OR_RETURN(auto shared, impl_->CurrentDenseIndex());
  // Tuning changes the knob while searching: it works on a private copy of the index.
  QUARRY_ASSIGN_OR_RETURN(auto bytes, shared->Serialize());
  QUARRY_ASSIGN_OR_RETURN(auto index, FaissIndex::Deserialize(bytes));
  const size_t dim = index->dim();
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  QUARRY_RETURN_IF_ERROR(LoadDocumentVectors(*impl_->store, dim, &ids, &vectors));
  if (ids.empty()) return Status::FailedPrecondition(dir() + ": no vectors to tune on");
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
  QUARRY_RETURN_IF_ERROR(SetDenseSearchParameters(t.knob == "nprobe" ? t.chosen : 0, t.knob == "efSearch" ? t.chosen : 0));
  return out;
}

Status Collection::SetDenseSearchParameters(size_t nprobe, size_t ef_search) {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  QUARRY_ASSIGN_OR_RETURN(auto config, LoadConfig(*impl_->store));
  if (!config) return Status::NotFound(dir() + ": no dense index");
  if (nprobe) (*config)["nprobe"] = nprobe;
  if (ef_search) (*config)["ef_search"] = ef_search;
  rocksdb::WriteBatch batch;
  batch.Put(impl_->store->cf(kCfMeta), kMetaDenseConfig, config->dump());
  QUARRY_RETURN_IF_ERROR(impl_->store->Write(&batch, /*sync=*/true));
  // Searches in flight keep the index they hold; the next one reloads it (from the file) with the knobs.
  std::lock_guard index_lock(impl_->index_mu);
  impl_->dense_index_generation = UINT64_MAX;
  return Status::Ok();
}

}  // namespace quarry
