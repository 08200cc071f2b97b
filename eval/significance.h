// Paired significance tests over per-query scores of two systems on the same queries.
#pragma once

#include <cstdint>
#include <vector>

namespace quarry::eval {

struct PairedTest {
  double mean_a = 0, mean_b = 0, mean_diff = 0;  // diff = b - a
  double p_randomization = 1;  // two-sided, Fisher's paired randomisation (sign flips)
  double t = 0, p_t = 1;       // two-sided paired Student t-test
};

// `a` and `b` must have the same length. Randomisation: `n_permutations` seeded sign flips;
// p = (1 + #{|mean of flipped diffs| >= |observed|}) / (1 + n_permutations).
PairedTest ComparePaired(const std::vector<double>& a, const std::vector<double>& b,
                         uint64_t n_permutations = 10000, uint64_t seed = 42);

// Two-sided p-value of Student's t with `df` degrees of freedom.
double StudentTwoSidedP(double t, double df);

}  // namespace quarry::eval
