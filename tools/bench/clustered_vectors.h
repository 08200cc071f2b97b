// Seeded synthetic embeddings for the dense benchmarks: unit vectors around random unit centres,
// x = normalize(centre + spread * noise), closer to real embeddings than uniform noise.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace quarry::bench {

// `n_centres` random centres of norm ~1 (row-major [n_centres, dim]).
std::vector<float> RandomCentres(size_t n_centres, size_t dim, std::mt19937_64& rng);
// n vectors, each around a uniformly chosen centre; `spread` is the noise's per-coordinate deviation.
std::vector<float> Clustered(size_t n, size_t dim, const std::vector<float>& centres, float spread, std::mt19937_64& rng);

}  // namespace quarry::bench
