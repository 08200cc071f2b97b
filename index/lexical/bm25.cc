#include "index/lexical/bm25.h"

#include <bit>
#include <cmath>

namespace quarry {

namespace {

// SmallFloat.longToInt4 / int4ToLong.
uint32_t LongToInt4(uint64_t i) {
  const int num_bits = 64 - std::countl_zero(i);
  if (num_bits < 4) return static_cast<uint32_t>(i);  // subnormal
  const int shift = num_bits - 4;
  uint32_t encoded = static_cast<uint32_t>(i >> shift) & 0x07;  // drop the implicit leading bit
  encoded |= static_cast<uint32_t>(shift + 1) << 3;
  return encoded;
}

uint64_t Int4ToLong(uint32_t i) {
  const uint64_t bits = i & 0x07;
  const int shift = static_cast<int>(i >> 3) - 1;
  return shift == -1 ? bits : (bits | 0x08) << shift;
}

const uint32_t kMaxInt4 = LongToInt4(INT32_MAX);   // 231
const uint32_t kNumFreeValues = 255 - kMaxInt4;    // 24

}  // namespace

uint8_t IntToByte4(uint32_t i) {
  if (i > INT32_MAX) i = INT32_MAX;
  if (i < kNumFreeValues) return static_cast<uint8_t>(i);
  return static_cast<uint8_t>(kNumFreeValues + LongToInt4(i - kNumFreeValues));
}

uint32_t Byte4ToInt(uint8_t b) {
  if (b < kNumFreeValues) return b;
  return static_cast<uint32_t>(kNumFreeValues + Int4ToLong(b - kNumFreeValues));
}

float Bm25Idf(uint64_t doc_count, uint64_t doc_freq) {
  const double n = static_cast<double>(doc_count), df = static_cast<double>(doc_freq);
  return static_cast<float>(std::log(1.0 + (n - df + 0.5) / (df + 0.5)));
}

Bm25Norms::Bm25Norms(Bm25Params p, float avgdl) : avgdl_(avgdl) {
  for (int i = 0; i < 256; ++i) {
    const float length = static_cast<float>(Byte4ToInt(static_cast<uint8_t>(i)));
    inverse_[i] = 1.0f / (p.k1 * ((1.0f - p.b) + p.b * length / avgdl));
  }
}

}  // namespace quarry
