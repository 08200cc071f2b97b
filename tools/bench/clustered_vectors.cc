#include "tools/bench/clustered_vectors.h"

#include <cmath>

namespace quarry::bench {

std::vector<float> RandomCentres(size_t n_centres, size_t dim, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> centres(n_centres * dim);
  for (auto& x : centres) x = normal(rng) / std::sqrt(static_cast<float>(dim));
  return centres;
}

std::vector<float> Clustered(size_t n, size_t dim, const std::vector<float>& centres, float spread, std::mt19937_64& rng) {
  const size_t n_centres = centres.size() / dim;
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<size_t> pick(0, n_centres - 1);
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = pick(rng);
    float norm = 0;
    for (size_t k = 0; k < dim; ++k) {
      out[i * dim + k] = centres[c * dim + k] + spread * normal(rng);
      norm += out[i * dim + k] * out[i * dim + k];
    }
    norm = std::sqrt(norm);
    for (size_t k = 0; k < dim; ++k) out[i * dim + k] /= norm;
  }
  return out;
}

}  // namespace quarry::bench
