#include "model/attention.h"

#include "model/kernels.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace quarry::model {

void AttentionMask::KeyRanges(size_t row, size_t n, std::vector<std::pair<size_t, size_t>>* ranges) const {
  ranges->clear();
  if (window > 0) {
    // The kind's ranges, cut to the window (keys after row - window).
    AttentionMask unwindowed = *this;
    unwindowed.window = 0;
    unwindowed.KeyRanges(row, n, ranges);
    const size_t first = row + 1 > window ? row + 1 - window : 0;
    std::vector<std::pair<size_t, size_t>> cut;
    for (auto [begin, end] : *ranges) {
      if (std::max(begin, first) < end) cut.emplace_back(std::max(begin, first), end);
    }
    *ranges = std::move(cut);
    return;
  }
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
  // With a sliding window, row r sees keys from window_start(r) on; a tile scores keys from its first
  // row's start.
  auto window_start = [&](size_t row) { return mask.window > 0 && row + 1 > mask.window ? row + 1 - mask.window : 0; };
  tbb::parallel_for(size_t{0}, tiles * n_heads, [&](size_t job) {
    const size_t tile = job / n_heads, h = job % n_heads, kv = h / group;
    const size_t r0 = tile * kTile, m = std::min(n_rows, r0 + kTile) - r0;
    const size_t end = causal ? std::min(n, first_row + r0 + m) : std::min(mask.valid_length, n);
    const size_t lo = std::min(end, window_start(first_row + r0)), keys = end - lo;
    float* o = out + r0 * n_heads * d + h * d;
    if (keys == 0) {
      for (size_t i = 0; i < m; ++i) std::fill(o + i * n_heads * d, o + i * n_heads * d + d, 0.0f);
      return;
    }
    std::vector<float> p(m * keys);
    Sgemm(true, m, keys, d, scale, q + r0 * n_heads * d + h * d, n_heads * d, k + (lo * n_kv_heads + kv) * d,
          n_kv_heads * d, p.data(), keys);
    for (size_t i = 0; i < m; ++i) {
      const size_t row = first_row + r0 + i;
      // Keys [from, visible) of the tile's [0, keys) are this row's.
      const size_t visible = causal ? std::min(keys, row + 1 - lo) : keys;
      const size_t from = std::min(visible, window_start(row) - lo);
      float* l = p.data() + i * keys;
      if (relative_bias) {
        const float* bias = relative_bias + h * (2 * n - 1) + (n - 1) - row + lo;
        for (size_t j = from; j < visible; ++j) l[j] += bias[j];
      }
      std::fill(l, l + from, 0.0f);
      std::fill(l + visible, l + keys, 0.0f);
      if (from == visible) continue;
      float* w = l + from;
      const size_t count = visible - from;
      const float top = Max(w, count);
      for (size_t j = 0; j < count; ++j) w[j] = ExpFast(w[j] - top);
      const float inv = 1.0f / Sum(w, count);
      for (size_t j = 0; j < count; ++j) w[j] *= inv;
    }
    Sgemm(false, m, d, keys, 1.0f, p.data(), keys, v + (lo * n_kv_heads + kv) * d, n_kv_heads * d, o, n_heads * d);
  });
}

// One tile of SegmentAttention: m consecutive query rows (q: row stride n_heads * d), the `group`
// heads that share KV head `kv`, over segs[0, n_segs).
void SegmentTile(const float* q, size_t m, const KvSegment* segs, size_t n_segs, size_t last_offset, size_t n_heads,
                 size_t n_kv_heads, size_t d, size_t kv, float* out) {
  const size_t group = n_heads / n_kv_heads, rows = group * m, kv_stride = n_kv_heads * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Row g * m + t of the packed queries is head kv * group + g of query row t.
  std::vector<float> packed(rows * d), acc(rows * d, 0.0f), top(rows, -INFINITY), sum(rows, 0.0f), p;
  for (size_t g = 0; g < group; ++g) {
    for (size_t t = 0; t < m; ++t) {
      const float* src = q + t * n_heads * d + (kv * group + g) * d;
      std::copy(src, src + d, packed.data() + (g * m + t) * d);
    }
  }
  for (size_t s = 0; s < n_segs; ++s) {
    const KvSegment& seg = segs[s];
    if (seg.n == 0) continue;
    const bool last = s + 1 == n_segs;
    p.resize(rows * seg.n);
    Sgemm(true, rows, seg.n, d, scale, packed.data(), d, seg.k + kv * d, kv_stride, p.data(), seg.n);
    for (size_t r = 0; r < rows; ++r) {
      float* l = p.data() + r * seg.n;
      const size_t visible = last ? std::min(seg.n, last_offset + r % m + 1) : seg.n;
      const float seg_top = Max(l, visible);
      if (seg_top > top[r]) {  // a new maximum: what was accumulated shrinks by e^(old - new)
        const float shrink = top[r] == -INFINITY ? 0.0f : ExpFast(top[r] - seg_top);
        for (size_t i = 0; i < d; ++i) acc[r * d + i] *= shrink;
        sum[r] *= shrink;
        top[r] = seg_top;
      }
      for (size_t j = 0; j < visible; ++j) l[j] = ExpFast(l[j] - top[r]);
      sum[r] += Sum(l, visible);
      std::fill(l + visible, l + seg.n, 0.0f);
    }
    Sgemm(false, rows, d, seg.n, 1.0f, p.data(), seg.n, seg.v + kv * d, kv_stride, acc.data(), d, 1.0f);
  }
  for (size_t g = 0; g < group; ++g) {
    for (size_t t = 0; t < m; ++t) {
      const size_t r = g * m + t;
      const float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
      float* dst = out + t * n_heads * d + (kv * group + g) * d;
      for (size_t i = 0; i < d; ++i) dst[i] = acc[r * d + i] * inv;
    }
  }
}

// A tile of rows and the segments they see (SegmentAttention's unit of parallel work, per KV head).
struct SegmentWork {
  const float* q;
  size_t m;
  const std::vector<KvSegment>* segments;
  size_t last_offset;
  float* out;
};

// Cuts n_q rows into near-equal tiles of at most 64 rows and appends them to `work`.
void AddTiles(const float* q, size_t n_q, const std::vector<KvSegment>* segments, size_t last_offset,
              size_t row_stride, float* out, std::vector<SegmentWork>* work) {
  constexpr size_t kMaxTile = 64;
  if (n_q == 0) return;
  const size_t tiles = (n_q + kMaxTile - 1) / kMaxTile, tile = (n_q + tiles - 1) / tiles;
  for (size_t r0 = 0; r0 < n_q; r0 += tile) {
    work->push_back({q + r0 * row_stride, std::min(tile, n_q - r0), segments, last_offset + r0, out + r0 * row_stride});
  }
}

void RunSegmentWork(const std::vector<SegmentWork>& work, size_t n_heads, size_t n_kv_heads, size_t d) {
  tbb::parallel_for(size_t{0}, work.size() * n_kv_heads, [&](size_t job) {
    const SegmentWork& w = work[job / n_kv_heads];
    SegmentTile(w.q, w.m, w.segments->data(), w.segments->size(), w.last_offset, n_heads, n_kv_heads, d,
                job % n_kv_heads, w.out);
  });
}

// A block mask over consecutive query rows: the rows of each block see the same earlier blocks, so
// each block's rows are SegmentAttention over those blocks and (causally) itself.
void BlockAttention(const float* q, size_t first_row, size_t n_rows, const float* k, const float* v, size_t n,
                    size_t n_heads, size_t n_kv_heads, size_t d, const AttentionMask& mask, float* out) {
  const size_t kv_stride = n_kv_heads * d, row_stride = n_heads * d, end_row = first_row + n_rows;
  const size_t m = mask.block_starts.size();
  auto block_end = [&](size_t b) { return b + 1 < m ? mask.block_starts[b + 1] : n; };
  std::vector<std::vector<KvSegment>> segments(m);
  std::vector<SegmentWork> work;
  for (size_t b = 0; b < m; ++b) {
    const size_t begin = std::max(first_row, mask.block_starts[b]), end = std::min(end_row, block_end(b));
    if (begin >= end) continue;
    for (size_t other : mask.sees[b]) {
      const size_t start = mask.block_starts[other];
      segments[b].push_back({k + start * kv_stride, v + start * kv_stride, block_end(other) - start});
    }
    const size_t self = mask.block_starts[b];
    segments[b].push_back({k + self * kv_stride, v + self * kv_stride, end - self});
    AddTiles(q + (begin - first_row) * row_stride, end - begin, &segments[b], begin - self, row_stride,
             out + (begin - first_row) * row_stride, &work);
  }
  RunSegmentWork(work, n_heads, n_kv_heads, d);
}

}  // namespace

void SegmentAttention(const float* q, size_t n_q, const std::vector<KvSegment>& segments, size_t last_offset,
                      size_t n_heads, size_t n_kv_heads, size_t d, float* out) {
  std::vector<SegmentWork> work;
  AddTiles(q, n_q, &segments, last_offset, n_heads * d, out, &work);
  RunSegmentWork(work, n_heads, n_kv_heads, d);
}

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
  if (consecutive && !mask.dense_reference && !relative_bias && mask.window == 0) {
    BlockAttention(q, rows.front(), rows.size(), k, v, n, n_heads, n_kv_heads, d, mask, out);
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
