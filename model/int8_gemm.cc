// LinearInt8 (model/int8_gemm.h). A tile of MR activation rows by NR weight panels (16 output rows each)
// walks k one 32-element block at a time: per block, each (row, panel) pair sums q_x * u_w exactly in
// int32 lanes (one lane per output row: 8 vpdpbusd on 4-element groups, the row's 4 activation bytes
// broadcast), starting from -offset * sum(q_x) so that the weights' offset cancels; then the block's
// sums are widened and added to float32 accumulators times scale_w * d_x (plus min_w * s_x for the
// types with mins). That is llama.cpp's arithmetic per block (float(isum) * (d_w * d_x) + m_w * s_x,
// summed in float), in another order.
#include "model/int8_gemm.h"

#include <immintrin.h>
// GCC 12's AVX-512 reduction intrinsics pass an undefined vector as their unused mask source, which
// -Wmaybe-uninitialized reports inside the intrinsic headers (as in bf16_gemm.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>

#include "model/gguf.h"
#include "model/safetensors.h"

namespace quarry::model {

namespace {

#define QUARRY_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,f16c")))

constexpr size_t kBlock = 32;  // elements per quantization block (the weights' and X's)
constexpr size_t kPanel = 16;  // output rows per panel: one vector of int32 sums

// The float16 bits of x rounded to nearest even (as GGML_FP32_TO_FP16 with F16C).
QUARRY_VNNI_TARGET uint16_t ToHalf(float x) { return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT); }

// y[i * ldy + 16 p + l] (+ bias) for rows i < MR of X (from `row`) and panels p < NR (from `panel`),
// columns below `out` only.
template <int MR, int NR, bool kFourBit, bool kMins>
QUARRY_VNNI_TARGET void Tile(const Int8Rows& x, size_t in, size_t row, const Int8Panels& w, size_t panel,
                             const float* bias, float* y, size_t ldy, size_t out) {
  const size_t blocks = w.blocks;
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
    ws[j] = w.scales.data() + (panel + j) * blocks * kPanel;
    if constexpr (kMins) wm[j] = w.mins.data() + (panel + j) * blocks * kPanel;
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m512i isum[MR][NR];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i start = _mm512_set1_epi32(-w.offset * x.sum[(row + i) * blocks + b]);
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
          int32_t g0, g1;
          std::memcpy(&g0, xq[i] + b * kBlock + 8 * h, 4);
          std::memcpy(&g1, xq[i] + b * kBlock + 8 * h + 4, 4);
          const __m512i x0 = _mm512_set1_epi32(g0), x1 = _mm512_set1_epi32(g1);
          #pragma GCC unroll 4
          for (int j = 0; j < NR; ++j) {
            isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], lo[j], x0);
            isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], hi[j], x1);
          }
        }
      }
    } else {
      #pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        __m512i wv[NR];
        #pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) wv[j] = _mm512_load_si512(wq[j] + b * 512 + 64 * g);
        #pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
          int32_t group;
          std::memcpy(&group, xq[i] + b * kBlock + 4 * g, 4);
          const __m512i xv = _mm512_set1_epi32(group);
          #pragma GCC unroll 4
          for (int j = 0; j < NR; ++j) isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], wv[j], xv);
        }
      }
    }
    __m512 scale[NR], min[NR];
    #pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      scale[j] = _mm512_loadu_ps(ws[j] + b * kPanel);
      if constexpr (kMins) min[j] = _mm512_loadu_ps(wm[j] + b * kPanel);
    }
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 dx = _mm512_set1_ps(x.d[(row + i) * blocks + b]);
      #pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) {
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][j]), _mm512_mul_ps(scale[j], dx), acc[i][j]);
      }
      if constexpr (kMins) {  // + m_w * s_x (Q8_1's float16 d_x * sum(q_x))
        const __m512 sx = _mm512_set1_ps(x.s[(row + i) * blocks + b]);
        #pragma GCC unroll 4
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(min[j], sx, acc[i][j]);
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

using TileFn = void (*)(const Int8Rows&, size_t, size_t, const Int8Panels&, size_t, const float*, float*, size_t, size_t);
constexpr int kMaxRows = 4, kMaxPanels = 2;
template <int MR, bool kFourBit, bool kMins>
constexpr TileFn kTiles[kMaxPanels] = {Tile<MR, 1, kFourBit, kMins>, Tile<MR, 2, kFourBit, kMins>};
template <bool kFourBit, bool kMins>
constexpr const TileFn* kTileTable[kMaxRows] = {kTiles<1, kFourBit, kMins>, kTiles<2, kFourBit, kMins>,
                                                kTiles<3, kFourBit, kMins>, kTiles<4, kFourBit, kMins>};

// The ggml types LinearInt8 takes: bytes per ggml block (32 elements, or a 256-element super-block of 8
// sub-blocks of 32 for the K-quants), the quants' offset, whether they fit 4 bits, whether blocks have
// a min.
struct BlockFormat {
  size_t elements, bytes;
  int offset;
  bool four_bit, has_min;
};
bool FormatOf(uint32_t type, BlockFormat* f) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kQ8_0: *f = {32, 34, 128, false, false}; return true;
    case GgmlType::kQ4_0: *f = {32, 18, 8, true, false}; return true;
    case GgmlType::kQ4_1: *f = {32, 20, 0, true, true}; return true;
    case GgmlType::kQ5_0: *f = {32, 22, 16, false, false}; return true;
    case GgmlType::kQ5_1: *f = {32, 24, 0, false, true}; return true;
    case GgmlType::kQ4_K: *f = {256, 144, 0, true, true}; return true;
    case GgmlType::kQ5_K: *f = {256, 176, 0, false, true}; return true;
    default: return false;
  }
}

// The 32-element block `b` of a row of `type` (ggml's layouts, as gguf.cc's DequantizeRow reads them)
// as unsigned quants u[32], a scale and a min: its values are scale * (u - offset) + min.
void UnpackBlock(uint32_t type, const uint8_t* row, size_t b, uint8_t* u, float* scale, float* min) {
  const GgmlType t = static_cast<GgmlType>(type);
  BlockFormat f;
  FormatOf(type, &f);
  auto half = [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return F16ToF32(h);
  };
  if (t == GgmlType::kQ4_K || t == GgmlType::kQ5_K) {
    // Super-block: d, dmin (float16), 12 bytes of 6-bit sub-block scales and mins, (Q5_K: 32 bytes of
    // fifth bits), 128 bytes of nibbles: 64-element chunk c holds sub-blocks 2c (low nibbles) and 2c + 1
    // (high nibbles) of the same 32 bytes. Values d sc q - dmin m (both products exact in float32).
    const uint8_t* x = row + b / 8 * f.bytes;
    const int sub = static_cast<int>(b % 8), chunk = sub / 2;
    uint8_t sc, mn;
    ScaleMinK4(sub, x + 4, &sc, &mn);
    *scale = half(x) * sc, *min = -(half(x + 2) * mn);
    const bool five = t == GgmlType::kQ5_K;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 16 + (five ? 32 : 0) + 32 * chunk;
    const int shift = sub % 2 == 0 ? 0 : 4;
    for (size_t k = 0; k < kBlock; ++k) {
      const int high = five && (qh[k] >> sub & 1) ? 16 : 0;
      u[k] = static_cast<uint8_t>(((ql[k] >> shift) & 0x0F) + high);
    }
    return;
  }
  const uint8_t* x = row + b * f.bytes;
  *scale = half(x);
  *min = 0;
  if (t == GgmlType::kQ8_0) {
    for (size_t k = 0; k < kBlock; ++k) u[k] = static_cast<uint8_t>(static_cast<int8_t>(x[2 + k]) + 128);
    return;
  }
  size_t at = 2;
  if (t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1) *min = half(x + at), at += 2;
  uint32_t qh = 0;  // Q5_0 and Q5_1: each element's fifth bit
  if (t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1) std::memcpy(&qh, x + at, 4), at += 4;
  const uint8_t* qs = x + at;
  for (size_t k = 0; k < kBlock / 2; ++k) {  // element k: qs[k]'s low nibble; element k + 16: its high one
    u[k] = static_cast<uint8_t>((qs[k] & 0x0F) | (((qh >> k) << 4) & 0x10));
    u[k + 16] = static_cast<uint8_t>((qs[k] >> 4) | ((qh >> (k + 12)) & 0x10));
  }
}

}  // namespace

bool HasInt8Dot() {
  // (F16C, for the activations' float16 scales, comes with every AVX-512 CPU; clang's builtin cannot
  // ask for it.)
  static const bool supported = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  return supported;
}

namespace {

// One row's blocks, as llama.cpp's quantize_row_q8_0 computes them on x86: the scale amax / 127 stored
// as float16; the quants x * (127 / amax) in float32, rounded to nearest even (MXCSR's default).
QUARRY_VNNI_TARGET void QuantizeRow(const float* x, size_t blocks, int8_t* q, float* d, int32_t* sum, float* s) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (size_t b = 0; b < blocks; ++b, x += kBlock, q += kBlock) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(q1));
    d[b] = _cvtsh_ss(ToHalf(amax / 127.0f));
    sum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    s[b] = _cvtsh_ss(ToHalf(amax / 127.0f * static_cast<float>(sum[b])));  // quantize_row_q8_1's s
  }
}

}  // namespace

Int8Rows QuantizeRowsQ8(const float* x, size_t n, size_t in) {
  const size_t blocks = in / kBlock;
  Int8Rows r;
  r.q.resize(n * in);
  r.d.resize(n * blocks);
  r.sum.resize(n * blocks);
  r.s.resize(n * blocks);
  tbb::parallel_for(size_t{0}, n, [&](size_t row) {
    const size_t at = row * blocks;
    QuantizeRow(x + row * in, blocks, r.q.data() + row * in, r.d.data() + at, r.sum.data() + at, r.s.data() + at);
  });
  return r;
}

std::unique_ptr<Int8Panels> PackInt8Panels(uint32_t ggml_type, const uint8_t* src, size_t row_bytes, size_t rows,
                                           size_t cols) {
  BlockFormat format;
  if (!FormatOf(ggml_type, &format) || cols % format.elements != 0) return nullptr;
  auto p = std::make_unique<Int8Panels>();
  p->four_bit = format.four_bit;
  p->offset = format.offset;
  p->rows = rows, p->cols = cols;
  p->panels = (rows + kPanel - 1) / kPanel;
  p->blocks = cols / kBlock;
  p->block_bytes = format.four_bit ? 256 : 512;
  const size_t quant_bytes = p->panels * p->blocks * p->block_bytes;
  p->quants.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (quant_bytes + 63) / 64 * 64)));
  if (!p->quants) return nullptr;
  std::memset(p->quants.get(), 0, quant_bytes);  // padding rows: quants 0, scale 0
  p->scales.assign(p->panels * p->blocks * kPanel, 0);
  if (format.has_min) p->mins.assign(p->scales.size(), 0);
  tbb::parallel_for(size_t{0}, p->panels, [&](size_t panel) {
    uint8_t u[kBlock];
    float d, m;
    for (size_t r = panel * kPanel; r < std::min(rows, (panel + 1) * kPanel); ++r) {
      const size_t lane = r % kPanel;
      for (size_t b = 0; b < p->blocks; ++b) {
        UnpackBlock(ggml_type, src + r * row_bytes, b, u, &d, &m);
        const size_t at = (panel * p->blocks + b) * kPanel + lane;
        p->scales[at] = d;
        if (format.has_min) p->mins[at] = m;
        uint8_t* dst = p->quants.get() + (panel * p->blocks + b) * p->block_bytes;
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

void LinearInt8(const float* x, size_t n, size_t in, const Int8Panels& w, size_t out, const float* bias, float* y) {
  const Int8Rows xq = QuantizeRowsQ8(x, n, in);
  // Tasks of up to 64 activation rows by 8 panels (128 output rows); inside a task, each pair of panels
  // (in L1 or L2) meets every group of 4 rows.
  constexpr size_t kTaskRows = 64, kTaskPanels = 8;
  const size_t row_tasks = (n + kTaskRows - 1) / kTaskRows, panel_tasks = (w.panels + kTaskPanels - 1) / kTaskPanels;
  const bool mins = !w.mins.empty();
  const TileFn* const* table = w.four_bit ? (mins ? kTileTable<true, true> : kTileTable<true, false>)
                                          : (mins ? kTileTable<false, true> : kTileTable<false, false>);
  tbb::parallel_for(size_t{0}, row_tasks * panel_tasks, [&](size_t task) {
    const size_t r0 = task % row_tasks * kTaskRows, p0 = task / row_tasks * kTaskPanels;
    const size_t r1 = std::min(n, r0 + kTaskRows), p1 = std::min(w.panels, p0 + kTaskPanels);
    for (size_t p = p0; p < p1; p += kMaxPanels) {
      const size_t np = std::min<size_t>(kMaxPanels, p1 - p);
      for (size_t r = r0; r < r1; r += kMaxRows) {
        const size_t nr = std::min<size_t>(kMaxRows, r1 - r);
        table[nr - 1][np - 1](xq, in, r, w, p, bias, y, out, out);
      }
    }
  });
}

}  // namespace quarry::model
