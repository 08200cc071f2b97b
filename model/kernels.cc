#include "model/kernels.h"

#include <cblas.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "model/safetensors.h"

extern "C" void openblas_set_num_threads(int);

namespace quarry::model {

namespace {

// The runtime parallelises with oneTBB (across texts, row blocks, heads); an OpenBLAS that also
// threads each call oversubscribes the cores and, in Debian's pthreads build, serialises concurrent
// callers behind a spinning lock (a third of the time went to sched_yield). So every sgemm runs on the
// thread that calls it. Process-wide: FAISS's BLAS calls in the same process run single-threaded too.
void UseCallerThreadBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Threads that may work on the current arena: its concurrency, within any global_control limit.
size_t Workers() {
  const size_t arena = static_cast<size_t>(tbb::this_task_arena::max_concurrency());
  const size_t allowed = tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
  return std::max<size_t>(1, std::min(arena, allowed));
}

// Runs fn(begin, end) over [0, n) in blocks of at least `grain`, in parallel on the current arena.
template <typename Fn>
void ParallelBlocks(size_t n, size_t grain, Fn fn) {
  tbb::parallel_for(tbb::blocked_range<size_t>(0, n, grain),
                    [&](const tbb::blocked_range<size_t>& r) { fn(r.begin(), r.end()); });
}

}  // namespace

void Sgemm(bool transpose_b, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda, const float* b,
           size_t ldb, float* c, size_t ldc, float beta) {
  UseCallerThreadBlas();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

namespace {

// Linear into columns of a wider Y: y has row stride ldy >= out.
void LinearInto(const float* x, size_t n, size_t in, const float* w, size_t out, const float* bias, float* y,
                size_t ldy) {
  // One block: rows [r0, r0 + rows) and columns [c0, c0 + cols) of Y. A bias is written first and the
  // product added to it (beta 1), which saves OpenBLAS's pass that zeroes C and a second pass for it.
  auto block = [&](size_t r0, size_t rows, size_t c0, size_t cols) {
    float* yb = y + r0 * ldy + c0;
    if (bias) {
      for (size_t r = 0; r < rows; ++r) std::copy(bias + c0, bias + c0 + cols, yb + r * ldy);
    }
    Sgemm(true, rows, cols, in, 1.0f, x + r0 * in, in, w + c0 * in, in, yb, ldy, bias ? 1.0f : 0.0f);
  };
  // Parallel blocks along the longer side. OpenBLAS packs the weight block of every call, so blocks of
  // rows repack all of W once each, and blocks of columns repack X: cutting the side with more entries
  // (tokens vs output features) keeps the smaller operand the one repacked. A block is big enough
  // (>= 64 rows or 128 columns) that task overhead stays small.
  const size_t workers = Workers();
  if (workers > 1 && n >= out && n >= 128) {
    const size_t row_block = std::max<size_t>(64, (n + 2 * workers - 1) / (2 * workers));
    tbb::parallel_for(size_t{0}, (n + row_block - 1) / row_block, [&](size_t b) {
      const size_t r0 = b * row_block;
      block(r0, std::min(n, r0 + row_block) - r0, 0, out);
    });
  } else if (workers > 1 && out >= 256) {
    const size_t col_block = std::max<size_t>(128, (out + 2 * workers - 1) / (2 * workers));
    tbb::parallel_for(size_t{0}, (out + col_block - 1) / col_block, [&](size_t b) {
      const size_t c0 = b * col_block;
      block(0, n, c0, std::min(out, c0 + col_block) - c0);
    });
  } else {
    block(0, n, 0, out);
  }
}

}  // namespace

void Linear(const float* x, size_t n, size_t in, const float* w, size_t out, const float* bias, float* y) {
  LinearInto(x, n, in, w, out, bias, y, out);
}

void Bf16RowsToF32(const uint16_t* w, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = std::bit_cast<float>(uint32_t{w[i]} << 16);
}

void LinearWidened(const float* x, size_t n, size_t in, size_t out, const float* bias, float* y,
                   const std::function<void(size_t first_row, size_t rows, float* dst)>& widen) {
  // Panels of W's rows (output features), at most kPanelFloats widened, go through the float32 path.
  // The cost is one pass over the panel per call, against n multiply-adds per weight in the GEMM.
  constexpr size_t kPanelFloats = size_t{4} << 20;  // 16 MiB
  const size_t panel_rows = std::clamp<size_t>(kPanelFloats / std::max<size_t>(in, 1), 16, std::max<size_t>(out, 16));
  ScratchFloats panel(std::min(out, panel_rows) * in, /*zeroed=*/false);  // every row is widened into
  for (size_t r0 = 0; r0 < out; r0 += panel_rows) {
    const size_t rows = std::min(out, r0 + panel_rows) - r0;
    ParallelBlocks(rows, 16, [&](size_t first, size_t last) { widen(r0 + first, last - first, panel.data() + first * in); });
    LinearInto(x, n, in, panel.data(), rows, bias ? bias + r0 : nullptr, y + r0, out);
  }
}

void LinearBf16(const float* x, size_t n, size_t in, const uint16_t* w, size_t out, const float* bias, float* y) {
  // Widening is exact, so the products are those of the float32 path on the widened checkpoint.
  LinearWidened(x, n, in, out, bias, y,
                [&](size_t first, size_t rows, float* dst) { Bf16RowsToF32(w + first * in, rows * in, dst); });
}

void RmsNorm(const float* x, size_t n, size_t dim, const float* weight, float eps, float* y) {
  ParallelBlocks(n, 16, [&](size_t first, size_t last) {
    for (size_t r = first; r < last; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      float sum = 0;
      for (size_t i = 0; i < dim; ++i) sum += xr[i] * xr[i];
      const float scale = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
      for (size_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * scale);
    }
  });
}

void LayerNorm(const float* x, size_t n, size_t dim, const float* weight, const float* bias, float eps, float* y) {
  ParallelBlocks(n, 16, [&](size_t first, size_t last) {
    for (size_t r = first; r < last; ++r) {
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
  });
}

void SiluMul(float* gate, const float* up, size_t n) {
  ParallelBlocks(n, 16384, [&](size_t first, size_t last) {
    for (size_t i = first; i < last; ++i) gate[i] = gate[i] / (1.0f + ExpFast(-gate[i])) * up[i];
  });
}

void GeluTanhMul(float* gate, const float* up, size_t n) {
  ParallelBlocks(n, 16384, [&](size_t first, size_t last) {
    for (size_t i = first; i < last; ++i) {
      const float x = gate[i];
      const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      // 1 + tanh(u) = 2 / (1 + e^(-2u)); ExpFast clamps its argument, so large |u| saturate cleanly.
      gate[i] = x / (1.0f + ExpFast(-2.0f * u)) * up[i];
    }
  });
}

void GeluErf(float* x, size_t n) {
  // 0.5 x (1 + erf(x / sqrt 2)) through c = erfc(|x| / sqrt 2) (the Chebyshev fit of Numerical Recipes'
  // erfcc, relative error < 1.2e-7): x (1 - c / 2) for x >= 0, x c / 2 below, so small negative inputs
  // keep their relative precision. Vectorises, unlike std::erf (a call per element: 15% of an encoder).
  ParallelBlocks(n, 16384, [&](size_t first, size_t last) {
    for (size_t i = first; i < last; ++i) {
      const float xi = x[i];
      const float z = std::fabs(xi) * 0.70710678118654752f;
      const float t = 1.0f / (1.0f + 0.5f * z);
      float p = 0.17087277f;
      p = p * t - 0.82215223f;
      p = p * t + 1.48851587f;
      p = p * t - 1.13520398f;
      p = p * t + 0.27886807f;
      p = p * t - 0.18628806f;
      p = p * t + 0.09678418f;
      p = p * t + 0.37409196f;
      p = p * t + 1.00002368f;
      p = p * t - 1.26551223f;
      const float c = t * ExpFast(p - z * z);
      const float half_c = 0.5f * c;
      x[i] = xi * (xi >= 0 ? 1.0f - half_c : half_c);
    }
  });
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

namespace {

// Buffers given back, for the next ScratchFloats. A pool, not thread_local: a thread waiting in a oneTBB
// parallel_for may run another task that takes one, so a buffer is held per object.
class ScratchPool {
 public:
  // The smallest kept buffer of at least n floats, or else a new one (the largest kept is dropped, so
  // the pool follows the sizes in use).
  std::pair<std::unique_ptr<float[]>, size_t> Take(size_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t best = free_.size(), largest = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      const size_t c = free_[i].second;
      if (c >= n && (best == free_.size() || c < free_[best].second)) best = i;
      if (largest == free_.size() || c > free_[largest].second) largest = i;
    }
    if (best == free_.size()) {
      if (largest != free_.size()) free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(largest));
      return {std::unique_ptr<float[]>(new float[std::max<size_t>(n, 1)]), n};
    }
    auto buffer = std::move(free_[best]);
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
    return buffer;
  }
  void Give(std::unique_ptr<float[]> buffer, size_t capacity) {
    constexpr size_t kMaxKeptFloats = size_t{16} << 20;  // 64 MiB
    constexpr size_t kMaxKept = 32;
    if (capacity > kMaxKeptFloats) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < kMaxKept) free_.emplace_back(std::move(buffer), capacity);
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::unique_ptr<float[]>, size_t>> free_;
};

ScratchPool& Scratch() {
  static ScratchPool* pool = new ScratchPool();  // never destroyed: buffers may be given back at exit
  return *pool;
}

}  // namespace

ScratchFloats::ScratchFloats(size_t n, bool zeroed) : size_(n) {
  std::tie(buffer_, capacity_) = Scratch().Take(n);
  if (zeroed) std::fill(buffer_.get(), buffer_.get() + n, 0.0f);
}

ScratchFloats::~ScratchFloats() { Scratch().Give(std::move(buffer_), capacity_); }


}  // namespace quarry::model
