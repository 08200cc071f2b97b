// Scaled dot-product attention over a mask *description*: which keys each query row may see is
// computed as a few key ranges per row, never as a sequence-by-sequence matrix.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace quarry::model {

struct AttentionMask {
  enum class Kind {
    kCausal,         // row i sees keys 0..i
    kBidirectional,  // every row sees keys 0..valid_length-1 (the rest is padding)
    kBlocks          // rows are grouped in blocks; a block sees listed earlier blocks fully and itself causally
  };
  Kind kind = Kind::kCausal;
  size_t valid_length = 0;                 // kBidirectional
  std::vector<size_t> block_starts;        // kBlocks: first row of each block, ascending, block_starts[0] = 0
  std::vector<std::vector<size_t>> sees;   // kBlocks: sees[b] = earlier blocks block b attends to fully
  // For benchmarks only: score every key of the sequence and mask the invisible ones afterwards, as a
  // dense masked-attention implementation does (same results, quadratic cost).
  bool dense_reference = false;
  // Default: 0 (none). A sliding window (Gemma's local layers): row i sees only keys j > i - window,
  // besides what the kind allows. Rows are positions here (the forward's default positions).
  size_t window = 0;

  static AttentionMask Causal() { return {}; }
  static AttentionMask Bidirectional(size_t valid) { return {Kind::kBidirectional, valid, {}, {}, false, 0}; }
  // Appends to `ranges` the [begin, end) key ranges visible to `row` of an n-row sequence.
  void KeyRanges(size_t row, size_t n, std::vector<std::pair<size_t, size_t>>* ranges) const;
};

// q: [n_q, n_heads * d] for query rows `rows` (row index of each q row in the sequence);
// k, v: [n, n_kv_heads * d]; out: [n_q, n_heads * d]. Grouped-query: head h uses kv head h / (n_heads / n_kv).
// Scores are scaled by 1/sqrt(d); softmax in float32 over the visible keys.
// `relative_bias` (may be null): [n_heads, 2n-1], added to the score of key j for row i at
// (j - i) + n - 1, as MPNet's and T5's relative position buckets are (O(n) per head, not n x n).
void Attention(const float* q, const std::vector<size_t>& rows, const float* k, const float* v, size_t n,
               size_t n_heads, size_t n_kv_heads, size_t d, const AttentionMask& mask, float* out,
               const float* relative_bias = nullptr);

// A run of keys and values in a sequence: rows [n, n_kv_heads * d] at k and at v, row stride
// n_kv_heads * d (a cached block, or a range of a layer's keys). Read in place, never copied.
struct KvSegment {
  const float* k = nullptr;
  const float* v = nullptr;
  size_t n = 0;
};

// Attention of n_q consecutive query rows q [n_q, n_heads * d] over `segments`: every row sees every
// key of every segment but the last, and in the last one row i sees keys [0, last_offset + i] (the
// last segment is the rows' own block; last_offset is the first row's index in it). out: [n_q,
// n_heads * d]. Per KV head and tile of rows, the queries of the heads that share that KV head (GQA)
// are one matrix: scores are one sgemm per segment, the softmax is online across segments (running
// maximum and sum, as flash attention keeps them), and values are accumulated by a second sgemm.
// Nothing of size sequence x sequence exists; memory is a tile x segment score matrix.
void SegmentAttention(const float* q, size_t n_q, const std::vector<KvSegment>& segments, size_t last_offset,
                      size_t n_heads, size_t n_kv_heads, size_t d, float* out);

// The pre-softmax scores (already scaled) of one query row and head over the given key ranges.
void AttentionLogits(const float* q_row_head, const float* k, size_t n_kv_heads, size_t d, size_t kv_head,
                     const std::vector<std::pair<size_t, size_t>>& ranges, std::vector<float>* logits);

}  // namespace quarry::model
