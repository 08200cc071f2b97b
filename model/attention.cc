#include "model/attention.h"

#include "model/kernels.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace quarry::model {

void AttentionMask::KeyRanges(size_t row, size_t n, std::vector<std::pair<size_t, size_t>>* ranges) const {
  ranges->clear();
  switch (kind) {
    case Kind::kCausal:
      ranges->emplace_back(0, row + 1);
      return;
    case Kind::kBidirectional:
      ranges->emplace_back(0, std::min(valid_length, n));
      return;
    case Kind::kBlocks: {
      const size_t b = static_cast<size_t>(std::upper_bound(block_starts.begin(), block_starts.end(), row) -
                                           block_starts.begin()) - 1;
      for (size_t other : sees[b]) {
        const size_t end = other + 1 < block_starts.size() ? block_starts[other + 1] : n;
        ranges->emplace_back(block_starts[other], end);
      }
      ranges->emplace_back(block_starts[b], row + 1);
      return;
    }
  }
}

void AttentionLogits(const float* q, const float* k, size_t n_kv_heads, size_t d, size_t kv_head,
                     const std::vector<std::pair<size_t, size_t>>& ranges, std::vector<float>* logits) {
  logits->clear();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (auto [begin, end] : ranges) {
    for (size_t j = begin; j < end; ++j) logits->push_back(Dot(q, k + (j * n_kv_heads + kv_head) * d, d) * scale);
  }
}

namespace {

// Causal and bidirectional masks over consecutive query rows: a tile of rows sees one key prefix, so
// per head and tile the scores are one sgemm (Q_tile K^T), the softmax runs over rows of that small
// matrix (tile x keys, never sequence x sequence), and the output is a second sgemm (P V). Keys a row
// may not see inside the prefix (the causal triangle) get weight 0.
void TiledAttention(const float* q, size_t first_row, size_t n_rows, const float* k, const float* v, size_t n,
                    size_t n_heads, size_t n_kv_heads, size_t d, const AttentionMask& mask, float* out,
                    const float* relative_bias) {
  constexpr size_t kTile = 64;
  const size_t group = n_heads / n_kv_heads, tiles = (n_rows + kTile - 1) / kTile;
  const bool causal = mask.kind == AttentionMask::Kind::kCausal;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  tbb::parallel_for(size_t{0}, tiles * n_heads, [&](size_t job) {
    const size_t tile = job / n_heads, h = job % n_heads, kv = h / group;
    const size_t r0 = tile * kTile, m = std::min(n_rows, r0 + kTile) - r0;
    const size_t keys = causal ? std::min(n, first_row + r0 + m) : std::min(mask.valid_length, n);
    float* o = out + r0 * n_heads * d + h * d;
    if (keys == 0) {
      for (size_t i = 0; i < m; ++i) std::fill(o + i * n_heads * d, o + i * n_heads * d + d, 0.0f);
      return;
    }
    std::vector<float> p(m * keys);
    Sgemm(true, m, keys, d, scale, q + r0 * n_heads * d + h * d, n_heads * d, k + kv * d, n_kv_heads * d, p.data(),
          keys);
    for (size_t i = 0; i < m; ++i) {
      const size_t row = first_row + r0 + i;
      const size_t visible = causal ? std::min(keys, row + 1) : keys;
      float* l = p.data() + i * keys;
      if (relative_bias) {
        const float* bias = relative_bias + h * (2 * n - 1) + (n - 1) - row;
        for (size_t j = 0; j < visible; ++j) l[j] += bias[j];
      }
      const float top = Max(l, visible);
      for (size_t j = 0; j < visible; ++j) l[j] = ExpFast(l[j] - top);
      const float inv = 1.0f / Sum(l, visible);
      for (size_t j = 0; j < visible; ++j) l[j] *= inv;
      std::fill(l + visible, l + keys, 0.0f);
    }
    Sgemm(false, m, d, keys, 1.0f, p.data(), keys, v + kv * d, n_kv_heads * d, o, n_heads * d);
  });
}

}  // namespace

void Attention(const float* q, const std::vector<size_t>& rows, const float* k, const float* v, size_t n,
               size_t n_heads, size_t n_kv_heads, size_t d, const AttentionMask& mask, float* out,
               const float* relative_bias) {
  const size_t group = n_heads / n_kv_heads;
  bool consecutive = !rows.empty();
  for (size_t i = 1; consecutive && i < rows.size(); ++i) consecutive = rows[i] == rows[0] + i;
  if (consecutive && !mask.dense_reference && mask.kind != AttentionMask::Kind::kBlocks) {
    TiledAttention(q, rows.front(), rows.size(), k, v, n, n_heads, n_kv_heads, d, mask, out, relative_bias);
    return;
  }
  tbb::parallel_for(size_t{0}, rows.size(), [&](size_t r) {
    std::vector<std::pair<size_t, size_t>> ranges;
    std::vector<float> logits, dense;
    mask.KeyRanges(rows[r], n, &ranges);
    for (size_t h = 0; h < n_heads; ++h) {
      const size_t kv = h / group;
      float* o = out + (r * n_heads + h) * d;
      std::fill(o, o + d, 0.0f);
      if (mask.dense_reference) {
        // Every key scored, then the invisible ones masked: what a dense implementation pays for.
        AttentionLogits(q + (r * n_heads + h) * d, k, n_kv_heads, d, kv, {{0, n}}, &dense);
        logits.clear();
        for (auto [begin, end] : ranges) logits.insert(logits.end(), dense.begin() + begin, dense.begin() + end);
      } else {
        AttentionLogits(q + (r * n_heads + h) * d, k, n_kv_heads, d, kv, ranges, &logits);
      }
      if (logits.empty()) continue;
      if (relative_bias) {
        const float* bias = relative_bias + h * (2 * n - 1) + (n - 1) - rows[r];
        size_t at = 0;
        for (auto [begin, end] : ranges) {
          for (size_t j = begin; j < end; ++j) logits[at++] += bias[j];
        }
      }
      const float top = *std::max_element(logits.begin(), logits.end());
      float sum = 0;
      for (float& l : logits) sum += (l = std::exp(l - top));
      const float inv = 1.0f / sum;
      size_t at = 0;
      for (auto [begin, end] : ranges) {
        for (size_t j = begin; j < end; ++j, ++at) {
          const float w = logits[at] * inv;
          const float* vj = v + (j * n_kv_heads + kv) * d;
          for (size_t i = 0; i < d; ++i) o[i] += w * vj[i];
        }
      }
    }
  });
}

}  // namespace quarry::model
