// BERT-family encoder forward pass (post-LayerNorm, exact erf GELU) in float32: Hugging Face's BertModel
// (absolute positions from 0, token types) and MPNetModel (absolute positions from pad_token_id + 1, no
// token types, and one table of bidirectional relative-position buckets added to every layer's
// attention scores). Token types are all 0 (single-segment inputs). Thread-safe for concurrent calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace quarry::model {

class BertModel {
 public:
  // Tensor names with or without the "bert." / "mpnet." prefix.
  static Result<std::unique_ptr<BertModel>> Load(const std::string& dir);
  const TransformerConfig& config() const { return config_; }

  // The last hidden state [n, hidden] of one sequence.
  Result<std::vector<float>> Forward(const std::vector<int32_t>& ids) const;
  // The last hidden states of several sequences, their rows stacked in order ([sum of lengths, hidden]):
  // every projection is one GEMM over all their tokens (the weights packed once, not once per text),
  // attention runs per sequence. Equal to Forward on each, up to float rounding.
  Result<std::vector<float>> ForwardBatch(const std::vector<std::vector<int32_t>>& sequences) const;

 private:
  BertModel() = default;
  struct Layer {
    Weight wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w_in, b_in, w_out, b_out, ln2_w, ln2_b;
  };
  TransformerConfig config_;
  std::unique_ptr<Checkpoint> ckpt_;
  Weight word_, position_, token_type_, emb_ln_w_, emb_ln_b_;
  Weight relative_bias_;  // MPNet: [buckets, heads]
  std::vector<Layer> layers_;
};

// MPNet's (T5's bidirectional) bucket of key position minus query position, as transformers computes
// it (float32 logarithm, truncated): exact below buckets/4, logarithmic up to `max_distance`.
int RelativePositionBucket(int relative_position, int num_buckets, int max_distance = 128);

// Pooling of a [n, dim] hidden state: the first row, or the mean of the first `valid` rows.
std::vector<float> PoolCls(const std::vector<float>& hidden, size_t dim);
std::vector<float> PoolMean(const float* hidden, size_t dim, size_t valid);

}  // namespace quarry::model
