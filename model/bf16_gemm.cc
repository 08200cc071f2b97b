// Y = X W^T with W in bfloat16 and X rounded to bfloat16 (model/kernels.h), on AVX512-BF16 dot
// products where the CPU has them (vdpbf16ps:
// 32 bf16 products a cycle into 16 float32 sums). The layout is the checkpoint's own: each output
// feature's weights are a contiguous row, so tiles of 4 activation rows by 4 weight rows walk k
// together, each pair of 32-element loads feeding one instruction per (row, feature), and the 16
// lanes of every accumulator are summed once at the end. W is read in place: nothing is packed.
#include <immintrin.h>
// GCC 12's AVX-512 shuffle intrinsics pass an undefined vector as their unused mask source, which
// -Wuninitialized reports inside the intrinsic headers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/kernels.h"
#include "model/safetensors.h"

namespace quarry::model {

namespace {

#define QUARRY_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

// The 16 lane sums of a 4 x 4 tile of accumulators at once, by a tree of shuffles and adds (15 vector
// adds instead of 16 horizontal reductions, which cost as much as the tile's k loop when k ~ 1000):
// sums[4 j + i] = sum of acc[i][j]'s lanes. Each level halves the vectors and doubles what one lane
// holds: 256-bit halves, then 128-bit quarters, then pairs and single floats within each quarter.
QUARRY_BF16_TARGET inline void SumLanes4x4(const __m512 (&acc)[4][4], float* sums) {
  const __m512* a = &acc[0][0];
  __m512 s[8], u[4];
  for (int k = 0; k < 8; ++k) {  // s[k] quarters: [a2k lo+hi halves (2 quarters), a2k+1 likewise]
    s[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  for (int k = 0; k < 4; ++k) {  // u[k] quarter c: 4 partial sums of a[4k + c]
    u[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  __m512 v[2];
  for (int k = 0; k < 2; ++k) {  // v[k] quarter c: pair sums of a[8k + c], then of a[8k + 4 + c]
    v[k] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // Lane 4c + m: the sum of a[4m + c], i.e. of acc[m][c]: sums[4 j + i] holds acc[i][j].
  _mm512_store_ps(sums, _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_ps(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1))));
}

// y[i * ldy + j] = bias[j] + sum_p x[i * ld + p] w[j * ld + p], for i < MR, j < NR, p < k.
template <int MR, int NR>
QUARRY_BF16_TARGET void DotTile(const uint16_t* x, const uint16_t* w, size_t ld, size_t k, const float* bias,
                                float* y, size_t ldy) {
  __m512 acc[MR][NR];
  #pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  // One loop with the mask computed per step (a masked load costs what a plain one does). The small
  // loops are unrolled explicitly and the accumulators' address never escapes (see below): otherwise
  // GCC keeps them in memory and stores all 16 on every step, which halves the rate.
  for (size_t p = 0; p < k; p += 32) {
    const __mmask32 mask = k - p >= 32 ? ~__mmask32{0} : (__mmask32{1} << (k - p)) - 1;
    __m512bh a[MR], b[NR];
    #pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) a[i] = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + i * ld + p);
    #pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) b[j] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + j * ld + p);
    #pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      #pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], a[i], b[j]);
    }
  }
  alignas(64) float sums[16];
  if constexpr (MR == 4 && NR == 4) {
    // A copy: passing acc's own address kept it in memory through the loop above, as rolled loops did.
    __m512 tile[4][4];
    #pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) tile[i][j] = acc[i][j];
    }
    SumLanes4x4(tile, sums);
  } else {
    #pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      #pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) {
        alignas(64) float lanes[16];  // (GCC 12's _mm512_reduce_add_ps warns spuriously)
        _mm512_store_ps(lanes, acc[i][j]);
        float sum = 0;
        for (float lane : lanes) sum += lane;
        sums[4 * j + i] = sum;
      }
    }
  }
  #pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = sums[4 * j + i] + (bias ? bias[j] : 0.0f);
  }
}

using TileFn = void (*)(const uint16_t*, const uint16_t*, size_t, size_t, const float*, float*, size_t);
template <int MR>
constexpr TileFn kTiles[4] = {DotTile<MR, 1>, DotTile<MR, 2>, DotTile<MR, 3>, DotTile<MR, 4>};
constexpr const TileFn* kTileTable[4] = {kTiles<1>, kTiles<2>, kTiles<3>, kTiles<4>};

// x rounded to bfloat16, to nearest even (the instruction treats float32 denormals as zero).
QUARRY_BF16_TARGET void RoundToBf16(const float* x, size_t count, uint16_t* out) {
  size_t i = 0;
  for (; i + 32 <= count; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, (__m512i)v);
  }
  for (; i < count; ++i) out[i] = F32ToBf16(x[i]);
}

}  // namespace

bool HasBf16Dot() {
  static const bool supported = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
  return supported;
}

void LinearBf16Dot(const float* x, size_t n, size_t in, const uint16_t* w, size_t out, const float* bias, float* y,
                   Bf16Kernel kernel) {
  if (kernel == Bf16Kernel::kWidened) {
    ScratchFloats rounded(n * in, false);
    tbb::parallel_for(size_t{0}, n, [&](size_t r) {
      for (size_t p = r * in; p < (r + 1) * in; ++p) rounded[p] = Bf16ToF32(F32ToBf16(x[p]));
    });
    LinearBf16(rounded.data(), n, in, w, out, bias, y);
    return;
  }
  std::vector<uint16_t> xb(n * in);
  tbb::parallel_for(size_t{0}, n, [&](size_t r) { RoundToBf16(x + r * in, in, xb.data() + r * in); });
  // Tasks of up to 64 weight rows by enough activation rows to stay within ~512 KiB, so both operands
  // of a task sit in L2 while its tiles walk them; inside a task, 4 weight rows (in L1) meet every
  // group of 4 activation rows.
  const size_t row_block = std::clamp<size_t>((size_t{512} << 10) / (2 * std::max<size_t>(in, 1)) / 4 * 4, 4, 64);
  tbb::parallel_for(tbb::blocked_range2d<size_t>(0, n, row_block, 0, out, 64),
                    [&](const tbb::blocked_range2d<size_t>& r) {
                      for (size_t j = r.cols().begin(); j < r.cols().end(); j += 4) {
                        const size_t nr = std::min<size_t>(4, r.cols().end() - j);
                        for (size_t i = r.rows().begin(); i < r.rows().end(); i += 4) {
                          const size_t mr = std::min<size_t>(4, r.rows().end() - i);
                          kTileTable[mr - 1][nr - 1](xb.data() + i * in, w + j * in, in, in, bias ? bias + j : nullptr,
                                                     y + i * out + j, out);
                        }
                      }
                    });
}

}  // namespace quarry::model
