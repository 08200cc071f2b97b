// Float32 building blocks of the transformer forward. Matrices are row-major, one row per token.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace quarry::model {

// C[m, n] = alpha A[m, k] B + beta C (B[k, n], or B[n, k] transposed), row-major with leading
// dimensions: one OpenBLAS sgemm on the calling thread (the runtime's parallelism is oneTBB's, never
// OpenBLAS's).
void Sgemm(bool transpose_b, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda, const float* b,
           size_t ldb, float* c, size_t ldc, float beta = 0.0f);
// Y[n, out] = X[n, in] * W[out, in]^T (+ bias[out]): sgemm calls on blocks of rows or of output
// columns, in parallel on the current oneTBB arena.
void Linear(const float* x, size_t n, size_t in, const float* w, size_t out, const float* bias, float* y);
// The same with W in another storage: `widen(first_row, rows, dst)` writes rows [first_row, first_row +
// rows) of W as float32 into dst (rows x in); panels of up to 16 MiB are widened, in parallel, and
// multiplied by the float32 path, so results equal Linear on the widened W.
void LinearWidened(const float* x, size_t n, size_t in, size_t out, const float* bias, float* y,
                   const std::function<void(size_t first_row, size_t rows, float* dst)>& widen);
// The same with W stored as bfloat16 (used in place, e.g. from a mapped checkpoint): panels of W are
// widened to float32 (exactly) and multiplied as above, so results equal Linear on the widened W.
void LinearBf16(const float* x, size_t n, size_t in, const uint16_t* w, size_t out, const float* bias, float* y);
// The same with X rounded to bfloat16 (nearest even), as llama.cpp multiplies BF16 weights: results
// differ from the float32 path by X's rounding (relative 2^-9 per element). The products are exact in
// float32 either way; `kernel` sums them with AVX512-BF16 dot products (model/bf16_gemm.cc; ~1.7x the
// float32 GEMM's rate here) or, on any CPU, by LinearBf16 on the rounded X (OpenBLAS, whose AVX512 or
// AVX2 kernels are chosen at run time): the same values up to float32 summation order.
enum class Bf16Kernel { kWidened, kAvx512Bf16 };
bool HasBf16Dot();  // this CPU has AVX512-BF16 (and AVX512-BW)
inline Bf16Kernel BestBf16Kernel() { return HasBf16Dot() ? Bf16Kernel::kAvx512Bf16 : Bf16Kernel::kWidened; }
void LinearBf16Dot(const float* x, size_t n, size_t in, const uint16_t* w, size_t out, const float* bias, float* y,
                   Bf16Kernel kernel = BestBf16Kernel());
// out[i] = w[i] widened to float32 (exact).
void Bf16RowsToF32(const uint16_t* w, size_t count, float* out);
// Each row: x * rsqrt(mean(x^2) + eps) * weight (HF LlamaRMSNorm, in float32).
void RmsNorm(const float* x, size_t n, size_t dim, const float* weight, float eps, float* y);
// Each row: (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch LayerNorm).
void LayerNorm(const float* x, size_t n, size_t dim, const float* weight, const float* bias, float eps, float* y);
// gate[i] = silu(gate[i]) * up[i]
void SiluMul(float* gate, const float* up, size_t n);
// gate[i] = gelu(gate[i]) * up[i] with GELU's tanh approximation (Gemma's gelu_pytorch_tanh):
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
void GeluTanhMul(float* gate, const float* up, size_t n);
// e^x to about 1 ulp for x in [-87.3, 88.3] (clamped outside; NaN stays NaN), in plain arithmetic
// that vectorises.
inline float ExpFast(float x) {
  // Cephes' expf: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an exact reduction), e^r by a
  // degree-6 polynomial, 2^k put into the exponent bits. Only arithmetic, so loops over it vectorise.
  const float in = x;
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  x = x == x ? x : 0.0f;  // NaN: computed on 0 (converting NaN to an integer is undefined), returned as NaN
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float k = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(k) + 127) << 23);
  const float out = e * scale;
  return in == in ? out : in;
}
// x[i] = 0.5 x (1 + erf(x / sqrt 2)), to a relative 2e-7.
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

// A float buffer for one call's temporaries (the forward's per-layer activations, widened weight
// panels), zero-filled unless `zeroed` is false, taken from a process-wide pool and given back when it
// goes out of scope. Allocated afresh, buffers of megabytes are mapped, faulted in page by page and
// unmapped on every layer (bench_model, bf16 at 128 tokens: 225,000 page faults and 0.71 s of system
// time against 11,300 and 0.13 s pooled), and unmapping takes the address-space lock that the other
// threads' page faults wait on. Buffers above 64 MiB are not kept, and the pool keeps at most 32.
class ScratchFloats {
 public:
  explicit ScratchFloats(size_t n, bool zeroed = true);
  ~ScratchFloats();
  ScratchFloats(const ScratchFloats&) = delete;
  ScratchFloats& operator=(const ScratchFloats&) = delete;
  float* data() { return buffer_.get(); }
  const float* data() const { return buffer_.get(); }
  size_t size() const { return size_; }
  float* begin() { return buffer_.get(); }
  float* end() { return buffer_.get() + size_; }
  float& operator[](size_t i) { return buffer_[i]; }

 private:
  std::unique_ptr<float[]> buffer_;
  size_t size_ = 0, capacity_ = 0;
};

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

// The sum and the maximum of x[0, n) (n > 0 for Max), in 16 lanes like Dot.
inline float Sum(const float* x, size_t n) {
  float lanes[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += x[i + l];
  }
  float sum = 0;
  for (; i < n; ++i) sum += x[i];
  for (float v : lanes) sum += v;
  return sum;
}
inline float Max(const float* x, size_t n) {
  float lanes[16];
  for (float& v : lanes) v = x[0];
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] = x[i + l] > lanes[l] ? x[i + l] : lanes[l];
  }
  float top = x[0];
  for (; i < n; ++i) top = x[i] > top ? x[i] : top;
  for (float v : lanes) top = v > top ? v : top;
  return top;
}

}  // namespace quarry::model
