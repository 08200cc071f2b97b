// Float32 building blocks of the transformer forward. Matrices are row-major, one row per token.
#pragma once

#include <cstddef>
#include <vector>

namespace quarry::model {

// Y[n, out] = X[n, in] * W[out, in]^T (+ bias[out]) through OpenBLAS sgemm.
void Linear(const float* x, size_t n, size_t in, const float* w, size_t out, const float* bias, float* y);
// Each row: x * rsqrt(mean(x^2) + eps) * weight (HF LlamaRMSNorm, in float32).
void RmsNorm(const float* x, size_t n, size_t dim, const float* weight, float eps, float* y);
// Each row: (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch LayerNorm).
void LayerNorm(const float* x, size_t n, size_t dim, const float* weight, const float* bias, float eps, float* y);
// gate[i] = silu(gate[i]) * up[i]
void SiluMul(float* gate, const float* up, size_t n);
// x[i] = 0.5 x (1 + erf(x / sqrt 2))
void GeluErf(float* x, size_t n);
// RoPE's inverse frequencies 1 / theta^(2i/d), i < d/2, as float32. `round_to_bf16`: as Hugging Face
// has them for a model instantiated in bfloat16 (the inv_freq buffer is cast with the weights), which
// shifts every angle by up to 0.4% and is what transformers computes for bf16 checkpoints.
std::vector<float> RopeInverseFrequencies(double theta, size_t head_dim, bool round_to_bf16);
// Rotary position embedding (HF "default" rope, rotate_half layout) applied in place to `n_heads`
// heads of `head_dim` per row; row t has position positions[t].
void ApplyRope(float* x, size_t n, size_t n_heads, size_t head_dim, const int* positions,
               const std::vector<float>& inv_freq);
void AddInPlace(float* x, const float* y, size_t n);

// A dot product in 16 independent lanes, so that it vectorises without -ffast-math (whose reassociation
// would change BM25's and the goldens' rounding elsewhere).
inline float Dot(const float* a, const float* b, size_t d) {
  float lanes[16] = {};
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  float dot = 0;
  for (; i < d; ++i) dot += a[i] * b[i];
  for (float v : lanes) dot += v;
  return dot;
}
// Sets the number of threads OpenBLAS uses (0: its default).
void SetBlasThreads(int n);

}  // namespace quarry::model
