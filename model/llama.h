// Llama / Mistral / Qwen2 / Gemma 3 decoder forward pass (GQA, RoPE, RMSNorm, SiLU-gated MLP, tied or
// untied head; Qwen2's query/key/value biases; Gemma 3's scaled embeddings, query/key norms, sandwich
// norms, GELU-gated MLP and sliding-window local layers with their own RoPE base), in float32, matching
// Hugging Face transformers (and, for GGUF files, llama.cpp's graph of the same model). Weights come
// from a memory-mapped checkpoint: a safetensors directory, or a GGUF file (llama.cpp's; quantized
// matrices stay quantized in the mapping and are dequantized panel by panel as they are multiplied).
// Thread-safe: Forward may run concurrently (weights are read-only).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/config.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace quarry::model {

struct ForwardOptions {
  // Default: -1 (all). Run only the first `n_layers` layers; the final norm and head are then skipped.
  // After all layers the final norm is applied; logits need the head loaded.
  int n_layers = -1;
  // Default: true. Compute logits (for the last row only unless logits_all_rows).
  bool logits = true;
  // Default: false.
  bool logits_all_rows = false;
  // Default: false. Keep every hidden state: [0] embeddings, [i] after layer i, and after the final
  // norm in place of the last layer's (as HF's output_hidden_states does).
  bool keep_hidden_states = false;
};

struct ForwardOutput {
  std::vector<float> hidden;                      // [n, hidden]: final norm applied when all layers ran
  std::vector<std::vector<float>> hidden_states;  // keep_hidden_states
  std::vector<float> logits;                      // [1 or n, vocab]
};

struct LoadOptions {
  // Default: -1 (all). Load only the first n layers (a forward may then run at most n layers); BlockRank
  // needs the layers up to its scoring layer, which for Mistral-7B at layer 20 is 21 of 32.
  int n_layers = -1;
  // Default: true. Load the LM head (BlockRank and embedders never use it). The final norm is loaded
  // with the last layer and applied after it.
  bool head = true;
  // Default: false. Multiply BF16 matrices by activations rounded to bf16 (llama.cpp's BF16
  // arithmetic), with AVX512-BF16 dot products where the CPU has them (about 2x faster; elsewhere the
  // same products through OpenBLAS, no faster), but the forward no longer equals Hugging Face's float32
  // one (activations keep 8 significant bits). Off: BF16 weights give the float32 forward's results
  // exactly.
  bool bf16_activations = false;
  // Default: false. Multiply a GGUF file's Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K matrices
  // by activations quantized to 8 bits per 32-element block (llama.cpp's Q8_0 and Q8_1), with int8 dot
  // products (AVX512-VNNI, or AVX2 with the same results) where the CPU has them (model/int8_gemm.h):
  // about 3x faster on AVX512-VNNI; the matrices are repacked at load (the file's pages released), and
  // each product rounds X by up to half of max|x| / 127 per block, as llama.cpp's does. Other types stay
  // as without it. Off: the dequantized weights times float32 activations.
  bool quantized_activations = false;
};

class LlamaModel {
 public:
  // BF16 matrices are used in place from the mapping (weights.h), and so are a GGUF file's F16 and
  // quantized ones, in their blocks; F16 safetensors are widened to float32 here. Loading only what
  // will run matters: Mistral-7B's first 21 layers without the head
  // are ~9.5 GiB in bf16, ~19 GiB widened.
  // `path`: a checkpoint directory (config.json, safetensors), or a GGUF file of architecture llama,
  // qwen2 or gemma3 (GGUF stores llama's query and key rows permuted for interleaved RoPE; they are put
  // back in Hugging Face's order here, so one RoPE serves all).
  static Result<std::unique_ptr<LlamaModel>> Load(const std::string& path, const LoadOptions& options = {});
  const TransformerConfig& config() const { return config_; }

  // `positions` defaults to 0..n-1 when empty. Token ids and positions are checked.
  Result<ForwardOutput> Forward(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions,
                                const AttentionMask& mask, const ForwardOptions& options = {}) const;

  // Building blocks for callers that drive the layers themselves (BlockRank scoring).
  struct Layer {
    Weight attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down;
    Weight bq, bk, bv;  // Qwen2 only; empty (data null) otherwise
    Weight q_norm, k_norm, post_attn_norm, post_mlp_norm;  // Gemma 3 only
  };
  // Gemma 3's local layers: a sliding window and their own RoPE base.
  bool is_local_layer(int l) const {
    return config_.sliding_window_pattern > 0 && l % config_.sliding_window_pattern < config_.sliding_window_pattern - 1;
  }
  const std::vector<float>& rope_inv_freq(int l) const { return is_local_layer(l) ? rope_inv_freq_local_ : rope_inv_freq_; }
  const Layer& layer(int i) const { return layers_[i]; }
  // Embeds `ids` into [n, hidden].
  std::vector<float> Embed(const std::vector<int32_t>& ids) const;
  int n_loaded_layers() const { return n_loaded_layers_; }
  // Runs layer `l` (< n_loaded_layers()) on x [n, hidden] in place: QueryKeyValue, attention under
  // `mask` (Gemma 3's local layers add their sliding window, by row: rows must be the positions),
  // FinishLayer.
  void RunLayer(int l, std::vector<float>* x, const std::vector<int32_t>& positions, const AttentionMask& mask) const;
  // Layer l's attention inputs for the rows x [n, hidden] at `positions`: the input norm, the
  // projections (with Qwen2's biases), Gemma 3's query/key head norms and RoPE at the layer's base.
  // q [n, n_heads * head_dim], k and v [n, n_kv_heads * head_dim]; any of them may be null (not computed).
  void QueryKeyValue(int l, const float* x, size_t n, const int32_t* positions, float* q, float* k, float* v) const;
  // Layer l after attention, on x [n, hidden] in place given the attention output attn [n, n_heads *
  // head_dim]: the output projection (Gemma 3: normed) added to x, then the MLP block likewise.
  void FinishLayer(int l, float* x, size_t n, const float* attn) const;
  uint64_t weight_bytes() const;  // bytes of all weights as the forward reads them (bf16: 2 per element)
  const std::vector<float>& rope_inv_freq() const { return rope_inv_freq_; }  // the global layers'


 private:
  LlamaModel() = default;
  TransformerConfig config_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<GgufFile> gguf_;
  Weight embed_, final_norm_, lm_head_;
  std::vector<float> rope_inv_freq_, rope_inv_freq_local_;
  int n_loaded_layers_ = 0;
  bool has_head_ = true;
  std::vector<Layer> layers_;
};

}  // namespace quarry::model
