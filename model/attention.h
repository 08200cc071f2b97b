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

  static AttentionMask Causal() { return {}; }
  static AttentionMask Bidirectional(size_t valid) { return {Kind::kBidirectional, valid, {}, {}, false}; }
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

// The pre-softmax scores (already scaled) of one query row and head over the given key ranges.
void AttentionLogits(const float* q_row_head, const float* k, size_t n_kv_heads, size_t d, size_t kv_head,
                     const std::vector<std::pair<size_t, size_t>>& ranges, std::vector<float>* logits);

}  // namespace quarry::model
