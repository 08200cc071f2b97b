// Y = X W^T for GGUF weights of the 32-element block types (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1) and the
// K-quants Q4_K, Q5_K (32-element sub-blocks) and Q6_K (16-element sub-blocks), with X quantized to 8
// bits per 32-element block as llama.cpp quantizes it (its Q8_0 and Q8_1 activations: d = max|x| / 127
// stored as float16, q = x * 127 / max|x| rounded to nearest even, and for the types with a min s =
// d sum(q) as float16), on int8 dot products: AVX512-VNNI's vpdpbusd (64 products an instruction, 4x
// the float32 FMA's) or, on AVX2 CPUs, vpmaddubsw + vpmaddwd (llama.cpp's AVX2 path), which give the
// same integer sums and so the same results bit for bit. Results differ from the float32 path on the
// dequantized weights by X's rounding (half a step of max|x| / 127 per element), as llama.cpp's do.
// llama.cpp quantizes X for the K-quants per 256 values instead (Q8_K: one float32 scale), which
// rounds coarser; other types (Q2_K, Q3_K, F16, ...) are not taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace quarry::model {

// A matrix repacked for LinearInt8: panels of 16 output rows; per panel and 32-element block, the 16
// rows' float32 scales (two, one per 16 elements, for Q6_K) and mins, and quants laid out so that one
// 64-byte load holds 4 consecutive elements of each of the 16 rows (the vpdpbusd operand). Quants are
// unsigned, a weight is scale * (u - offset) + min: Q8_0's q + 128 and the 5- and 6-bit types' values
// one byte each; the 4-bit types' nibbles two to a byte (groups 2h and 2h + 1 of 4 elements in the low and high nibbles). Bits
// per weight (the GGUF blocks'): Q4_0 5 (4.5), Q4_1 and Q4_K 6 (5, 4.5), Q5_0 9 (5.5), Q5_1 and Q5_K 10
// (6, 5.5), Q6_K 10 (6.56), Q8_0 9 (8.5).
struct Int8Panels {
  bool four_bit = false;
  bool half_scales = false;  // a scale per 16 elements (Q6_K)
  int offset = 0;  // 128 (Q8_0), 32 (Q6_K), 16 (Q5_0), 8 (Q4_0), 0 (the types with mins)
  size_t rows = 0, cols = 0, panels = 0, blocks = 0;
  size_t block_bytes = 0;  // quant bytes of one panel's block: 512 (8-bit) or 256 (4-bit)
  std::unique_ptr<uint8_t[], decltype(&std::free)> quants{nullptr, &std::free};  // 64-byte aligned
  std::vector<float> scales;  // [panels][blocks][16], or [panels][blocks][2][16] with half_scales
  std::vector<float> mins;    // the same for the types with mins (Q4_1, Q5_1, Q4_K, Q5_K); empty otherwise
  size_t bytes() const { return panels * blocks * block_bytes + (scales.size() + mins.size()) * sizeof(float); }
};

// The instructions LinearInt8 runs on, chosen at run time: the best the CPU has unless a test asks.
enum class Int8Kernel { kNone, kAvx2, kAvx512Vnni };
Int8Kernel BestInt8Kernel();  // AVX512-VNNI (with AVX512-BW), else AVX2 (with FMA and F16C), else none
bool HasInt8Dot();            // BestInt8Kernel() != kNone
// Repacks `rows` rows of `cols` elements (a whole number of ggml blocks) stored as ggml blocks of
// `ggml_type` (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, Q4_K, Q5_K or Q6_K), `row_bytes` apart. Returns null for
// another type.
std::unique_ptr<Int8Panels> PackInt8Panels(uint32_t ggml_type, const uint8_t* blocks, size_t row_bytes, size_t rows,
                                           size_t cols);
// Y[n, out] = X[n, in] W^T (+ bias[out]) for W = `w` (out = w.rows, in = w.cols). `kernel`: one this
// CPU has (not kNone).
void LinearInt8(const float* x, size_t n, size_t in, const Int8Panels& w, size_t out, const float* bias, float* y,
                Int8Kernel kernel = BestInt8Kernel());

// X's rows quantized as LinearInt8 quantizes them (exposed for tests): per 32-element block of each
// row, q[32] (int8), d (the float16 scale, widened), the sums of q's two halves (16 elements each), and
// s (Q8_1's float16 of d * sum(q) with d before its rounding to float16, widened).
struct Int8Rows {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> half_sums;  // [n][blocks][2]
  std::vector<float> s;
};
Int8Rows QuantizeRowsQ8(const float* x, size_t n, size_t in);

}  // namespace quarry::model
