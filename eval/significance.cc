#include "eval/significance.h"

#include <cassert>
#include <cmath>
#include <random>

namespace quarry::eval {

namespace {

// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction; written here rather than
// pulled from Boost because this is the only special function Quarry needs.
double IncompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - IncompleteBeta(b, a, 1 - x);
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double tiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double numerator;
    if (i == 0) numerator = 1;
    else if (i % 2 == 0) numerator = (m * (b - m) * x) / ((a + 2.0 * m - 1) * (a + 2.0 * m));
    else numerator = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1));
    d = 1 + numerator * d;
    d = std::fabs(d) < tiny ? tiny : d;
    d = 1 / d;
    c = 1 + numerator / c;
    c = std::fabs(c) < tiny ? tiny : c;
    const double cd = c * d;
    f *= cd;
    if (std::fabs(1 - cd) < 1e-14) break;
  }
  return std::exp(log_front) * (f - 1) / a;
}

}  // namespace

double StudentTwoSidedP(double t, double df) {
  if (!std::isfinite(t)) return std::isnan(t) ? 1 : 0;
  return IncompleteBeta(df / 2, 0.5, df / (df + t * t));
}

PairedTest ComparePaired(const std::vector<double>& a, const std::vector<double>& b, uint64_t n_permutations,
                         uint64_t seed) {
  assert(a.size() == b.size());
  PairedTest r;
  const size_t n = a.size();
  if (n == 0) return r;
  std::vector<double> diff(n);
  for (size_t i = 0; i < n; ++i) {
    diff[i] = a[i] - b[i];
    r.mean_a += a[i];
    r.mean_b += b[i];
    r.mean_diff += diff[i];
  }
  r.mean_a /= n, r.mean_b /= n, r.mean_diff /= n;

  double var = 0;
  for (double d : diff) var += (d - r.mean_diff) * (d - r.mean_diff);
  if (n > 1) {
    var /= (n - 1);
    const double se = std::sqrt(var / n);
    if (se > 0) {
      r.t = r.mean_diff / se;
      r.p_t = StudentTwoSidedP(r.t, static_cast<double>(n - 1));
    } else {
      r.t = 0;
      r.p_t = r.mean_diff == 0 ? 1 : 0;
    }
  }

  std::mt19937_64 rng(seed);
  const double observed = std::fabs(r.mean_diff) * n - 1e-12;  // compare sums; tolerate rounding
  uint64_t at_least = 0;
  for (uint64_t p = 0; p < n_permutations; ++p) {
    double sum = 0;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i % 64 == 0) bits = rng();
      sum += (bits & 1) ? diff[i] : -diff[i];
      bits >>= 1;
    }
    if (std::fabs(sum) >= observed) ++at_least;
  }
  r.p_randomization = (1.0 + at_least) / (1.0 + n_permutations);
  return r;
}

}  // namespace quarry::eval
