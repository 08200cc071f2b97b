// BlockRank in the pipeline: the top `depth` BM25 candidates are reordered by their in-context scores;
// in the decoupled mode, with document blocks cached in the collection (Reranking::BuildCache).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "engine/collection_impl.h"
#include "model/int8_gemm.h"

namespace quarry {

std::string RerankCacheConfig(const std::string& model_dir, const RerankOptions& options) {
  // The model's identity: config.json and the size of its weights; for a GGUF file, its first MiB
  // (header and metadata) and its size.
  std::error_code ec;
  const bool single_file = std::filesystem::is_regular_file(model_dir, ec);
  std::ifstream in(single_file ? model_dir : model_dir + "/config.json", std::ios::binary);
  std::string config(single_file ? (1u << 20) : 0, '\0');
  if (single_file) {
    in.read(config.data(), static_cast<std::streamsize>(config.size()));
    config.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  } else {
    std::stringstream text;
    text << in.rdbuf();
    config = text.str();
  }
  uint64_t weight_bytes = 0;
  if (single_file) {
    weight_bytes = std::filesystem::file_size(model_dir, ec);
  } else {
    for (const auto& entry : std::filesystem::directory_iterator(model_dir, ec)) {
      if (entry.path().extension() == ".safetensors") weight_bytes += entry.file_size(ec);
    }
  }
  nlohmann::json j = {{"model_config_fnv1a64", Fnv1a64(config)},
                      {"weight_bytes", weight_bytes},
                      {"scoring_layer", options.scoring_layer},
                      {"max_block_length", options.max_block_length}};
  // Only when set, so that caches made before the option existed still match the exact arithmetic.
  // Quantized activations only where they change the arithmetic: a GGUF file (its quantized matrices)
  // on a CPU with int8 dot products (AVX512-VNNI and AVX2 give the same results).
  if (options.bf16_activations) j["bf16_activations"] = true;
  if (options.quantized_activations && single_file && model::HasInt8Dot()) j["quantized_activations"] = true;
  return j.dump();
}

namespace {

// BlockRank scores of `hits` (all of them, in one pass or windows), from cached document blocks when the
// ranker is decoupled and the collection's caches were made with the same model and options.
Result<std::vector<BlockRankDocument>> RerankDocuments(const Store& store, const Store::Snapshot* snap,
                                                      const std::vector<SearchHit>& hits) {
  std::vector<BlockRankDocument> docs;
  for (const auto& hit : hits) {
    QUARRY_ASSIGN_OR_RETURN(auto doc, store.GetDocument(hit.doc, snap));
    if (!doc) docs.push_back({"", "", hit.id});  // deleted since the index was loaded: scored as empty
    else docs.push_back({doc->title, doc->text, doc->id});
  }
  return docs;
}

// BlockRank scores of `hits` at each of `layers`, from cached document blocks when the ranker is
// decoupled and the collection's caches were made with the same model and options.
Result<std::vector<std::vector<double>>> ScoreHitsAtLayers(const Store& store, const Store::Snapshot* snap,
                                                           const BlockRanker& ranker, std::string_view query,
                                                           const std::vector<SearchHit>& hits,
                                                           const std::string& cache_config, const std::vector<int>& layers) {
  QUARRY_ASSIGN_OR_RETURN(const auto docs, RerankDocuments(store, snap, hits));
  bool cached = false;
  if (!ranker.options().query_in_instruction) {
    QUARRY_ASSIGN_OR_RETURN(auto stored_config, store.Get(kCfMeta, kMetaRerankCache, snap));
    cached = stored_config && *stored_config == cache_config;
  }
  if (!cached) return ranker.ScoreAtLayers(std::string(query), docs, layers);
  std::vector<BlockCache> caches(hits.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(auto bytes, store.Get(kCfRerankCache, EncodeFixed32BE(hits[i].doc), snap));
    if (bytes) {
      auto decoded = DecodeBlockCache(*bytes);
      if (decoded.ok() && ranker.CacheFits(*decoded)) {
        caches[i] = std::move(*decoded);
        continue;
      }
      // A damaged entry (quarry check reports it) is not worth failing the search over.
    }
    // Ingested after the caches were built, or damaged: encoded now.
    QUARRY_ASSIGN_OR_RETURN(caches[i], ranker.EncodeDocument(docs[i]));
  }
  std::vector<const BlockCache*> ptrs;
  for (const auto& c : caches) ptrs.push_back(&c);
  return ranker.ScoreCachedAtLayers(std::string(query), ptrs, layers);
}

Result<std::vector<double>> ScoreHits(const Store& store, const Store::Snapshot* snap, const BlockRanker& ranker,
                                      std::string_view query, const std::vector<SearchHit>& hits,
                                      const std::string& cache_config) {
  QUARRY_ASSIGN_OR_RETURN(auto per_layer,
                          ScoreHitsAtLayers(store, snap, ranker, query, hits, cache_config, {ranker.options().scoring_layer}));
  return std::move(per_layer[0]);
}

}  // namespace

Status ApplyRerank(const Store& store, const Store::Snapshot* snap, const BlockRanker& ranker, std::string_view query,
                   std::vector<SearchHit>* hits, const std::string& cache_config) {
  const size_t depth = std::min(ranker.options().depth, hits->size());
  if (depth == 0) return Status::Ok();
  const std::vector<SearchHit> head(hits->begin(), hits->begin() + depth);
  QUARRY_ASSIGN_OR_RETURN(auto scores, ScoreHits(store, snap, ranker, query, head, cache_config));
  for (size_t i = 0; i < depth; ++i) {
    (*hits)[i].stages.rerank = scores[i];
    (*hits)[i].score = static_cast<float>(scores[i]);
  }
  std::stable_sort(hits->begin(), hits->begin() + depth,
                   [](const SearchHit& a, const SearchHit& b) { return a.stages.rerank > b.stages.rerank; });
  // The unreranked tail keeps its order, scored below the reranked head.
  float below = (*hits)[depth - 1].score;
  for (size_t i = depth; i < hits->size(); ++i) (*hits)[i].score = below -= 1e-3f;
  return Status::Ok();
}

Result<std::vector<SearchHit>> Collection::Impl::HitsOf(const std::vector<std::string>& ids) const {
  std::vector<SearchHit> hits(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(auto docnum, store->LookupDocNum(ids[i]));
    if (!docnum) return Status::NotFound(store->dir() + ": document '" + ids[i] + "' is not in the collection");
    hits[i].id = ids[i];
    hits[i].doc = *docnum;
  }
  return hits;
}

namespace {

// The configuration the current reranker's caches must have been made with (read under the index lock).
std::string CurrentCacheConfig(Collection::Impl& impl) {
  std::lock_guard lock(impl.index_mu);
  return impl.reranker_cache_config;
}

}  // namespace

Result<std::vector<double>> Reranking::Scores(std::string_view query, const std::vector<std::string>& ids) const {
  QUARRY_ASSIGN_OR_RETURN(auto ranker, impl_->CurrentReranker());
  const std::string cache_config = CurrentCacheConfig(*impl_);
  QUARRY_ASSIGN_OR_RETURN(const auto hits, impl_->HitsOf(ids));
  return ScoreHits(*impl_->store, /*snap=*/nullptr, *ranker, query, hits, cache_config);
}

Result<std::vector<std::vector<double>>> Reranking::ScoresAtLayers(std::string_view query,
                                                                          const std::vector<std::string>& ids,
                                                                          const std::vector<int>& layers) const {
  QUARRY_ASSIGN_OR_RETURN(auto ranker, impl_->CurrentReranker());
  const std::string cache_config = CurrentCacheConfig(*impl_);
  QUARRY_ASSIGN_OR_RETURN(const auto hits, impl_->HitsOf(ids));
  return ScoreHitsAtLayers(*impl_->store, /*snap=*/nullptr, *ranker, query, hits, cache_config, layers);
}

Result<uint64_t> Reranking::BuildCache(const std::string& model_dir, const RerankOptions& options_in,
                                       bool half_precision, const std::function<void(uint64_t, uint64_t)>& progress) {
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  RerankOptions options = options_in;
  options.query_in_instruction = false;  // caches exist only in the decoupled mode
  QUARRY_ASSIGN_OR_RETURN(auto ranker, BlockRanker::Load(model_dir, options));
  std::lock_guard lock(impl_->write_mu);
  Store& store = *impl_->store;
  // The old caches and their config go first; the new config is written after the last cache, so a
  // build that stops half way leaves caches without a config, which no search uses (check accepts them).
  rocksdb::WriteBatch clear;
  clear.Delete(store.cf(kCfMeta), kMetaRerankCache);
  clear.DeleteRange(store.cf(kCfRerankCache), EncodeFixed32BE(0), EncodeFixed32BE(UINT32_MAX));
  QUARRY_RETURN_IF_ERROR(store.Write(&clear, /*sync=*/true));
  // Caches are written a few documents at a time: one is megabytes, and a corpus of them never sits in
  // memory.
  constexpr size_t kDocsPerWrite = 8;
  const uint64_t total = impl_->n_docs;
  uint64_t n = 0;
  rocksdb::WriteBatch batch;
  Status failed;
  QUARRY_RETURN_IF_ERROR(store.ForEachDocument([&](DocNum docnum, const Document& doc) {
    auto cache = ranker->EncodeDocument({doc.title, doc.text, doc.id});
    if (!cache.ok()) {
      failed = cache.status().WithContext("document '" + doc.id + "'");
      return false;
    }
    batch.Put(store.cf(kCfRerankCache), EncodeFixed32BE(docnum),
              EncodeBlockCache(*cache, half_precision ? CacheDType::kF16 : CacheDType::kF32));
    if (++n % kDocsPerWrite == 0) {
      failed = store.Write(&batch, /*sync=*/false);
      batch.Clear();
      if (progress) progress(n, total);
    }
    return failed.ok();
  }));
  QUARRY_RETURN_IF_ERROR(failed);
  if (batch.Count() > 0) QUARRY_RETURN_IF_ERROR(store.Write(&batch, /*sync=*/false));
  if (progress) progress(n, total);
  rocksdb::WriteBatch done;
  done.Put(store.cf(kCfMeta), kMetaRerankCache, RerankCacheConfig(model_dir, options));
  QUARRY_RETURN_IF_ERROR(store.Write(&done, /*sync=*/true));
  return n;
}

Status CheckRerankCaches(const Store& store, const Store::Snapshot* snap,
                         const std::unordered_map<DocNum, std::string>& docs, CheckReport* report) {
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ReadOptionsAt(snap), store.cf(kCfRerankCache)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 4) {
      AddProblem(report, "rerank_cache: key of " + std::to_string(it->key().size()) + " bytes");
      continue;
    }
    const DocNum d = DecodeFixed32BE(it->key().data());
    if (!docs.count(d)) AddProblem(report, "rerank_cache: cache of doc " + std::to_string(d) + ", which is not in docs");
    // Shapes are checked against the model when one is loaded: a search encodes a document whose
    // cache does not fit.
    auto decoded = DecodeBlockCache(std::string_view(it->value().data(), it->value().size()));
    if (!decoded.ok()) AddProblem(report, "rerank_cache: doc " + std::to_string(d) + ": " + decoded.status().message());
  }
  QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), store.dir() + ": scan rerank_cache"));
  // Caches without a config are what a cache build that was stopped leaves: no search reads them, and
  // the next build replaces them. Not a problem.
  return Status::Ok();
}

}  // namespace quarry
