#include "index/hierarchical/trainer.h"

#include <cblas.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_map>

#include "index/dense/faiss_index.h"
#include "model/kernels.h"

namespace quarry::hr {

double RecallTable::Recall(size_t distance) const {
  return distance < total.size() && total[distance] ? static_cast<double>(hits[distance]) / total[distance] : 0.0;
}

double RecallTable::Overall() const {
  const uint64_t h = std::accumulate(hits.begin(), hits.end(), uint64_t{0});
  const uint64_t t = std::accumulate(total.begin(), total.end(), uint64_t{0});
  return t ? static_cast<double>(h) / t : 0.0;
}

const char* SoftmaxName(Softmax s) { return s == Softmax::kCorpus ? "corpus" : "in-batch"; }

Result<Softmax> ParseSoftmax(const std::string& name) {
  if (name == "in-batch") return Softmax::kInBatch;
  if (name == "corpus") return Softmax::kCorpus;
  return Status::InvalidArgument("unknown softmax '" + name + "' (in-batch or corpus)");
}

double RecallTable::PerQuery() const { return n_queries ? query_recall_sum / static_cast<double>(n_queries) : 0.0; }

namespace {

// One table of free parameters with lazy Adam state: only the rows a step touched are updated.
class Table {
 public:
  Table(size_t n, size_t dim, std::mt19937_64& rng) : dim_(dim), w_(n * dim), m_(n * dim), v_(n * dim), grad_(n * dim) {
    // Unit-length rows to start, so that a learning rate means the same step size in every dimension.
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& x : w_) x = normal(rng);
    for (size_t i = 0; i < n; ++i) Normalize(&w_[i * dim], &w_[i * dim], nullptr);
    stamp_.assign(n, 0);
  }
  // Given rows (n x dim), as they are.
  Table(std::vector<float> rows, size_t dim)
      : dim_(dim), w_(std::move(rows)), m_(w_.size()), v_(w_.size()), grad_(w_.size()), stamp_(w_.size() / dim, 0) {}
  size_t dim() const { return dim_; }
  const std::vector<float>& gradient() const { return grad_; }
  const float* row(size_t i) const { return &w_[i * dim_]; }

  // Adds `g` to row i's gradient.
  void Accumulate(size_t i, const float* g) {
    if (stamp_[i] != step_ + 1) {
      stamp_[i] = step_ + 1;
      touched_.push_back(i);
    }
    float* dst = &grad_[i * dim_];
    for (size_t k = 0; k < dim_; ++k) dst[k] += g[k];
  }

  void AdamStep(float lr) {
    ++step_;
    constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f;
    const float c1 = 1.0f - std::pow(kBeta1, static_cast<float>(step_));
    const float c2 = 1.0f - std::pow(kBeta2, static_cast<float>(step_));
    tbb::parallel_for(size_t{0}, touched_.size(), [&](size_t t) {
      const size_t base = touched_[t] * dim_;
      for (size_t k = 0; k < dim_; ++k) {
        const float g = grad_[base + k];
        m_[base + k] = kBeta1 * m_[base + k] + (1 - kBeta1) * g;
        v_[base + k] = kBeta2 * v_[base + k] + (1 - kBeta2) * g * g;
        w_[base + k] -= lr * (m_[base + k] / c1) / (std::sqrt(v_[base + k] / c2) + kEps);
        grad_[base + k] = 0;
      }
    });
    touched_.clear();
  }

  std::vector<float> Normalized() const {
    std::vector<float> out(w_.size());
    const size_t n = w_.size() / dim_;
    tbb::parallel_for(size_t{0}, n, [&](size_t i) { Normalize(row(i), &out[i * dim_], nullptr); });
    return out;
  }

  // out = x / |x|; *norm = |x| when given.
  void Normalize(const float* x, float* out, float* norm) const {
    float s = 0;
    for (size_t k = 0; k < dim_; ++k) s += x[k] * x[k];
    const float n = std::max(std::sqrt(s), 1e-12f);
    for (size_t k = 0; k < dim_; ++k) out[k] = x[k] / n;
    if (norm) *norm = n;
  }

 private:
  size_t dim_;
  std::vector<float> w_, m_, v_, grad_;
  std::vector<uint64_t> stamp_;
  std::vector<size_t> touched_;
  uint64_t step_ = 0;
};

class Model {
 public:
  Model(const Closure& closure, size_t dim, uint64_t seed)
      : closure_(closure), rng_(seed), queries_(closure.ancestors.size(), dim, rng_),
        docs_(closure.ancestors.size(), dim, rng_), column_head_(closure.ancestors.size(), -1) {}
  // Given (raw, unnormalised) tables.
  Model(const Closure& closure, const Embeddings& raw)
      : closure_(closure), queries_(raw.queries, raw.dim), docs_(raw.docs, raw.dim),
        column_head_(closure.ancestors.size(), -1) {}

  // The mean loss of `pairs` against the given uniform draws, with its gradient left in the tables.
  double Gradient(const std::vector<Pair>& pairs, const std::vector<NodeId>& draws, Softmax softmax, float scale,
                  bool mask, std::vector<float>* d_queries, std::vector<float>* d_docs) {
    mask_ = mask;
    softmax_ = softmax;
    candidates_.assign(draws.begin(), draws.end());
    const double loss = ForwardBackward(pairs.data(), pairs.size(), scale);
    *d_queries = queries_.gradient();
    *d_docs = docs_.gradient();
    return loss;
  }

  // One pass over `pairs` in a fresh random order; returns the mean loss.
  double Epoch(std::vector<Pair> pairs, size_t batch, size_t negatives, Softmax softmax, float lr, float scale,
               bool mask) {
    mask_ = mask;
    softmax_ = softmax;
    std::shuffle(pairs.begin(), pairs.end(), rng_);
    double loss = 0;
    for (size_t begin = 0; begin < pairs.size(); begin += batch) {
      const size_t end = std::min(pairs.size(), begin + batch);
      loss += Step(&pairs[begin], end - begin, negatives, lr, scale) * static_cast<double>(end - begin);
    }
    return loss / static_cast<double>(pairs.size());
  }

  Embeddings Snapshot() const { return {queries_.dim(), queries_.Normalized(), docs_.Normalized()}; }

 private:
  double Step(const Pair* pairs, size_t b, size_t negatives, float lr, float scale) {
    std::uniform_int_distribution<NodeId> any(0, static_cast<NodeId>(closure_.ancestors.size() - 1));
    candidates_.resize(negatives);
    for (auto& c : candidates_) c = any(rng_);
    const double loss = ForwardBackward(pairs, b, scale);
    queries_.AdamStep(lr);
    docs_.AdamStep(lr);
    return loss;
  }

  // Softmax cross-entropy of b pairs against their own documents and the uniform draws in
  // candidates_; accumulates the gradient into the tables and returns the mean loss.
  double ForwardBackward(const Pair* pairs, size_t b, float scale) {
    const size_t d = queries_.dim(), n_nodes = closure_.ancestors.size();
    const size_t negatives = candidates_.size();
    const size_t c = b + negatives;
    candidates_.insert(candidates_.begin(), b, 0);
    for (size_t i = 0; i < b; ++i) candidates_[i] = pairs[i].doc;

    q_.resize(b * d), q_norm_.resize(b), docs_n_.resize(c * d), doc_norm_.resize(c);
    tbb::parallel_for(size_t{0}, b, [&](size_t i) { queries_.Normalize(queries_.row(pairs[i].query), &q_[i * d], &q_norm_[i]); });
    tbb::parallel_for(size_t{0}, c, [&](size_t j) { docs_.Normalize(docs_.row(candidates_[j]), &docs_n_[j * d], &doc_norm_[j]); });

    logits_.resize(b * c);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(b), static_cast<int>(c), static_cast<int>(d),
                scale, q_.data(), static_cast<int>(d), docs_n_.data(), static_cast<int>(d), 0.0f, logits_.data(),
                static_cast<int>(c));

    // Columns by node (a linked list through column_next_) find a row's relevant candidates quickly.
    column_next_.assign(c, -1);
    for (size_t j = 0; j < c; ++j) {
      column_next_[j] = column_head_[candidates_[j]];
      column_head_[candidates_[j]] = static_cast<int64_t>(j);
    }
    // Corpus softmax without masking: each row's relevant documents other than its positive are scored
    // exactly, as extra columns of that row (exact_begin_[i] .. exact_begin_[i + 1]).
    const bool corpus = softmax_ == Softmax::kCorpus;
    exact_begin_.assign(b + 1, 0);
    exact_doc_.clear();
    if (corpus && !mask_) {
      for (size_t i = 0; i < b; ++i) {
        for (const auto& [ancestor, dist] : closure_.ancestors[pairs[i].query]) {
          if (ancestor != pairs[i].doc) exact_doc_.push_back(ancestor);
        }
        exact_begin_[i + 1] = exact_doc_.size();
      }
    }
    const size_t n_exact = exact_doc_.size();
    exact_n_.resize(n_exact * d), exact_norm_.resize(n_exact), exact_logit_.resize(n_exact);
    tbb::parallel_for(size_t{0}, b, [&](size_t i) {
      for (size_t e = exact_begin_[i]; e < exact_begin_[i + 1]; ++e) {
        docs_.Normalize(docs_.row(exact_doc_[e]), &exact_n_[e * d], &exact_norm_[e]);
        exact_logit_[e] = scale * model::Dot(&q_[i * d], &exact_n_[e * d], d);
      }
    });

    std::vector<double> row_loss(b);
    tbb::parallel_for(size_t{0}, b, [&](size_t i) {
      float* row = &logits_[i * c];
      float* exact = exact_logit_.data() + exact_begin_[i];
      const size_t n_row_exact = exact_begin_[i + 1] - exact_begin_[i];
      const auto& relevant = closure_.ancestors[pairs[i].query];
      if (corpus) {
        // Only the row's own document counts from the step's documents; each uniform draw stands for
        // (N - |relevant|) / negatives documents (added to its logit as a log weight).
        for (size_t j = 0; j < b; ++j) {
          if (j != i) row[j] = -INFINITY;
        }
        const float log_weight = std::log(static_cast<float>(n_nodes - relevant.size()) / static_cast<float>(negatives));
        for (size_t j = b; j < c; ++j) row[j] += log_weight;
      }
      // The row's own document may recur among the candidates: that copy is never a negative. Other
      // relevant documents are masked when asked, and always in the corpus softmax, which scores them
      // exactly instead of through the uniform draws.
      for (const auto& [ancestor, dist] : relevant) {
        if (!mask_ && !corpus && ancestor != pairs[i].doc) continue;
        for (int64_t j = column_head_[ancestor]; j >= 0; j = column_next_[j]) {
          if (static_cast<size_t>(j) != i) row[j] = -INFINITY;
        }
      }
      float mx = *std::max_element(row, row + c);
      if (n_row_exact) mx = std::max(mx, *std::max_element(exact, exact + n_row_exact));
      double sum = 0;
      for (size_t j = 0; j < c; ++j) {
        row[j] = std::exp(row[j] - mx);  // exp(-inf) = 0: masked columns get no gradient
        sum += row[j];
      }
      for (size_t e = 0; e < n_row_exact; ++e) {
        exact[e] = std::exp(exact[e] - mx);
        sum += exact[e];
      }
      row_loss[i] = -(std::log(row[i] / sum));
      // d loss / d logit = softmax - one-hot; the logit is scale * cosine, and the loss is a batch mean.
      const float g = scale / static_cast<float>(b);
      for (size_t j = 0; j < c; ++j) row[j] = static_cast<float>(row[j] / sum) * g;
      for (size_t e = 0; e < n_row_exact; ++e) exact[e] = static_cast<float>(exact[e] / sum) * g;
      row[i] -= g;
    });
    for (size_t j = 0; j < c; ++j) column_head_[candidates_[j]] = -1;

    // Gradients with respect to the normalised rows, then through the normalisation.
    dq_.assign(b * d, 0.0f);
    ddocs_.assign(c * d, 0.0f);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(b), static_cast<int>(d), static_cast<int>(c),
                1.0f, logits_.data(), static_cast<int>(c), docs_n_.data(), static_cast<int>(d), 0.0f, dq_.data(),
                static_cast<int>(d));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(c), static_cast<int>(d), static_cast<int>(b),
                1.0f, logits_.data(), static_cast<int>(c), q_.data(), static_cast<int>(d), 0.0f, ddocs_.data(),
                static_cast<int>(d));
    auto through_norm = [d](const float* x, float norm, float* g) {
      float dot = 0;
      for (size_t k = 0; k < d; ++k) dot += x[k] * g[k];
      for (size_t k = 0; k < d; ++k) g[k] = (g[k] - x[k] * dot) / norm;
    };
    // The exact columns: d logit / d query = their document row, d logit / d document = the query row.
    exact_grad_.resize(n_exact * d);
    tbb::parallel_for(size_t{0}, b, [&](size_t i) {
      for (size_t e = exact_begin_[i]; e < exact_begin_[i + 1]; ++e) {
        const float* x = &exact_n_[e * d];
        float* g = &exact_grad_[e * d];
        for (size_t k = 0; k < d; ++k) {
          dq_[i * d + k] += exact_logit_[e] * x[k];
          g[k] = exact_logit_[e] * q_[i * d + k];
        }
        through_norm(x, exact_norm_[e], g);
      }
    });
    tbb::parallel_for(size_t{0}, b, [&](size_t i) { through_norm(&q_[i * d], q_norm_[i], &dq_[i * d]); });
    tbb::parallel_for(size_t{0}, c, [&](size_t j) { through_norm(&docs_n_[j * d], doc_norm_[j], &ddocs_[j * d]); });
    for (size_t i = 0; i < b; ++i) queries_.Accumulate(pairs[i].query, &dq_[i * d]);
    for (size_t j = 0; j < c; ++j) docs_.Accumulate(candidates_[j], &ddocs_[j * d]);
    for (size_t e = 0; e < n_exact; ++e) docs_.Accumulate(exact_doc_[e], &exact_grad_[e * d]);
    return std::accumulate(row_loss.begin(), row_loss.end(), 0.0) / static_cast<double>(b);
  }

  const Closure& closure_;
  bool mask_ = true;
  Softmax softmax_ = Softmax::kInBatch;
  std::vector<size_t> exact_begin_;
  std::vector<NodeId> exact_doc_;
  std::vector<float> exact_n_, exact_norm_, exact_logit_, exact_grad_;
  std::mt19937_64 rng_;
  Table queries_, docs_;
  std::vector<int64_t> column_head_, column_next_;
  std::vector<NodeId> candidates_;
  std::vector<float> q_, q_norm_, docs_n_, doc_norm_, logits_, dq_, ddocs_;
};

}  // namespace

double StepGradient(const Closure& closure, const Embeddings& raw, const std::vector<Pair>& pairs,
                    const std::vector<NodeId>& draws, Softmax softmax, float scale, bool mask,
                    std::vector<float>* d_queries, std::vector<float>* d_docs) {
  Model model(closure, raw);
  return model.Gradient(pairs, draws, softmax, scale, mask, d_queries, d_docs);
}

Result<RecallTable> EvaluateRecall(const Embeddings& e, const Closure& closure, const std::vector<Pair>& pairs,
                                   const SearchIndex& spec, size_t max_queries, uint64_t seed) {
  const size_t n = closure.ancestors.size();
  if (e.n_nodes() != n || e.queries.size() != e.docs.size()) {
    return Status::InvalidArgument("hierarchical eval: embeddings hold " + std::to_string(e.n_nodes()) +
                                   " nodes, the hierarchy " + std::to_string(n));
  }
  // Pairs grouped by query, in first-seen order.
  std::unordered_map<NodeId, std::vector<const Pair*>> by_query;
  std::vector<NodeId> queries;
  for (const auto& p : pairs) {
    if (p.query >= n || p.doc >= n) return Status::InvalidArgument("hierarchical eval: pair names an unknown node");
    auto& list = by_query[p.query];
    if (list.empty()) queries.push_back(p.query);
    list.push_back(&p);
  }
  if (max_queries && queries.size() > max_queries) {
    std::mt19937_64 rng(seed);
    std::shuffle(queries.begin(), queries.end(), rng);
    queries.resize(max_queries);
  }
  QUARRY_ASSIGN_OR_RETURN(auto index, FaissIndex::Create(e.dim, spec.factory, DenseMetric::kInnerProduct));
  if (!index->is_trained()) QUARRY_RETURN_IF_ERROR(index->Train(e.docs));
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  QUARRY_RETURN_IF_ERROR(index->Add(ids, e.docs));
  if (spec.nprobe) QUARRY_RETURN_IF_ERROR(index->SetSearchParameter("nprobe", spec.nprobe));
  if (spec.ef_search) QUARRY_RETURN_IF_ERROR(index->SetSearchParameter("efSearch", spec.ef_search));
  size_t k_max = 0;
  std::vector<float> q(queries.size() * e.dim);
  for (size_t i = 0; i < queries.size(); ++i) {
    k_max = std::max(k_max, closure.ancestors[queries[i]].size());
    std::copy_n(&e.queries[queries[i] * e.dim], e.dim, &q[i * e.dim]);
  }
  QUARRY_ASSIGN_OR_RETURN(auto results, index->Search(q, k_max));
  RecallTable t;
  t.n_queries = queries.size();
  const size_t n_dist = static_cast<size_t>(closure.max_distance()) + 1;
  t.hits.assign(n_dist, 0);
  t.total.assign(n_dist, 0);
  for (size_t i = 0; i < queries.size(); ++i) {
    const size_t k = std::min(closure.ancestors[queries[i]].size(), results[i].size());
    std::vector<int64_t> top;
    for (size_t j = 0; j < k; ++j) top.push_back(results[i][j].id);
    std::sort(top.begin(), top.end());
    size_t found = 0;
    for (const Pair* p : by_query[queries[i]]) {
      ++t.total[p->distance];
      if (std::binary_search(top.begin(), top.end(), static_cast<int64_t>(p->doc))) {
        ++t.hits[p->distance];
        ++found;
      }
    }
    t.query_recall_sum += static_cast<double>(found) / static_cast<double>(by_query[queries[i]].size());
  }
  return t;
}

Result<TrainResult> Train(const Closure& closure, const Split& split, const TrainOptions& options,
                          const std::function<void(const EpochReport&)>& on_epoch) {
  if (split.train.empty()) return Status::InvalidArgument("hierarchical training: no training pairs");
  if (options.dim == 0 || options.batch == 0) return Status::InvalidArgument("hierarchical training: dim and batch must be positive");
  if (options.softmax == Softmax::kCorpus && options.negatives == 0) {
    return Status::InvalidArgument("hierarchical training: the corpus softmax needs uniform negatives (--negatives > 0)");
  }
  for (const auto* set : {&split.train, &split.validation}) {
    for (const auto& p : *set) {
      if (p.query >= closure.ancestors.size() || p.doc >= closure.ancestors.size()) {
        return Status::InvalidArgument("hierarchical training: a pair names a node outside the hierarchy");
      }
    }
  }
  const auto start = std::chrono::steady_clock::now();
  Model model(closure, options.dim, options.seed);
  TrainResult result;
  // Validation picks the best epoch; without validation pairs the last epoch is kept.
  auto validate = [&](const Embeddings& e) -> Result<double> {
    if (split.validation.empty()) return 0.0;
    QUARRY_ASSIGN_OR_RETURN(auto t, EvaluateRecall(e, closure, split.validation, {}, options.validation_queries,
                                                   options.seed));
    return t.Overall();
  };
  auto run_phase = [&](const std::string& phase, const std::vector<Pair>& pairs, size_t epochs, float lr, float scale,
                       bool mask, Embeddings* best, size_t* best_epoch) -> Status {
    QUARRY_ASSIGN_OR_RETURN(double best_recall, validate(*best));
    for (size_t epoch = 1; epoch <= epochs; ++epoch) {
      EpochReport r{phase, epoch, model.Epoch(pairs, options.batch, options.negatives, options.softmax, lr, scale, mask), 0, 0};
      Embeddings e = model.Snapshot();
      QUARRY_ASSIGN_OR_RETURN(r.validation_recall, validate(e));
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r.validation_recall > best_recall || split.validation.empty()) {
        best_recall = r.validation_recall;
        *best = std::move(e);
        *best_epoch = epoch;
      }
      result.log.push_back(r);
      if (on_epoch) on_epoch(r);
    }
    return Status::Ok();
  };
  result.standard = model.Snapshot();
  QUARRY_RETURN_IF_ERROR(run_phase("pretrain", split.train, options.epochs, options.lr, options.scale,
                                   options.mask_false_negatives, &result.standard, &result.best_pretrain_epoch));
  if (options.finetune_epochs > 0) {
    std::vector<Pair> long_pairs;
    for (const auto& p : split.train) {
      if (p.distance >= options.finetune_min_distance) long_pairs.push_back(p);
    }
    if (long_pairs.empty()) return Status::InvalidArgument("hierarchical training: no training pair is long enough to finetune on");
    // Finetuning continues from the last pretraining epoch (with its optimiser state); it has to beat
    // the best pretrained embeddings on validation to replace them.
    result.finetuned = result.standard;
    QUARRY_RETURN_IF_ERROR(run_phase("finetune", long_pairs, options.finetune_epochs, options.finetune_lr,
                                     options.finetune_scale, options.finetune_mask_false_negatives, &result.finetuned, &result.best_finetune_epoch));
  }
  return result;
}

}  // namespace quarry::hr
