#include "model/kernels.h"

#include <cblas.h>

#include <cmath>

#include "model/safetensors.h"
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace quarry::model {

void Linear(const float* x, size_t n, size_t in, const float* w, size_t out, const float* bias, float* y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out), static_cast<int>(in),
              1.0f, x, static_cast<int>(in), w, static_cast<int>(in), 0.0f, y, static_cast<int>(out));
  if (bias) {
    for (size_t r = 0; r < n; ++r) {
      float* row = y + r * out;
      for (size_t c = 0; c < out; ++c) row[c] += bias[c];
    }
  }
}

void RmsNorm(const float* x, size_t n, size_t dim, const float* weight, float eps, float* y) {
  for (size_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float sum = 0;
    for (size_t i = 0; i < dim; ++i) sum += xr[i] * xr[i];
    const float scale = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    for (size_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * scale);
  }
}

void LayerNorm(const float* x, size_t n, size_t dim, const float* weight, const float* bias, float eps, float* y) {
  for (size_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double mean = 0, var = 0;
    for (size_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= dim;
    for (size_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (size_t i = 0; i < dim; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv) * weight[i] + bias[i];
  }
}

void SiluMul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void GeluErf(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

std::vector<float> RopeInverseFrequencies(double theta, size_t head_dim, bool round_to_bf16) {
  std::vector<float> inv_freq(head_dim / 2);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    inv_freq[i] = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(2 * i) / head_dim));
    if (round_to_bf16) inv_freq[i] = Bf16ToF32(F32ToBf16(inv_freq[i]));
  }
  return inv_freq;
}

void ApplyRope(float* x, size_t n, size_t n_heads, size_t head_dim, const int* positions,
               const std::vector<float>& inv_freq) {
  const size_t half = head_dim / 2;
  std::vector<float> cos_v(half), sin_v(half);
  for (size_t t = 0; t < n; ++t) {
    for (size_t i = 0; i < half; ++i) {
      // HF: the angle pos * inv_freq is a float32 product.
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos_v[i] = std::cos(angle);
      sin_v[i] = std::sin(angle);
    }
    for (size_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (size_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos_v[i] - b * sin_v[i];
        v[i + half] = b * cos_v[i] + a * sin_v[i];
      }
    }
  }
}

void AddInPlace(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void SetBlasThreads(int n) {
  if (n > 0) openblas_set_num_threads(n);
}

}  // namespace quarry::model
