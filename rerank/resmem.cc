#include "rerank/resmem.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "common/json.h"

namespace quarry {

namespace {

// Numerically stable softmax of values / temperature.
std::vector<double> Softmax(const std::vector<double>& values, double temperature) {
  std::vector<double> out(values.size());
  if (values.empty()) return out;
  const double top = *std::max_element(values.begin(), values.end());
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += out[i] = std::exp((values[i] - top) / temperature);
  for (double& v : out) v /= sum;
  return out;
}

void PutDouble(std::string* out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  PutFixed64BE(out, bits);
}

bool GetDouble(std::string_view* in, double* v) {
  uint64_t bits;
  if (!GetFixed64BE(in, &bits)) return false;
  std::memcpy(v, &bits, sizeof bits);
  return true;
}

}  // namespace

std::vector<double> Calibrate(const std::vector<ScoredDoc>& candidates, double temperature) {
  std::vector<double> scores;
  scores.reserve(candidates.size());
  for (const auto& c : candidates) scores.push_back(c.second);
  return Softmax(scores, temperature);
}

std::vector<ScoredDoc> TrainingResiduals(const std::vector<ScoredDoc>& candidates,
                                         const std::map<std::string, int>& judgements, double temperature) {
  size_t n_relevant = 0;
  for (const auto& [doc, grade] : judgements) n_relevant += grade > 0;
  const double target = n_relevant ? 1.0 / n_relevant : 0.0;
  auto is_relevant = [&](const std::string& doc) {
    auto it = judgements.find(doc);
    return it != judgements.end() && it->second > 0;
  };
  const std::vector<double> p = Calibrate(candidates, temperature);
  std::vector<ScoredDoc> residuals;
  std::set<std::string> seen;
  for (size_t i = 0; i < candidates.size(); ++i) {
    residuals.emplace_back(candidates[i].first, (is_relevant(candidates[i].first) ? target : 0.0) - p[i]);
    seen.insert(candidates[i].first);
  }
  for (const auto& [doc, grade] : judgements) {
    if (grade > 0 && !seen.count(doc)) residuals.emplace_back(doc, target);
  }
  return residuals;
}

Result<std::unique_ptr<ResMem>> ResMem::Create(std::vector<MemoryQuery> memory, const ResMemParams& params,
                                               std::string encoder) {
  if (params.k == 0 || params.depth == 0 || !(params.sigma > 0) || !(params.temperature > 0) ||
      !std::isfinite(params.sigma) || !std::isfinite(params.temperature) || !std::isfinite(params.lambda)) {
    return Status::InvalidArgument("resmem: k and depth must be positive, sigma and temperature finite and > 0, "
                                   "lambda finite");
  }
  const bool dense = params.neighbours == ResMemNeighbours::kDense;
  const size_t dim = dense && !memory.empty() ? memory[0].embedding.size() : 0;
  for (const auto& q : memory) {
    for (const auto& [doc, r] : q.residuals) {
      if (!std::isfinite(r)) return Status::InvalidArgument("resmem: query '" + q.id + "' has a non-finite residual");
    }
    if (dense && (q.embedding.empty() || q.embedding.size() != dim)) {
      return Status::InvalidArgument("resmem: dense neighbours need an embedding of one dimension for every query; '" +
                                     q.id + "' has " + std::to_string(q.embedding.size()) + " values");
    }
    for (float v : q.embedding) {
      if (!std::isfinite(v)) return Status::InvalidArgument("resmem: query '" + q.id + "' has a non-finite embedding");
    }
  }
  std::unique_ptr<ResMem> r(new ResMem());
  r->params_ = params;
  r->memory_ = std::move(memory);
  r->encoder_ = std::move(encoder);
  if (!dense) {
    std::vector<std::string> ids, texts;
    for (const auto& q : r->memory_) ids.push_back(q.id), texts.push_back(q.text);
    QUARRY_ASSIGN_OR_RETURN(r->query_index_, LexicalIndex::Build(ids, texts));
  }
  return r;
}

Result<std::vector<std::pair<size_t, double>>> ResMem::Neighbours(std::string_view query, size_t k) const {
  if (!query_index_) return Status::FailedPrecondition("resmem: this memory finds neighbours by embedding");
  QUARRY_ASSIGN_OR_RETURN(Analyzer * analyzer, Analyzer::ForThisThread(query_index_->analyzer_settings()));
  std::vector<std::string> terms;
  analyzer->Analyze(query, &terms);
  QUARRY_ASSIGN_OR_RETURN(auto found, query_index_->Search(terms, k));
  std::vector<std::pair<size_t, double>> out;
  for (const auto& h : found) out.emplace_back(h.doc, h.score);
  return out;
}

Result<std::vector<std::pair<size_t, double>>> ResMem::Neighbours(const std::vector<float>& embedding, size_t k) const {
  if (query_index_) return Status::FailedPrecondition("resmem: this memory finds neighbours by BM25");
  std::vector<std::pair<size_t, double>> out;
  for (size_t i = 0; i < memory_.size(); ++i) {
    const auto& e = memory_[i].embedding;
    if (e.size() != embedding.size()) {
      return Status::InvalidArgument("resmem: query embedding of dimension " + std::to_string(embedding.size()) +
                                     " for a memory of dimension " + std::to_string(e.size()));
    }
    double dot = 0;
    for (size_t j = 0; j < e.size(); ++j) dot += double(e[j]) * embedding[j];
    out.emplace_back(i, dot);
  }
  k = std::min(k, out.size());
  std::partial_sort(out.begin(), out.begin() + k, out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  out.resize(k);
  return out;
}

std::vector<CorrectedDoc> ResMem::Correct(const std::vector<ScoredDoc>& candidates,
                                          const std::vector<std::pair<size_t, double>>& neighbours) const {
  return Correct(candidates, neighbours, params_);
}

std::vector<CorrectedDoc> ResMem::Correct(const std::vector<ScoredDoc>& candidates,
                                          const std::vector<std::pair<size_t, double>>& neighbours,
                                          const ResMemParams& params) const {
  const size_t depth = std::min(params.depth, candidates.size());
  std::vector<ScoredDoc> base(candidates.begin(), candidates.begin() + depth);
  const std::vector<double> p = Calibrate(base, params.temperature);
  std::vector<CorrectedDoc> out;
  std::unordered_map<std::string, size_t> slot;  // id -> index in out (first-seen order breaks ties)
  for (size_t i = 0; i < base.size(); ++i) {
    slot.emplace(base[i].first, out.size());
    out.push_back({base[i].first, 0, p[i], 0});
  }
  const size_t k = std::min(params.k, neighbours.size());
  if (params.lambda != 0 && k > 0) {
    std::vector<double> sims;
    for (size_t i = 0; i < k; ++i) sims.push_back(neighbours[i].second);
    const std::vector<double> w = Softmax(sims, params.sigma);
    for (size_t i = 0; i < k; ++i) {
      for (const auto& [doc, residual] : memory_[neighbours[i].first].residuals) {
        auto [it, inserted] = slot.emplace(doc, out.size());
        if (inserted) out.push_back({doc, 0, 0, 0});
        out[it->second].correction += params.lambda * w[i] * residual;
      }
    }
  }
  for (auto& d : out) d.score = d.base + d.correction;
  std::stable_sort(out.begin(), out.end(), [](const CorrectedDoc& a, const CorrectedDoc& b) { return a.score > b.score; });
  if (out.size() > params.depth) out.resize(params.depth);
  return out;
}

std::string ResMem::Encode() const {
  std::string out;
  out.push_back(static_cast<char>(kResMemFormatVersion));
  const bool dense = params_.neighbours == ResMemNeighbours::kDense;
  const nlohmann::json params = {{"k", params_.k},           {"sigma", params_.sigma},
                                 {"temperature", params_.temperature},
                                 {"lambda", params_.lambda}, {"depth", params_.depth},
                                 {"neighbours", dense ? "dense" : "bm25"}, {"encoder", encoder_}};
  PutLengthPrefixed(&out, params.dump());
  PutVarint64(&out, memory_.size());
  for (const auto& q : memory_) {
    PutLengthPrefixed(&out, q.id);
    PutLengthPrefixed(&out, q.text);
    PutVarint64(&out, q.residuals.size());
    for (const auto& [doc, r] : q.residuals) {
      PutLengthPrefixed(&out, doc);
      PutDouble(&out, r);
    }
  }
  const size_t dim = dense && !memory_.empty() ? memory_[0].embedding.size() : 0;
  PutVarint64(&out, dim);
  for (const auto& q : memory_) {
    for (size_t j = 0; j < dim; ++j) PutFixed32BE(&out, std::bit_cast<uint32_t>(q.embedding[j]));
  }
  return out;
}

Result<std::unique_ptr<ResMem>> ResMem::Decode(std::string_view in) {
  auto corrupt = [](const std::string& what) { return Status::Corruption("resmem: " + what); };
  const uint8_t version = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  if (version != 1 && version != kResMemFormatVersion) return corrupt("unknown format version");
  in.remove_prefix(1);
  std::string_view params_json;
  if (!GetLengthPrefixed(&in, &params_json)) return corrupt("truncated parameters");
  ResMemParams params;
  auto j = ParseJson(params_json, "resmem parameters");
  if (!j.ok() || !j->is_object()) return corrupt("parameters are not a JSON object");
  for (const char* key : {"k", "sigma", "temperature", "lambda", "depth"}) {
    if (!j->contains(key) || !(*j)[key].is_number()) return corrupt(std::string("parameter '") + key + "' is not a number");
  }
  if (!(*j)["k"].is_number_unsigned() || !(*j)["depth"].is_number_unsigned()) return corrupt("k and depth must be counts");
  params.k = (*j)["k"].get<size_t>();
  params.sigma = (*j)["sigma"].get<float>();
  params.temperature = (*j)["temperature"].get<float>();
  params.lambda = (*j)["lambda"].get<float>();
  params.depth = (*j)["depth"].get<size_t>();
  std::string encoder;
  if (version >= 2) {
    if (!j->contains("neighbours") || !(*j)["neighbours"].is_string() || !j->contains("encoder") ||
        !(*j)["encoder"].is_string()) {
      return corrupt("parameters 'neighbours' and 'encoder' must be strings");
    }
    const std::string kind = (*j)["neighbours"].get<std::string>();
    if (kind != "bm25" && kind != "dense") return corrupt("unknown neighbours '" + kind + "'");
    params.neighbours = kind == "dense" ? ResMemNeighbours::kDense : ResMemNeighbours::kBm25;
    encoder = (*j)["encoder"].get<std::string>();
  }
  uint64_t n;
  if (!GetVarint64(&in, &n)) return corrupt("truncated query count");
  std::vector<MemoryQuery> memory;
  for (uint64_t i = 0; i < n; ++i) {
    MemoryQuery q;
    std::string_view id, text;
    uint64_t n_res;
    if (!GetLengthPrefixed(&in, &id) || !GetLengthPrefixed(&in, &text) || !GetVarint64(&in, &n_res)) {
      return corrupt("truncated query " + std::to_string(i));
    }
    q.id = id;
    q.text = text;
    for (uint64_t j = 0; j < n_res; ++j) {
      std::string_view doc;
      double r;
      if (!GetLengthPrefixed(&in, &doc) || !GetDouble(&in, &r)) return corrupt("truncated residuals of query " + q.id);
      q.residuals.emplace_back(std::string(doc), r);
    }
    memory.push_back(std::move(q));
  }
  if (version >= 2) {
    uint64_t dim;
    if (!GetVarint64(&in, &dim)) return corrupt("truncated embedding dimension");
    if (!memory.empty() && (dim > 0) != (params.neighbours == ResMemNeighbours::kDense)) {
      return corrupt("embedding dimension " + std::to_string(dim) + " does not fit its neighbours");
    }
    if (dim > 0 && (dim > in.size() / 4 / std::max<size_t>(memory.size(), 1) || dim * 4 * memory.size() != in.size())) {
      return corrupt("embeddings: " + std::to_string(in.size()) + " bytes for " + std::to_string(memory.size()) +
                     " queries of dimension " + std::to_string(dim));
    }
    for (auto& q : memory) {
      q.embedding.resize(dim);
      for (auto& v : q.embedding) {
        uint32_t bits;
        GetFixed32BE(&in, &bits);
        v = std::bit_cast<float>(bits);
      }
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return Create(std::move(memory), params, std::move(encoder));
}

}  // namespace quarry
