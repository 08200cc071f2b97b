#include "index/dense/autotune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_set>

namespace quarry {

double RecallAtK(const std::vector<std::vector<DenseHit>>& found, const std::vector<std::vector<int64_t>>& truth, size_t k,
                 std::vector<double>* per_query) {
  if (truth.empty()) return 0;
  double sum = 0;
  if (per_query) per_query->clear();
  for (size_t q = 0; q < truth.size(); ++q) {
    const size_t n_true = std::min(k, truth[q].size());
    double recall = 1;
    if (n_true > 0) {
      std::unordered_set<int64_t> expected(truth[q].begin(), truth[q].begin() + static_cast<std::ptrdiff_t>(n_true));
      size_t hits = 0;
      for (size_t j = 0; j < found[q].size() && j < k; ++j) hits += expected.count(found[q][j].id);
      recall = static_cast<double>(hits) / static_cast<double>(n_true);
    }
    sum += recall;
    if (per_query) per_query->push_back(recall);
  }
  return sum / static_cast<double>(truth.size());
}

Result<TuningResult> TuneSearchParameter(FaissIndex* index, const std::vector<float>& queries,
                                         const std::vector<std::vector<int64_t>>& truth, size_t k, double target,
                                         size_t max_value) {
  TuningResult r;
  if (index->HasSearchParameter("nprobe")) {
    r.knob = "nprobe";
  } else if (index->HasSearchParameter("efSearch")) {
    r.knob = "efSearch";
  } else {
    return Status::InvalidArgument("dense index: nothing to tune (only IVF and HNSW indexes have a search knob)");
  }
  auto measure = [&](size_t value) -> Result<TuningPoint> {
    for (const auto& p : r.tried) {
      if (p.value == value) return p;
    }
    QUARRY_RETURN_IF_ERROR(index->SetSearchParameter(r.knob, value));
    const auto start = std::chrono::steady_clock::now();
    QUARRY_ASSIGN_OR_RETURN(auto found, index->Search(queries, k));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<double> each;
    const double mean = RecallAtK(found, truth, k, &each);
    double var = 0;
    for (double r : each) var += (r - mean) * (r - mean);
    const double n = static_cast<double>(each.size());
    const double stderr_mean = n > 1 ? std::sqrt(var / (n - 1) / n) : 0.0;
    TuningPoint p{value, mean, mean - 1.645 * stderr_mean, n / std::max(s, 1e-9)};
    r.tried.push_back(p);
    return p;
  };
  // Below k, HNSW returns fewer than k candidates: efSearch starts at k.
  size_t lo = r.knob == "efSearch" ? std::max<size_t>(k, 1) - 1 : 0;
  size_t hi = lo + 1;
  for (;;) {
    QUARRY_ASSIGN_OR_RETURN(auto p, measure(hi));
    if (p.recall_low >= target) break;
    if (hi >= max_value) {
      r.chosen = hi;
      r.recall = p.recall;
      r.recall_low = p.recall_low;
      r.reached = false;
      return r;
    }
    lo = hi;
    hi = std::min(hi * 2, max_value);
  }
  // Smallest feasible value in (lo, hi].
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    QUARRY_ASSIGN_OR_RETURN(auto p, measure(mid));
    if (p.recall_low >= target) hi = mid;
    else lo = mid;
  }
  QUARRY_ASSIGN_OR_RETURN(auto best, measure(hi));
  QUARRY_RETURN_IF_ERROR(index->SetSearchParameter(r.knob, hi));
  r.chosen = hi;
  r.recall = best.recall;
  r.recall_low = best.recall_low;
  r.reached = true;
  return r;
}

}  // namespace quarry
