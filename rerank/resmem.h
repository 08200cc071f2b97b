// ResMem ("Learn what you can and memorize the rest", Yang et al. 2023) for ranking: the base
// pipeline's calibrated scores plus a soft k-nearest-neighbour regression of its training residuals.
//
//   calibrated p(d | q) = softmax over q's candidate list of score(d) / temperature
//   target(d | q_i)     = 1 / |relevant(q_i)| for a relevant d (grade > 0), else 0
//   residual r_i(d)     = target(d | q_i) - p(d | q_i)   for every candidate and every relevant d of q_i
//   neighbours of q     = the k training queries most similar to q: by BM25 between query texts, or by
//                         the inner product of their embeddings (the collection's dense encoder)
//   weights w_i         = softmax over the neighbours of similarity_i / sigma
//   corrected(d | q)    = p(d | q) + lambda * sum_i w_i r_i(d)   (a neighbour without r_i(d) adds 0)
//
// Candidates the memory adds: a document with a residual in some neighbour but absent from q's list
// enters with p = 0, so only a positive correction (a neighbour's relevant document that its own list
// missed or under-ranked) can lift it; the corrected list is cut back to the candidate depth.
// Immutable once built; thread-safe for concurrent Correct calls.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "index/lexical/lexical_index.h"
#include "quarry/options.h"
#include "quarry/status.h"

namespace quarry {

using ResMemParams = ResMemOptions;  // include/quarry/options.h

using ScoredDoc = std::pair<std::string, double>;  // (external id, score)

// softmax(score / temperature) over the list, in the list's order.
std::vector<double> Calibrate(const std::vector<ScoredDoc>& candidates, double temperature);

struct MemoryQuery {
  std::string id, text;
  std::vector<ScoredDoc> residuals;  // (doc id, residual)
  std::vector<float> embedding;      // dense neighbours: the query's embedding (else empty)
};

// One document of a corrected list: corrected = base + correction.
struct CorrectedDoc {
  std::string id;
  double score;       // base + correction
  double base;        // calibrated base probability (0 for a document the memory added)
  double correction;  // lambda * sum_i w_i r_i(d)
};

// The residuals of one training query given its candidate list and judgements (doc -> grade).
std::vector<ScoredDoc> TrainingResiduals(const std::vector<ScoredDoc>& candidates,
                                         const std::map<std::string, int>& judgements, double temperature);

class ResMem {
 public:
  // Dense neighbours need every query's embedding, all of one dimension; `encoder` names what made them
  // (the dense configuration's encoder), so that a search with another encoder can be refused.
  static Result<std::unique_ptr<ResMem>> Create(std::vector<MemoryQuery> memory, const ResMemParams& params,
                                                std::string encoder = "");
  // Decodes what Encode wrote; Corruption names what is wrong.
  static Result<std::unique_ptr<ResMem>> Decode(std::string_view bytes);
  std::string Encode() const;

  const ResMemParams& params() const { return params_; }
  const std::vector<MemoryQuery>& memory() const { return memory_; }
  const std::string& encoder() const { return encoder_; }

  // (memory index, similarity) of the `k` most similar training queries, most similar first (ties:
  // memory order): by BM25 from the query text, or by inner product from its embedding, as
  // params().neighbours says (the other form is FailedPrecondition).
  Result<std::vector<std::pair<size_t, double>>> Neighbours(std::string_view query, size_t k) const;
  Result<std::vector<std::pair<size_t, double>>> Neighbours(const std::vector<float>& embedding, size_t k) const;
  // The corrected ranking of `candidates` (the base list, best first), cut to params().depth.
  // `neighbours` comes from Neighbours(query, params().k).
  std::vector<CorrectedDoc> Correct(const std::vector<ScoredDoc>& candidates,
                                    const std::vector<std::pair<size_t, double>>& neighbours) const;
  // The same with explicit parameters (tuning); `neighbours` may hold more than params.k.
  std::vector<CorrectedDoc> Correct(const std::vector<ScoredDoc>& candidates,
                                    const std::vector<std::pair<size_t, double>>& neighbours,
                                    const ResMemParams& params) const;

 private:
  ResMem() = default;
  ResMemParams params_;
  std::vector<MemoryQuery> memory_;
  std::string encoder_;
  std::shared_ptr<const LexicalIndex> query_index_;  // BM25 neighbours: an index of the training query texts
};

// 2 added dense neighbours (version 1 memories still decode, as BM25 ones).
inline constexpr uint8_t kResMemFormatVersion = 2;

}  // namespace quarry
