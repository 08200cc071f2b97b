// Auto-tuning of a dense index's search knob (nprobe for IVF, efSearch for HNSW): the cheapest setting
// whose recall@k against exact search reaches a target. This is the constrained problem of "Automating
// Nearest Neighbor Search Configuration with Constrained Optimization" (Sun et al. 2023), minimise
// search cost subject to recall >= target, solved for one knob: cost and recall both grow with the knob,
// so doubling finds a bracket and bisection its smallest feasible value. The constraint is held on the
// sample's one-sided 95% lower confidence bound (mean - 1.645 standard errors), so that the target also
// holds for queries the tuner did not see, not only on average over its sample.
#pragma once

#include <string>
#include <vector>

#include "index/dense/faiss_index.h"
#include "quarry/status.h"

namespace quarry {

struct TuningPoint {
  size_t value = 0;
  double recall = 0;       // mean recall@k over the sample queries
  double recall_low = 0;   // its one-sided 95% lower confidence bound
  double qps = 0;          // queries per second at this setting
};

struct TuningResult {
  std::string knob;  // "nprobe" or "efSearch"
  size_t chosen = 0;
  double recall = 0, recall_low = 0;
  bool reached = false;             // false: even the largest setting tried misses the target
  std::vector<TuningPoint> tried;  // in the order tried
};

// Mean recall@k of `found` against `truth` (ids of the exact top k per query); `per_query`, when given,
// receives each query's recall.
double RecallAtK(const std::vector<std::vector<DenseHit>>& found, const std::vector<std::vector<int64_t>>& truth, size_t k,
                 std::vector<double>* per_query = nullptr);

// Tunes `index` in place (leaving the chosen value set). `queries` row-major; `truth[i]` the exact top-k
// ids of query i. `max_value` caps the knob (nprobe: the number of lists). InvalidArgument when the index
// has no knob.
Result<TuningResult> TuneSearchParameter(FaissIndex* index, const std::vector<float>& queries,
                                         const std::vector<std::vector<int64_t>>& truth, size_t k, double target,
                                         size_t max_value = 4096);

}  // namespace quarry
