#include "quarry/collection.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "common/coding.h"
#include "common/utf8.h"
#include "engine/collection_impl.h"
#include "engine/snippet.h"

namespace quarry {

std::vector<std::string> IndexColumnFamilies() { return {kCfResMem, kCfRerankCache, kCfDense}; }

Collection::Collection(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)),
      dense_(new DenseIndex(impl_.get())),
      rerank_(new Reranking(impl_.get())),
      resmem_(new ResMemory(this, impl_.get())) {}
Collection::~Collection() = default;

const std::string& Collection::dir() const { return impl_->store->dir(); }

Result<std::unique_ptr<Collection>> Collection::Open(const std::string& dir, const OpenOptions& options) {
  StoreOptions so;
  so.create_if_missing = options.create_if_missing;
  so.read_only = options.read_only;
  so.extra_column_families = IndexColumnFamilies();
  LexicalStore::AddStoreOptions(&so);
  auto impl = std::make_unique<Impl>();
  QUARRY_ASSIGN_OR_RETURN(impl->store, Store::Open(dir, so));
  impl->writable = !options.read_only;
  QUARRY_ASSIGN_OR_RETURN(impl->lexical, LexicalStore::Open(impl->store.get(), impl->writable));
  if (impl->store->format_version() < kFormatVersion) {
    // Format 1 kept postings in RocksDB; the segments were just built from the documents.
    QUARRY_RETURN_IF_ERROR(impl->RecountDenseVectors());
    QUARRY_RETURN_IF_ERROR(impl->store->UpgradeFormat({"lex_postings", "lex_docs"}));
  }
  if (impl->writable) QUARRY_RETURN_IF_ERROR(impl->RemoveUnusedDenseFiles());
  QUARRY_ASSIGN_OR_RETURN(impl->next_docnum, impl->store->GetCounter(kMetaNextDocNum));
  QUARRY_ASSIGN_OR_RETURN(impl->n_docs, impl->store->GetCounter(kMetaNumDocs));
  return std::unique_ptr<Collection>(new Collection(std::move(impl)));
}

Result<std::optional<Document>> Collection::Get(std::string_view id) const {
  auto snap = impl_->store->TakeSnapshot();
  QUARRY_ASSIGN_OR_RETURN(auto docnum, impl_->store->LookupDocNum(id, snap.get()));
  if (!docnum) return std::optional<Document>();
  QUARRY_ASSIGN_OR_RETURN(auto doc, impl_->store->GetDocument(*docnum, snap.get()));
  if (!doc) {
    return Status::Corruption(dir() + ": id '" + std::string(id) + "' maps to missing doc " +
                              std::to_string(*docnum));
  }
  return doc;
}

namespace {

// The dense index's top k for one query vector, as hits (score: inner product, or -squared L2).
Result<std::vector<SearchHit>> DenseHits(const DenseView& dense, const LexicalIndex& index, const std::vector<float>& query,
                                         size_t k) {
  QUARRY_ASSIGN_OR_RETURN(auto found, dense.Search(query, k));
  const bool ip = dense.metric == DenseMetric::kInnerProduct;
  std::vector<SearchHit> hits;
  for (const auto& h : found) {
    SearchHit hit;
    hit.doc = static_cast<DocNum>(h.id);
    hit.id = index.ExternalId(hit.doc);
    hit.score = ip ? h.score : -h.score;
    hit.stages.dense = hit.score;
    hits.push_back(std::move(hit));
  }
  return hits;
}

// Fuses a BM25 list and a dense list (each best first) into one, best first.
std::vector<SearchHit> Fuse(std::vector<SearchHit> bm25, std::vector<SearchHit> dense, const SearchOptions& o) {
  std::unordered_map<DocNum, SearchHit> merged;
  auto weights = [&](const std::vector<SearchHit>& list, bool is_dense) {
    std::vector<double> w(list.size());
    if (o.fusion == Fusion::kRrf) {
      for (size_t r = 0; r < list.size(); ++r) w[r] = 1.0 / static_cast<double>(o.rrf_k + r + 1);
    } else if (!list.empty()) {
      const double hi = list.front().score, lo = list.back().score;
      const double a = is_dense ? o.alpha : 1.0 - o.alpha;
      for (size_t r = 0; r < list.size(); ++r) w[r] = a * (hi > lo ? (list[r].score - lo) / (hi - lo) : 1.0);
    }
    return w;
  };
  std::vector<std::pair<DocNum, double>> total;
  std::unordered_map<DocNum, double> score;
  for (int is_dense = 0; is_dense < 2; ++is_dense) {
    auto& list = is_dense ? dense : bm25;
    const auto w = weights(list, is_dense);
    for (size_t r = 0; r < list.size(); ++r) {
      score[list[r].doc] += w[r];
      auto [it, fresh] = merged.emplace(list[r].doc, list[r]);
      if (!fresh) {
        if (is_dense) it->second.stages.dense = list[r].stages.dense;
        else it->second.stages.bm25 = list[r].stages.bm25;
      }
    }
  }
  std::vector<SearchHit> out;
  for (auto& [doc, hit] : merged) {
    hit.score = static_cast<float>(score[doc]);
    out.push_back(std::move(hit));
  }
  std::sort(out.begin(), out.end(), [](const SearchHit& a, const SearchHit& b) {
    return a.score != b.score ? a.score > b.score : a.doc < b.doc;
  });
  return out;
}

}  // namespace

Result<std::shared_ptr<const ResMem>> Collection::Impl::CurrentResMem() const {
  std::lock_guard lock(index_mu);
  const uint64_t version = resmem_version.load();
  if (!resmem || resmem_loaded != version) {
    QUARRY_ASSIGN_OR_RETURN(auto bytes, store->Get(kCfResMem, kResMemKey));
    if (!bytes) return Status::NotFound(store->dir() + ": no ResMem memory (run `quarry resmem build`)");
    QUARRY_ASSIGN_OR_RETURN(resmem, ResMem::Decode(*bytes));
    resmem_loaded = version;
  }
  return resmem;
}

Result<std::shared_ptr<const BlockRanker>> Collection::Impl::CurrentReranker() const {
  std::lock_guard lock(index_mu);
  if (!reranker) return Status::FailedPrecondition(store->dir() + ": no reranker loaded (Collection::rerank().Load / --rerank-model)");
  return reranker;
}

Status Reranking::Load(const std::string& model_dir, const RerankOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(auto ranker, BlockRanker::Load(model_dir, options));
  std::lock_guard lock(impl_->index_mu);
  impl_->reranker = std::move(ranker);
  impl_->reranker_cache_config = RerankCacheConfig(model_dir, options);
  return Status::Ok();
}

bool Reranking::loaded() const {
  std::lock_guard lock(impl_->index_mu);
  return impl_->reranker != nullptr;
}

Status Collection::Preload() const {
  auto index = impl_->CurrentLexicalIndex();
  return Analyzer::ForThisThread(index->analyzer_settings()).status();  // compiles the word-break rules once
}

namespace {

// What one search needs besides the query: the loaded index and the stages the options turn on.
struct Pipeline {
  std::shared_ptr<const LexicalIndex> index;
  std::shared_ptr<const ResMem> resmem;
  std::shared_ptr<const BlockRanker> reranker;
  std::string cache_config;  // what the reranker's decoupled caches must have been made with
  std::shared_ptr<const DenseView> dense;
  std::shared_ptr<const DualEncoder> encoder;

  // One query: first stage (BM25, dense, or both fused) -> (BlockRank) -> (ResMem) -> hydration.
  // `query_vector`, when given, is the dense query (SearchVector); otherwise the encoder embeds `query`.
  Result<std::vector<SearchHit>> Run(const Store& store, std::string_view query, const std::vector<float>* query_vector,
                                     const SearchOptions& options, SearchTimings* timings) const;
};

Result<std::vector<SearchHit>> Pipeline::Run(const Store& store, std::string_view query,
                                             const std::vector<float>* query_vector, const SearchOptions& options,
                                             SearchTimings* timings) const {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  auto t0 = Clock::now();
  if (const size_t bad = FindInvalidUtf8(query); bad != std::string_view::npos) {
    return Status::InvalidArgument("query: invalid UTF-8 at byte " + std::to_string(bad));
  }
  QUARRY_ASSIGN_OR_RETURN(Analyzer * analyzer, Analyzer::ForThisThread(index->analyzer_settings()));
  std::vector<std::string> terms;
  analyzer->Analyze(query, &terms);
  size_t n_retrieve = options.k;
  if (resmem) n_retrieve = std::max(n_retrieve, resmem->params().depth);
  if (reranker) n_retrieve = std::max(n_retrieve, reranker->options().depth);
  const RetrievalMode mode = query_vector ? RetrievalMode::kDense : options.mode;
  const size_t depth = mode == RetrievalMode::kHybrid ? std::max(n_retrieve, options.fusion_depth) : n_retrieve;
  std::vector<SearchHit> hits;
  std::vector<float> embedded;  // the query's embedding, when a stage needs one and none was given
  const bool resmem_embeds = resmem && resmem->params().neighbours == ResMemNeighbours::kDense;
  if (!query_vector && (mode != RetrievalMode::kBm25 || resmem_embeds)) {
    QUARRY_ASSIGN_OR_RETURN(embedded, encoder->EncodeQueries({std::string(query)}));
    query_vector = &embedded;
  }
  if (mode != RetrievalMode::kDense) {
    QUARRY_ASSIGN_OR_RETURN(auto found, index->Search(terms, depth, options.exhaustive));
    for (const auto& h : found) {
      SearchHit hit;
      hit.id = index->ExternalId(h.doc);
      hit.score = h.score;
      hit.stages.bm25 = h.score;
      hit.doc = h.doc;
      hits.push_back(std::move(hit));
    }
  }
  if (mode != RetrievalMode::kBm25) {
    QUARRY_ASSIGN_OR_RETURN(auto dense_hits, DenseHits(*dense, *index, *query_vector, depth));
    hits = mode == RetrievalMode::kDense ? std::move(dense_hits) : Fuse(std::move(hits), std::move(dense_hits), options);
    if (hits.size() > n_retrieve) hits.resize(n_retrieve);
  }
  if (timings) timings->retrieve_ms = ms_since(t0);
  t0 = Clock::now();
  if (reranker) QUARRY_RETURN_IF_ERROR(ApplyRerank(store, index->store_snapshot(), *reranker, query, &hits, cache_config));
  if (timings) timings->rerank_ms = ms_since(t0);
  t0 = Clock::now();
  if (resmem) QUARRY_RETURN_IF_ERROR(ApplyResMem(store, *resmem, query, query_vector, &hits));
  if (timings) timings->correct_ms = ms_since(t0);
  t0 = Clock::now();
  if (hits.size() > options.k) hits.resize(options.k);
  if (options.hydrate) {
    const std::set<std::string> term_set(terms.begin(), terms.end());
    for (auto& hit : hits) {
      QUARRY_ASSIGN_OR_RETURN(auto doc, store.GetDocument(hit.doc, index->store_snapshot()));
      if (!doc) continue;  // deleted since the index was loaded (a reader process's older view)
      Snippet snippet = MakeSnippet(analyzer, term_set, doc->text);
      hit.snippet = std::move(snippet.text);
      hit.highlights = std::move(snippet.highlights);
      hit.title = std::move(doc->title);
      hit.text = std::move(doc->text);
    }
  }
  if (timings) timings->hydrate_ms = ms_since(t0);
  return hits;
}

// `with_vector`: the caller brings the dense query vector, so no encoder is needed.
Result<Pipeline> PipelineFor(const Collection::Impl& impl, const SearchOptions& options, bool with_vector = false) {
  Pipeline p;
  p.index = impl.CurrentLexicalIndex();
  if (with_vector || options.mode != RetrievalMode::kBm25) {
    QUARRY_ASSIGN_OR_RETURN(p.dense, impl.CurrentDenseView());
    if (!with_vector) {
      QUARRY_ASSIGN_OR_RETURN(p.encoder, impl.CurrentEncoder());
    }
  }
  if (options.resmem) {
    QUARRY_ASSIGN_OR_RETURN(p.resmem, impl.CurrentResMem());
    if (p.resmem->params().neighbours == ResMemNeighbours::kDense && !with_vector) {
      std::string identity;
      QUARRY_ASSIGN_OR_RETURN(p.encoder, impl.CurrentEncoder(&identity));
      if (identity != p.resmem->encoder()) {
        return Status::FailedPrecondition(impl.store->dir() + ": the ResMem memory's neighbours were embedded by " +
                                          p.resmem->encoder() + ", the dense index now uses " + identity +
                                          ": rebuild it (`quarry resmem build --neighbours dense`)");
      }
    }
  }
  if (options.rerank) {
    QUARRY_ASSIGN_OR_RETURN(p.reranker, impl.CurrentReranker());
    std::lock_guard lock(impl.index_mu);
    p.cache_config = impl.reranker_cache_config;
  }
  return p;
}

}  // namespace

Result<std::vector<SearchHit>> Collection::Search(std::string_view query, const SearchOptions& options,
                                                  SearchTimings* timings) const {
  QUARRY_ASSIGN_OR_RETURN(Pipeline p, PipelineFor(*impl_, options));
  return p.Run(*impl_->store, query, nullptr, options, timings);
}

Result<std::vector<SearchHit>> Collection::SearchVector(const std::vector<float>& query, const SearchOptions& options) const {
  QUARRY_ASSIGN_OR_RETURN(Pipeline p, PipelineFor(*impl_, options, /*with_vector=*/true));
  return p.Run(*impl_->store, "", &query, options, nullptr);
}

Result<std::vector<std::vector<SearchHit>>> Collection::SearchBatch(const std::vector<std::string>& queries,
                                                                    const SearchOptions& options) const {
  QUARRY_ASSIGN_OR_RETURN(Pipeline p, PipelineFor(*impl_, options));
  std::vector<std::vector<SearchHit>> results(queries.size());
  std::vector<Status> errors(queries.size());
  auto one = [&](size_t i) {
    auto r = p.Run(*impl_->store, queries[i], nullptr, options, nullptr);
    if (r.ok()) results[i] = std::move(*r);
    else errors[i] = r.status();
  };
  tbb::parallel_for(size_t{0}, queries.size(), one);
  for (auto& e : errors) {
    if (!e.ok()) return e;
  }
  return results;
}

Result<CollectionStats> Collection::Stats() const {
  auto snap = impl_->store->TakeSnapshot();
  CollectionStats s;
  s.format_version = kFormatVersion;
  QUARRY_ASSIGN_OR_RETURN(s.n_docs, impl_->store->GetCounter(kMetaNumDocs, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(s.next_docnum, impl_->store->GetCounter(kMetaNextDocNum, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(s.lex_doc_count, impl_->store->GetCounter(kMetaLexDocCount, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(s.lex_sum_ttf, impl_->store->GetCounter(kMetaLexSumTtf, snap.get()));
  const auto lex = impl_->lexical->GetStats();
  s.lex_segments = lex.segments;
  s.lex_bytes = lex.segment_bytes;
  s.lex_postings = lex.postings;
  s.lex_dead = lex.dead;
  s.disk_bytes = impl_->store->DiskBytes();
  return s;
}

}  // namespace quarry
