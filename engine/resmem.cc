// ResMem in the pipeline: building the memory from training queries, tuning it on a validation part,
// storing it, and applying it to search results.
#include <algorithm>
#include <random>
#include <unordered_set>

#include "common/coding.h"
#include "engine/collection_impl.h"
#include "quarry/eval.h"

namespace quarry {

Status ApplyResMem(const Store& store, const ResMem& resmem, std::string_view query,
                   const std::vector<float>* query_embedding, std::vector<SearchHit>* hits) {
  const size_t depth = resmem.params().depth;
  std::vector<ScoredDoc> head;
  std::unordered_map<std::string, const SearchHit*> by_id;
  for (size_t i = 0; i < hits->size() && i < depth; ++i) {
    head.emplace_back((*hits)[i].id, (*hits)[i].score);
    by_id[(*hits)[i].id] = &(*hits)[i];
  }
  std::vector<std::pair<size_t, double>> neighbours;
  if (resmem.params().neighbours == ResMemNeighbours::kDense) {
    if (!query_embedding) return Status::Internal("resmem: dense neighbours without a query embedding");
    QUARRY_ASSIGN_OR_RETURN(neighbours, resmem.Neighbours(*query_embedding, resmem.params().k));
  } else {
    QUARRY_ASSIGN_OR_RETURN(neighbours, resmem.Neighbours(query, resmem.params().k));
  }
  const auto corrected = resmem.Correct(head, neighbours);
  std::vector<SearchHit> out;
  std::unordered_set<std::string> placed;
  for (const auto& c : corrected) {
    SearchHit hit;
    if (auto it = by_id.find(c.id); it != by_id.end()) {
      hit = *it->second;
    } else {  // added by the memory: find its doc number (it may have been deleted since)
      QUARRY_ASSIGN_OR_RETURN(auto docnum, store.LookupDocNum(c.id));
      if (!docnum) continue;
      hit.id = c.id;
      hit.doc = *docnum;
    }
    hit.score = static_cast<float>(c.score);
    hit.stages.resmem_base = c.base;
    hit.stages.resmem_correction = c.correction;
    placed.insert(c.id);
    out.push_back(std::move(hit));
  }
  // The uncorrected tail keeps its order, scored below the corrected head.
  float below = out.empty() ? 0.0f : out.back().score;
  for (auto& hit : *hits) {
    if (placed.count(hit.id)) continue;
    below -= 1e-3f;
    hit.score = below;
    out.push_back(std::move(hit));
  }
  *hits = std::move(out);
  return Status::Ok();
}

namespace {

std::vector<ScoredDoc> ToScored(const std::vector<SearchHit>& hits) {
  std::vector<ScoredDoc> out;
  for (const auto& h : hits) out.emplace_back(h.id, h.score);
  return out;
}

// Dense neighbours: the embeddings of `texts` by the dense index's encoder, and its identity.
Result<std::vector<std::vector<float>>> EmbedQueries(const Collection::Impl& impl, const std::vector<std::string>& texts,
                                                     std::string* identity) {
  QUARRY_ASSIGN_OR_RETURN(auto encoder, impl.CurrentEncoder(identity));
  QUARRY_ASSIGN_OR_RETURN(const auto flat, encoder->EncodeQueries(texts));
  const size_t dim = encoder->dim();
  std::vector<std::vector<float>> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) out[i].assign(flat.begin() + i * dim, flat.begin() + (i + 1) * dim);
  return out;
}

}  // namespace

Status ResMemory::Build(const std::vector<LabeledQuery>& training, const ResMemOptions& options) {
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  std::vector<std::string> texts;
  for (const auto& q : training) texts.push_back(q.text);
  QUARRY_ASSIGN_OR_RETURN(auto results, collection_->SearchBatch(texts, {.k = options.depth, .hydrate = false}));
  std::vector<std::vector<float>> embeddings(training.size());
  std::string encoder;
  if (options.neighbours == ResMemNeighbours::kDense) {
    QUARRY_ASSIGN_OR_RETURN(embeddings, EmbedQueries(*impl_, texts, &encoder));
  }
  std::vector<MemoryQuery> memory;
  for (size_t i = 0; i < training.size(); ++i) {
    memory.push_back({training[i].id, training[i].text,
                      TrainingResiduals(ToScored(results[i]), training[i].judgements, options.temperature),
                      std::move(embeddings[i])});
  }
  QUARRY_ASSIGN_OR_RETURN(auto resmem, ResMem::Create(std::move(memory), options, encoder));
  std::lock_guard lock(impl_->write_mu);
  rocksdb::WriteBatch batch;
  batch.Put(impl_->store->cf(kCfResMem), kResMemKey, resmem->Encode());
  QUARRY_RETURN_IF_ERROR(impl_->store->Write(&batch, /*sync=*/true));
  impl_->resmem_version.fetch_add(1);
  return Status::Ok();
}

Result<std::pair<ResMemOptions, size_t>> ResMemory::Info() const {
  QUARRY_ASSIGN_OR_RETURN(auto resmem, impl_->CurrentResMem());
  return std::make_pair(resmem->params(), resmem->memory().size());
}

Result<ResMemTuning> ResMemory::Tune(const std::vector<LabeledQuery>& training, double validation_fraction,
                                            uint64_t seed, ResMemNeighbours kind) const {
  if (training.size() < 10) return Status::InvalidArgument("resmem tuning needs at least 10 training queries");
  std::vector<size_t> order(training.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t n_val = std::max<size_t>(1, static_cast<size_t>(validation_fraction * training.size() + 0.5));
  const std::vector<size_t> val(order.begin(), order.begin() + n_val), mem(order.begin() + n_val, order.end());

  const std::vector<float> temperatures = {0.5f, 1, 2, 4, 8};
  const std::vector<size_t> ks = {1, 3, 5, 10, 20, 50};
  // Similarities: BM25 scores (~1..30), or inner products of unit embeddings (differences of ~0.01..0.3).
  const bool dense = kind == ResMemNeighbours::kDense;
  const std::vector<float> sigmas = dense ? std::vector<float>{0.01f, 0.02f, 0.05f, 0.1f, 0.2f}
                                          : std::vector<float>{0.5f, 1, 2, 4, 8};
  const std::vector<float> lambdas = {0, 0.25f, 0.5f, 1, 2, 4};
  const size_t depth = ResMemOptions{}.depth;

  std::vector<std::string> texts;
  for (const auto& q : training) texts.push_back(q.text);
  QUARRY_ASSIGN_OR_RETURN(auto results, collection_->SearchBatch(texts, {.k = depth, .hydrate = false}));
  std::vector<std::vector<float>> embeddings(training.size());
  if (dense) {
    std::string identity;
    QUARRY_ASSIGN_OR_RETURN(embeddings, EmbedQueries(*impl_, texts, &identity));
  }
  eval::Qrels val_qrels;
  for (size_t i : val) val_qrels[training[i].id] = training[i].judgements;
  auto metrics = eval::ParseMetrics("ndcg@10");

  ResMemTuning tuning;
  tuning.n_memory = mem.size();
  tuning.n_validation = val.size();
  {
    eval::Run base;
    for (size_t i : val) {
      for (const auto& h : results[i]) base[training[i].id].push_back({h.id, h.score});
    }
    tuning.baseline_ndcg10 = eval::Evaluate(val_qrels, base, *metrics).mean[0];
  }
  std::vector<std::vector<std::pair<size_t, double>>> neighbours(val.size());
  tuning.best_ndcg10 = -1;
  for (float t : temperatures) {
    std::vector<MemoryQuery> memory;
    for (size_t i : mem) {
      memory.push_back({training[i].id, training[i].text,
                        TrainingResiduals(ToScored(results[i]), training[i].judgements, t), embeddings[i]});
    }
    QUARRY_ASSIGN_OR_RETURN(auto resmem,
                            ResMem::Create(std::move(memory), {.temperature = t, .depth = depth, .neighbours = kind}));
    if (t == temperatures.front()) {  // the neighbours depend only on the queries
      for (size_t v = 0; v < val.size(); ++v) {
        if (dense) {
          QUARRY_ASSIGN_OR_RETURN(neighbours[v], resmem->Neighbours(embeddings[val[v]], ks.back()));
        } else {
          QUARRY_ASSIGN_OR_RETURN(neighbours[v], resmem->Neighbours(training[val[v]].text, ks.back()));
        }
      }
    }
    for (size_t k : ks) {
      for (float sigma : sigmas) {
        for (float lambda : lambdas) {
          const ResMemOptions o{.k = k, .sigma = sigma, .temperature = t, .lambda = lambda, .depth = depth,
                                .neighbours = kind};
          eval::Run run;
          for (size_t v = 0; v < val.size(); ++v) {
            auto& entries = run[training[val[v]].id];
            for (const auto& c : resmem->Correct(ToScored(results[val[v]]), neighbours[v], o)) {
              entries.push_back({c.id, c.score});
            }
          }
          const double ndcg = eval::Evaluate(val_qrels, std::move(run), *metrics).mean[0];
          tuning.rows.push_back({o, ndcg});
          if (ndcg > tuning.best_ndcg10) tuning.best_ndcg10 = ndcg, tuning.best = o;
        }
      }
    }
  }
  return tuning;
}

Status CheckResMem(const Store& store, const Store::Snapshot* snap, CheckReport* report) {
  QUARRY_ASSIGN_OR_RETURN(auto memory, store.Get(kCfResMem, kResMemKey, snap));
  if (memory) {
    auto decoded = ResMem::Decode(*memory);
    if (!decoded.ok()) AddProblem(report, "resmem: " + decoded.status().message());
  }
  return Status::Ok();
}

}  // namespace quarry
