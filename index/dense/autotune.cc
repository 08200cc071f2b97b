#include "index/dense/autotune.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

namespace quarry {

double RecallAtK(const std::vector<std::vector<DenseHit>>& found, const std::vector<std::vector<int64_t>>& truth, size_t k) {
  if (truth.empty()) return 0;
  double sum = 0;
  for (size_t q = 0; q < truth.size(); ++q) {
    const size_t n_true = std::min(k, truth[q].size());
    if (n_true == 0) {
      sum += 1;
      continue;
    }
    std::unordered_set<int64_t> expected(truth[q].begin(), truth[q].begin() + static_cast<std::ptrdiff_t>(n_true));
    size_t hits = 0;
    for (size_t j = 0; j < found[q].size() && j < k; ++j) hits += expected.count(found[q][j].id);
    sum += static_cast<double>(hits) / static_cast<double>(n_true);
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
    TuningPoint p{value, RecallAtK(found, truth, k), static_cast<double>(truth.size()) / std::max(s, 1e-9)};
    r.tried.push_back(p);
    return p;
  };
  // Below k, HNSW returns fewer than k candidates: efSearch starts at k.
  size_t lo = r.knob == "efSearch" ? std::max<size_t>(k, 1) - 1 : 0;
  size_t hi = lo + 1;
  for (;;) {
    QUARRY_ASSIGN_OR_RETURN(auto p, measure(hi));
    if (p.recall >= target) break;
    if (hi >= max_value) {
      r.chosen = hi;
      r.recall = p.recall;
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
    if (p.recall >= target) hi = mid;
    else lo = mid;
  }
  QUARRY_ASSIGN_OR_RETURN(auto best, measure(hi));
  QUARRY_RETURN_IF_ERROR(index->SetSearchParameter(r.knob, hi));
  r.chosen = hi;
  r.recall = best.recall;
  r.reached = true;
  return r;
}

}  // namespace quarry
