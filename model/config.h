// Transformer configuration read from a Hugging Face config.json.
#pragma once

#include <string>

#include "quarry/status.h"

namespace quarry::model {

// kLlama covers Llama, Mistral, Qwen2 and Gemma 3 decoders; kBert covers BERT and MPNet encoders.
enum class Architecture { kLlama, kBert };

struct TransformerConfig {
  Architecture arch = Architecture::kLlama;
  std::string model_type;  // as in config.json ("llama", "mistral", "bert", "mpnet")
  int vocab_size = 0;
  int hidden_size = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // = n_heads without grouped-query attention
  int head_dim = 0;
  int intermediate_size = 0;
  float norm_eps = 1e-5f;        // rms_norm_eps (decoders) or layer_norm_eps (BERT)
  double rope_theta = 10000.0;   // top-level rope_theta or rope_parameters.rope_theta
  bool tie_word_embeddings = false;
  bool qkv_bias = false;         // Qwen2: the query, key and value projections have biases
  int max_position_embeddings = 0;
  int type_vocab_size = 0;       // BERT (MPNet has no token types: 0)
  int position_offset = 0;       // the first position id: MPNet counts from pad_token_id + 1
  int relative_attention_num_buckets = 0;  // MPNet: bidirectional relative-position buckets (T5's)
  std::string hidden_act;        // "silu" (decoders), "gelu" (BERT, exact erf), "gelu_tanh" (Gemma)
  // Gemma 3 (all off for other models):
  float embedding_scale = 0;       // embeddings are multiplied by it (sqrt(hidden_size)); 0: not scaled
  bool qk_norm = false;            // RMSNorm of every query and key head (its own weights) before RoPE
  bool sandwich_norm = false;      // RMSNorm of the attention's and the MLP's outputs before each residual add
  int sliding_window = 0;          // local layers see only the keys this many positions back (0: none)
  int sliding_window_pattern = 0;  // layer l is local when l % pattern < pattern - 1 (0: every layer global)
  double rope_theta_local = 0;     // RoPE base of the local layers
  std::string dtype;             // config.json "dtype" / "torch_dtype" ("bfloat16", "float32", ...); may be ""
};

// Reads DIR/config.json, or the metadata of a GGUF file when `dir` is one (ConfigFromGguf). Errors
// name the file and the field; an unknown architecture is an error.
Result<TransformerConfig> LoadConfig(const std::string& dir);
Result<TransformerConfig> ParseConfig(const std::string& json_text, const std::string& source);
// From a GGUF file's `{arch}.*` metadata (architectures llama, qwen2 and gemma3). vocab_size counts
// tokenizer.ggml.tokens; tie_word_embeddings is set when the file has no output.weight.
class GgufFile;
Result<TransformerConfig> ConfigFromGguf(const GgufFile& gguf);

}  // namespace quarry::model
