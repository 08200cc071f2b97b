// bench_int8: the rate of LinearInt8 (model/int8_gemm.h) on each int8 kernel this CPU has (AVX512-VNNI,
// AVX2), beside the float32 sgemm (Linear) on the same matrix dequantized, in the same run: the
// products of a 0.42B llama's FFN (4864 x 896 and back; 1024 for the K-quants, whose super-blocks
// need a multiple of 256), random blocks with small scales, 128 and 512 activation rows, 1 and 2 threads.
// Usage: bench_int8 [TOKENS ...]   (default: 128 512)
// Prints one line per (type, tokens, threads): GOP/s per kernel and float32, and each kernel's ratio.
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/int8_gemm.h"
#include "model/kernels.h"

using namespace quarry::model;

namespace {

// Median seconds of 5 runs of `f` (after one warm-up).
double MedianSeconds(const std::function<void()>& f) {
  f();
  std::vector<double> times;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[2];
}

// Random ggml blocks of `type` for a rows x cols matrix, every float16 scale (and min) set to 2^-10 so
// that the values stay finite.
std::vector<uint8_t> RandomBlocks(GgmlType type, size_t rows, size_t cols, std::mt19937& rng) {
  QuantBlock block;
  QuantBlockOf(uint32_t(type), &block);
  const size_t per_row = cols / block.elements;
  std::vector<uint8_t> w(rows * per_row * block.bytes);
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  const uint16_t small = 0x1400;  // 2^-10 as float16
  for (size_t i = 0; i < rows * per_row; ++i) {
    uint8_t* p = w.data() + i * block.bytes;
    if (type == GgmlType::kQ6_K) {
      std::memcpy(p + 208, &small, 2);  // its one float16, after the quants and int8 scales
    } else {
      std::memcpy(p, &small, 2);
      if (block.has_min) std::memcpy(p + 2, &small, 2);
    }
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> lengths;
  for (int i = 1; i < argc; ++i) lengths.push_back(std::strtoul(argv[i], nullptr, 10));
  if (lengths.empty()) lengths = {128, 512};
  std::vector<std::pair<Int8Kernel, const char*>> kernels;
  if (BestInt8Kernel() == Int8Kernel::kAvx512Vnni) kernels.push_back({Int8Kernel::kAvx512Vnni, "avx512-vnni"});
  if (HasInt8Dot()) kernels.push_back({Int8Kernel::kAvx2, "avx2"});
  if (kernels.empty()) return std::fprintf(stderr, "bench_int8: this CPU has neither AVX2 nor AVX512-VNNI\n"), 1;
  std::mt19937 rng(7);
  std::printf("%-5s %6s %7s", "type", "tokens", "threads");
  for (const auto& k : kernels) std::printf(" %20s", (std::string(k.second) + " GOP/s").c_str());
  std::printf(" %14s\n", "float32 GFLOP/s");
  for (const GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ5_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const bool k_quant = GgmlBlockOf(uint32_t(type)).elements == 256;
    const size_t hidden = k_quant ? 1024 : 896, ffn = 4864;
    struct Matrix {
      size_t rows, cols;
      std::unique_ptr<Int8Panels> packed;
      std::vector<float> widened;
    };
    std::vector<Matrix> matrices;
    for (const auto& [rows, cols] : {std::pair{ffn, hidden}, std::pair{hidden, ffn}}) {
      const std::vector<uint8_t> blocks = RandomBlocks(type, rows, cols, rng);
      Matrix m{rows, cols, PackInt8Panels(uint32_t(type), blocks.data(), blocks.size() / rows, rows, cols), {}};
      m.widened.resize(rows * cols);
      for (size_t r = 0; r < rows; ++r) {
        DequantizeRow(uint32_t(type), blocks.data() + r * (blocks.size() / rows), m.widened.data() + r * cols,
                      int64_t(cols));
      }
      matrices.push_back(std::move(m));
    }
    for (const size_t n : lengths) {
      std::vector<float> x(n * ffn), y(n * ffn);
      for (float& v : x) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      double ops = 0;
      for (const Matrix& m : matrices) ops += 2.0 * double(n) * double(m.rows) * double(m.cols);
      for (const int threads : {1, 2}) {
        tbb::global_control control(tbb::global_control::max_allowed_parallelism, threads);
        auto time = [&](const std::function<void(const Matrix&)>& product) {
          return MedianSeconds([&] {
            for (const Matrix& m : matrices) product(m);
          });
        };
        const double float_s = time([&](const Matrix& m) {
          Linear(x.data(), n, m.cols, m.widened.data(), m.rows, nullptr, y.data());
        });
        std::printf("%-5s %6zu %7d", GgmlTypeName(uint32_t(type)).c_str(), n, threads);
        for (const auto& k : kernels) {
          const double s = time([&](const Matrix& m) {
            LinearInt8(x.data(), n, m.cols, *m.packed, m.rows, nullptr, y.data(), k.first);
          });
          std::printf(" %11.1f (%4.2fx)", ops / s / 1e9, float_s / s);
        }
        std::printf(" %15.1f\n", ops / float_s / 1e9);
      }
    }
  }
  return 0;
}
