// LinearInt8 (model/int8_gemm.h). A tile of MR activation rows by NR weight panels (16 output rows each)
// walks k one 32-element block at a time: per block, each (row, panel) pair sums q_x * u_w exactly in
// int32 lanes (one lane per output row: 8 dot products of 4-element groups, the row's 4 activation bytes
// broadcast), starting from -offset * sum(q_x) so that the weights' offset cancels; then the block's
// sums are widened and added to float32 accumulators times scale_w * d_x (plus min_w * s_x for the
// types with mins; Q6_K sums and scales each 16-element half apart). That is llama.cpp's arithmetic
// per block (float(isum) * (d_w * d_x) + m_w * s_x, summed in float), in another order. The AVX512-VNNI
// and AVX2 tiles do the same float operations in the same order on the same integer sums, so their
// results are equal bit for bit.
#include "model/int8_gemm.h"

#include <immintrin.h>
// GCC 12's AVX-512 reduction intrinsics pass an undefined vector as their unused mask source, which
// -Wmaybe-uninitialized reports inside the intrinsic headers (as in bf16_gemm.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "model/gguf.h"
#include "model/safetensors.h"

namespace quarry::model {

namespace {

#define QUARRY_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define QUARRY_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

constexpr size_t kBlock = 32;  // elements per quantization block (the weights' and X's)
constexpr size_t kPanel = 16;  // output rows per panel: one AVX-512 vector (two AVX2 ones) of int32 sums

// The int32 sum a (row, block) pair starts from (for the half `half` of a block when the weights have a
// scale per half): -offset * sum(q_x), so that u_w's offset cancels.
inline int32_t Start(const Int8Rows& x, size_t row, size_t blocks, size_t b, int offset, bool halves, int half) {
  const int32_t* sums = x.half_sums.data() + (row * blocks + b) * 2;
  return -offset * (halves ? sums[half] : sums[0] + sums[1]);
}

// The 4 quants of group g (elements 4g .. 4g + 3) of block b of a quantized row, as one int32 to broadcast.
inline int32_t Group(const int8_t* row, size_t b, int g) {
  int32_t group;
  std::memcpy(&group, row + b * kBlock + 4 * g, 4);
  return group;
}

// y[i * ldy + 16 p + l] (+ bias) for rows i < MR of X (from `row`) and panels p < NR (from `panel`),
// columns below `out` only.
template <int MR, int NR, bool kFourBit, bool kMins, bool kHalves>
QUARRY_VNNI_TARGET void TileVnni(const Int8Rows& x, size_t in, size_t row, const Int8Panels& w, size_t panel,
                                 const float* bias, float* y, size_t ldy, size_t out) {
  const size_t blocks = w.blocks;
  constexpr size_t kScales = kHalves ? 2 * kPanel : kPanel;  // scale floats per panel and block
  __m512 acc[MR][NR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const int8_t* xq[MR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) xq[i] = x.q.data() + (row + i) * in;
  const uint8_t* wq[NR];
  const float* ws[NR];
  const float* wm[NR];
  #pragma GCC unroll 4
  for (int j = 0; j < NR; ++j) {
    wq[j] = w.quants.get() + (panel + j) * blocks * w.block_bytes;
    ws[j] = w.scales.data() + (panel + j) * blocks * kScales;
    if constexpr (kMins) wm[j] = w.mins.data() + (panel + j) * blocks * kPanel;
  }
  for (size_t b = 0; b < blocks; ++b) {
    // Q6_K: two passes of 4 groups, each half with its own scale; otherwise one pass of 8.
    constexpr int kPasses = kHalves ? 2 : 1, kGroups = 8 / kPasses;
    #pragma GCC unroll 2
    for (int pass = 0; pass < kPasses; ++pass) {
      __m512i isum[MR][NR];
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512i start = _mm512_set1_epi32(Start(x, row + i, blocks, b, w.offset, kHalves, pass));
        #pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) isum[i][j] = start;
      }
      if constexpr (kFourBit) {
        const __m512i low = _mm512_set1_epi8(0x0F);
        #pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) {  // groups 2h (low nibbles) and 2h + 1 (high nibbles)
          __m512i lo[NR], hi[NR];
          #pragma GCC unroll 4
          for (int j = 0; j < NR; ++j) {
            const __m512i v = _mm512_load_si512(wq[j] + b * 256 + 64 * h);
            lo[j] = _mm512_and_si512(v, low);
            hi[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
          }
          #pragma GCC unroll 8
          for (int i = 0; i < MR; ++i) {
            const __m512i x0 = _mm512_set1_epi32(Group(xq[i], b, 2 * h));
            const __m512i x1 = _mm512_set1_epi32(Group(xq[i], b, 2 * h + 1));
            #pragma GCC unroll 4
            for (int j = 0; j < NR; ++j) {
              isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], lo[j], x0);
              isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], hi[j], x1);
            }
          }
        }
      } else {
        #pragma GCC unroll 8
        for (int g = pass * kGroups; g < (pass + 1) * kGroups; ++g) {
          __m512i wv[NR];
          #pragma GCC unroll 4
          for (int j = 0; j < NR; ++j) wv[j] = _mm512_load_si512(wq[j] + b * 512 + 64 * g);
          #pragma GCC unroll 8
          for (int i = 0; i < MR; ++i) {
            const __m512i xv = _mm512_set1_epi32(Group(xq[i], b, g));
            #pragma GCC unroll 4
            for (int j = 0; j < NR; ++j) isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], wv[j], xv);
          }
        }
      }
      __m512 scale[NR];
      #pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) scale[j] = _mm512_loadu_ps(ws[j] + b * kScales + pass * kPanel);
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512 dx = _mm512_set1_ps(x.d[(row + i) * blocks + b]);
        #pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) {
          acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][j]), _mm512_mul_ps(scale[j], dx), acc[i][j]);
        }
      }
    }
    if constexpr (kMins) {  // + m_w * s_x (Q8_1's float16 d_x * sum(q_x))
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512 sx = _mm512_set1_ps(x.s[(row + i) * blocks + b]);
        #pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(_mm512_loadu_ps(wm[j] + b * kPanel), sx, acc[i][j]);
      }
    }
  }
  #pragma GCC unroll 4
  for (int j = 0; j < NR; ++j) {
    const size_t col = (panel + j) * kPanel;
    const size_t valid = std::min(kPanel, out - col);
    const __mmask16 mask = valid == kPanel ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + col) : _mm512_setzero_ps();
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(y + (row + i) * ldy + col, mask, _mm512_add_ps(acc[i][j], b));
  }
}

// isum + the 4-byte dot products of unsigned u and signed x in each int32 lane, as vpdpbusd (without its
// 32-bit wrap, which no sum here reaches): vpmaddubsw's 16-bit pair sums cannot saturate for u < 64
// (2 * 63 * 127 < 2^15). Q8_0's u = q + 128 can: `kSigned` multiplies |q| by x with q's sign instead
// (llama.cpp's AVX2 trick; 2 * 128 * 127 < 2^15), whose sum is the unsigned one's plus 128 sum(x), so
// it starts from 0 rather than -128 sum(x).
template <bool kSigned>
QUARRY_AVX2_TARGET inline __m256i Dot4(__m256i isum, __m256i u, __m256i x) {
  __m256i pairs;
  if constexpr (kSigned) {
    const __m256i q = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
    pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
  } else {
    pairs = _mm256_maddubs_epi16(u, x);
  }
  return _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// TileVnni's arithmetic on AVX2, one panel at a time as two vectors of 8 output rows. `kSigned`: Q8_0.
template <int MR, bool kFourBit, bool kMins, bool kHalves, bool kSigned>
QUARRY_AVX2_TARGET void TileAvx2(const Int8Rows& x, size_t in, size_t row, const Int8Panels& w, size_t panel,
                                 const float* bias, float* y, size_t ldy, size_t out) {
  const size_t blocks = w.blocks;
  constexpr size_t kScales = kHalves ? 2 * kPanel : kPanel;
  __m256 acc[MR][2];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const int8_t* xq[MR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) xq[i] = x.q.data() + (row + i) * in;
  const uint8_t* wq = w.quants.get() + panel * blocks * w.block_bytes;
  const float* ws = w.scales.data() + panel * blocks * kScales;
  const float* wm = kMins ? w.mins.data() + panel * blocks * kPanel : nullptr;
  for (size_t b = 0; b < blocks; ++b) {
    constexpr int kPasses = kHalves ? 2 : 1, kGroups = 8 / kPasses;
    #pragma GCC unroll 2
    for (int pass = 0; pass < kPasses; ++pass) {
      __m256i isum[MR][2];
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const int32_t start = kSigned ? 0 : Start(x, row + i, blocks, b, w.offset, kHalves, pass);
        isum[i][0] = isum[i][1] = _mm256_set1_epi32(start);
      }
      if constexpr (kFourBit) {
        const __m256i low = _mm256_set1_epi8(0x0F);
        #pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) {
          __m256i lo[2], hi[2];
          #pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(wq + b * 256 + 64 * h + 32 * half));
            lo[half] = _mm256_and_si256(v, low);
            hi[half] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          }
          #pragma GCC unroll 8
          for (int i = 0; i < MR; ++i) {
            const __m256i x0 = _mm256_set1_epi32(Group(xq[i], b, 2 * h));
            const __m256i x1 = _mm256_set1_epi32(Group(xq[i], b, 2 * h + 1));
            #pragma GCC unroll 2
            for (int half = 0; half < 2; ++half) {
              isum[i][half] = Dot4<false>(isum[i][half], lo[half], x0);
              isum[i][half] = Dot4<false>(isum[i][half], hi[half], x1);
            }
          }
        }
      } else {
        #pragma GCC unroll 8
        for (int g = pass * kGroups; g < (pass + 1) * kGroups; ++g) {
          __m256i wv[2];
          #pragma GCC unroll 2
          for (int half = 0; half < 2; ++half) {
            wv[half] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wq + b * 512 + 64 * g + 32 * half));
          }
          #pragma GCC unroll 8
          for (int i = 0; i < MR; ++i) {
            const __m256i xv = _mm256_set1_epi32(Group(xq[i], b, g));
            #pragma GCC unroll 2
            for (int half = 0; half < 2; ++half) isum[i][half] = Dot4<kSigned>(isum[i][half], wv[half], xv);
          }
        }
      }
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 dx = _mm256_set1_ps(x.d[(row + i) * blocks + b]);
        #pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          const __m256 scale = _mm256_loadu_ps(ws + b * kScales + pass * kPanel + 8 * half);
          acc[i][half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][half]), _mm256_mul_ps(scale, dx), acc[i][half]);
        }
      }
    }
    if constexpr (kMins) {
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 sx = _mm256_set1_ps(x.s[(row + i) * blocks + b]);
        #pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
          acc[i][half] = _mm256_fmadd_ps(_mm256_loadu_ps(wm + b * kPanel + 8 * half), sx, acc[i][half]);
        }
      }
    }
  }
  #pragma GCC unroll 2
  for (int half = 0; half < 2; ++half) {
    const size_t col = panel * kPanel + 8 * half;
    if (col >= out) break;
    const size_t valid = std::min<size_t>(8, out - col);
    alignas(32) int32_t lanes[8];
    for (int l = 0; l < 8; ++l) lanes[l] = size_t(l) < valid ? -1 : 0;
    const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    const __m256 bv = bias ? _mm256_maskload_ps(bias + col, mask) : _mm256_setzero_ps();
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) _mm256_maskstore_ps(y + (row + i) * ldy + col, mask, _mm256_add_ps(acc[i][half], bv));
  }
}

using TileFn = void (*)(const Int8Rows&, size_t, size_t, const Int8Panels&, size_t, const float*, float*, size_t, size_t);
constexpr int kMaxRows = 4;

// The tile for `mr` rows (<= kMaxRows) by `panels` panels (1 or 2 on AVX512-VNNI, 1 on AVX2).
template <bool kFourBit, bool kMins, bool kHalves, bool kSigned>
TileFn TileOf(Int8Kernel kernel, size_t mr, size_t panels) {
  if (kernel == Int8Kernel::kAvx2) {
    static constexpr TileFn kTiles[kMaxRows] = {
        TileAvx2<1, kFourBit, kMins, kHalves, kSigned>, TileAvx2<2, kFourBit, kMins, kHalves, kSigned>,
        TileAvx2<3, kFourBit, kMins, kHalves, kSigned>, TileAvx2<4, kFourBit, kMins, kHalves, kSigned>};
    return kTiles[mr - 1];
  }
  static constexpr TileFn kTiles[kMaxRows][2] = {
      {TileVnni<1, 1, kFourBit, kMins, kHalves>, TileVnni<1, 2, kFourBit, kMins, kHalves>},
      {TileVnni<2, 1, kFourBit, kMins, kHalves>, TileVnni<2, 2, kFourBit, kMins, kHalves>},
      {TileVnni<3, 1, kFourBit, kMins, kHalves>, TileVnni<3, 2, kFourBit, kMins, kHalves>},
      {TileVnni<4, 1, kFourBit, kMins, kHalves>, TileVnni<4, 2, kFourBit, kMins, kHalves>}};
  return kTiles[mr - 1][panels - 1];
}
TileFn TileOf(Int8Kernel kernel, const Int8Panels& w, size_t mr, size_t panels) {
  const bool mins = !w.mins.empty();
  if (w.four_bit) {
    return mins ? TileOf<true, true, false, false>(kernel, mr, panels)
                : TileOf<true, false, false, false>(kernel, mr, panels);
  }
  if (w.half_scales) return TileOf<false, false, true, false>(kernel, mr, panels);
  if (mins) return TileOf<false, true, false, false>(kernel, mr, panels);
  if (w.offset == 128) return TileOf<false, false, false, true>(kernel, mr, panels);
  return TileOf<false, false, false, false>(kernel, mr, panels);
}

// The float16 bits of x rounded to nearest even (as GGML_FP32_TO_FP16 with F16C).
QUARRY_AVX2_TARGET uint16_t ToHalf(float x) { return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT); }

QUARRY_AVX2_TARGET int32_t SumLanes(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// One row's blocks, as llama.cpp's quantize_row_q8_0 computes them on x86: the scale amax / 127 stored
// as float16; the quants x * (127 / amax) in float32, rounded to nearest even (MXCSR's default). For
// both kernels (AVX2 suffices, and the quantization is a small part of a product's time).
QUARRY_AVX2_TARGET void QuantizeRow(const float* x, size_t blocks, int8_t* q, float* d, int32_t* half_sums, float* s) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (size_t b = 0; b < blocks; ++b, x += kBlock, q += kBlock) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int c = 0; c < 4; ++c) v[c] = _mm256_loadu_ps(x + 8 * c), amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[c]));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float top = _mm_cvtss_f32(m);
    const __m256 id = _mm256_set1_ps(top != 0.0f ? 127.0f / top : 0.0f);
    __m256i i[4];
    for (int c = 0; c < 4; ++c) i[c] = _mm256_cvtps_epi32(_mm256_mul_ps(v[c], id));
    // Packing interleaves the 128-bit lanes; the permutation puts the 32 bytes back in order.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    d[b] = _cvtsh_ss(ToHalf(top / 127.0f));
    half_sums[2 * b] = SumLanes(_mm256_add_epi32(i[0], i[1]));
    half_sums[2 * b + 1] = SumLanes(_mm256_add_epi32(i[2], i[3]));
    const int32_t sum = half_sums[2 * b] + half_sums[2 * b + 1];
    s[b] = _cvtsh_ss(ToHalf(top / 127.0f * static_cast<float>(sum)));  // quantize_row_q8_1's s
  }
}

}  // namespace

Int8Kernel BestInt8Kernel() {
  // (F16C, for the float16 scales, comes with every AVX2 CPU; clang's builtin cannot ask for it.)
  static const Int8Kernel best = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")
                                     ? Int8Kernel::kAvx512Vnni
                                 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? Int8Kernel::kAvx2
                                                                                                   : Int8Kernel::kNone;
  return best;
}

bool HasInt8Dot() { return BestInt8Kernel() != Int8Kernel::kNone; }

Int8Rows QuantizeRowsQ8(const float* x, size_t n, size_t in) {
  const size_t blocks = in / kBlock;
  Int8Rows r;
  r.q.resize(n * in);
  r.d.resize(n * blocks);
  r.half_sums.resize(n * blocks * 2);
  r.s.resize(n * blocks);
  tbb::parallel_for(size_t{0}, n, [&](size_t row) {
    const size_t at = row * blocks;
    QuantizeRow(x + row * in, blocks, r.q.data() + row * in, r.d.data() + at, r.half_sums.data() + 2 * at,
                r.s.data() + at);
  });
  return r;
}

std::unique_ptr<Int8Panels> PackInt8Panels(uint32_t ggml_type, const uint8_t* src, size_t row_bytes, size_t rows,
                                           size_t cols) {
  QuantBlock format;
  if (!QuantBlockOf(ggml_type, &format) || cols % format.elements != 0) return nullptr;
  auto p = std::make_unique<Int8Panels>();
  p->four_bit = format.four_bit;
  p->half_scales = format.half_scales;
  p->offset = format.offset;
  p->rows = rows, p->cols = cols;
  p->panels = (rows + kPanel - 1) / kPanel;
  p->blocks = cols / kBlock;
  p->block_bytes = format.four_bit ? 256 : 512;
  const size_t quant_bytes = p->panels * p->blocks * p->block_bytes;
  p->quants.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (quant_bytes + 63) / 64 * 64)));
  if (!p->quants) return nullptr;
  std::memset(p->quants.get(), 0, quant_bytes);  // padding rows: quants 0, scale 0
  const size_t scales = format.half_scales ? 2 : 1;  // per block and row
  p->scales.assign(p->panels * p->blocks * kPanel * scales, 0);
  if (format.has_min) p->mins.assign(p->panels * p->blocks * kPanel, 0);
  tbb::parallel_for(size_t{0}, p->panels, [&](size_t panel) {
    uint8_t u[kBlock];
    float d[2], m;
    for (size_t r = panel * kPanel; r < std::min(rows, (panel + 1) * kPanel); ++r) {
      const size_t lane = r % kPanel;
      for (size_t b = 0; b < p->blocks; ++b) {
        UnpackQuantBlock(format, src + r * row_bytes, b, u, d, &m);
        const size_t at = panel * p->blocks + b;
        for (size_t h = 0; h < scales; ++h) p->scales[(at * scales + h) * kPanel + lane] = d[h];
        if (format.has_min) p->mins[at * kPanel + lane] = m;
        uint8_t* dst = p->quants.get() + at * p->block_bytes;
        for (size_t k = 0; k < kBlock; ++k) {
          const size_t group = k / 4, byte = k % 4;
          if (format.four_bit) {  // groups 2h and 2h + 1 share bytes: low and high nibbles
            dst[(group / 2) * 64 + lane * 4 + byte] |= static_cast<uint8_t>(group % 2 == 0 ? u[k] : u[k] << 4);
          } else {
            dst[group * 64 + lane * 4 + byte] = u[k];
          }
        }
      }
    }
  });
  return p;
}

void LinearInt8(const float* x, size_t n, size_t in, const Int8Panels& w, size_t out, const float* bias, float* y,
                Int8Kernel kernel) {
  assert(in == w.cols && out == w.rows && kernel != Int8Kernel::kNone);
  const Int8Rows xq = QuantizeRowsQ8(x, n, in);
  // Tasks of up to 64 activation rows by 8 panels (128 output rows); inside a task, each panel or pair
  // of panels (in L1 or L2) meets every group of 4 rows.
  constexpr size_t kTaskRows = 64, kTaskPanels = 8;
  const size_t step = kernel == Int8Kernel::kAvx2 ? 1 : 2;  // panels per tile
  TileFn tiles[kMaxRows][2];
  for (size_t mr = 1; mr <= kMaxRows; ++mr) {
    for (size_t np = 1; np <= step; ++np) tiles[mr - 1][np - 1] = TileOf(kernel, w, mr, np);
  }
  const size_t row_tasks = (n + kTaskRows - 1) / kTaskRows, panel_tasks = (w.panels + kTaskPanels - 1) / kTaskPanels;
  tbb::parallel_for(size_t{0}, row_tasks * panel_tasks, [&](size_t task) {
    const size_t r0 = task % row_tasks * kTaskRows, p0 = task / row_tasks * kTaskPanels;
    const size_t r1 = std::min(n, r0 + kTaskRows), p1 = std::min(w.panels, p0 + kTaskPanels);
    for (size_t p = p0; p < p1; p += step) {
      const size_t np = std::min(step, p1 - p);
      for (size_t r = r0; r < r1; r += kMaxRows) {
        const size_t nr = std::min<size_t>(kMaxRows, r1 - r);
        tiles[nr - 1][np - 1](xq, in, r, w, p, bias, y, out, out);
      }
    }
  });
}

}  // namespace quarry::model
