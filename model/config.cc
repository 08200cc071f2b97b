#include "model/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "model/gguf.h"

namespace quarry::model {

Result<TransformerConfig> ParseConfig(const std::string& text, const std::string& source) {
  QUARRY_ASSIGN_OR_RETURN(const nlohmann::json j, ParseJson(text, source));
  if (!j.is_object()) return Status::InvalidArgument(source + ": not a JSON object");
  TransformerConfig c;
  QUARRY_RETURN_IF_ERROR(JsonField(j, "model_type", &c.model_type, false, source));
  const bool decoder = c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2";
  const bool mpnet = c.model_type == "mpnet";
  if (!decoder && c.model_type != "bert" && !mpnet) {
    return Status::InvalidArgument(source + ": unsupported model_type '" + c.model_type +
                                   "' (supported: llama, mistral, qwen2, bert, mpnet)");
  }
  c.arch = decoder ? Architecture::kLlama : Architecture::kBert;
  c.qkv_bias = c.model_type == "qwen2";
  QUARRY_RETURN_IF_ERROR(JsonField(j, "vocab_size", &c.vocab_size, true, source));
  QUARRY_RETURN_IF_ERROR(JsonField(j, "hidden_size", &c.hidden_size, true, source));
  QUARRY_RETURN_IF_ERROR(JsonField(j, "num_hidden_layers", &c.n_layers, true, source));
  QUARRY_RETURN_IF_ERROR(JsonField(j, "num_attention_heads", &c.n_heads, true, source));
  QUARRY_RETURN_IF_ERROR(JsonField(j, "intermediate_size", &c.intermediate_size, true, source));
  c.n_kv_heads = c.n_heads;
  QUARRY_RETURN_IF_ERROR(JsonField(j, "num_key_value_heads", &c.n_kv_heads, false, source));
  c.head_dim = c.n_heads ? c.hidden_size / c.n_heads : 0;
  QUARRY_RETURN_IF_ERROR(JsonField(j, "head_dim", &c.head_dim, false, source));
  QUARRY_RETURN_IF_ERROR(JsonField(j, "max_position_embeddings", &c.max_position_embeddings, false, source));
  c.hidden_act = decoder ? "silu" : "gelu";
  QUARRY_RETURN_IF_ERROR(JsonField(j, "hidden_act", &c.hidden_act, false, source));
  if (j.contains("dtype") && j["dtype"].is_string()) c.dtype = j["dtype"];
  else if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.dtype = j["torch_dtype"];
  if (decoder) {
    c.norm_eps = 1e-6f;
    QUARRY_RETURN_IF_ERROR(JsonField(j, "rms_norm_eps", &c.norm_eps, false, source));
    QUARRY_RETURN_IF_ERROR(JsonField(j, "tie_word_embeddings", &c.tie_word_embeddings, false, source));
    if (j.contains("rope_theta") && !j["rope_theta"].is_null()) {
      QUARRY_RETURN_IF_ERROR(JsonField(j, "rope_theta", &c.rope_theta, false, source));
    } else if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
      QUARRY_RETURN_IF_ERROR(JsonField(j["rope_parameters"], "rope_theta", &c.rope_theta, false, source + ": rope_parameters"));
    }
    if (c.hidden_act != "silu") return Status::InvalidArgument(source + ": hidden_act '" + c.hidden_act + "' (need silu)");
  } else {
    QUARRY_RETURN_IF_ERROR(JsonField(j, "layer_norm_eps", &c.norm_eps, true, source));
    if (mpnet) {
      int pad_token_id = 1;
      QUARRY_RETURN_IF_ERROR(JsonField(j, "pad_token_id", &pad_token_id, false, source));
      c.position_offset = pad_token_id + 1;
      c.relative_attention_num_buckets = 32;
      QUARRY_RETURN_IF_ERROR(JsonField(j, "relative_attention_num_buckets", &c.relative_attention_num_buckets, false, source));
      if (pad_token_id < 0 || c.relative_attention_num_buckets < 2) {
        return Status::InvalidArgument(source + ": pad_token_id and relative_attention_num_buckets must be positive");
      }
    } else {
      c.type_vocab_size = 2;
      QUARRY_RETURN_IF_ERROR(JsonField(j, "type_vocab_size", &c.type_vocab_size, false, source));
    }
    if (c.hidden_act != "gelu") return Status::InvalidArgument(source + ": hidden_act '" + c.hidden_act + "' (need gelu)");
  }
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.head_dim <= 0 || c.intermediate_size <= 0 || c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument(source + ": inconsistent sizes (heads, kv heads, head_dim, hidden)");
  }
  if (!(c.norm_eps > 0) || !(c.rope_theta > 0) || c.max_position_embeddings < 0 || c.type_vocab_size < 0) {
    return Status::InvalidArgument(source + ": norm eps, rope_theta and position sizes must be positive");
  }
  return c;
}

Result<TransformerConfig> ConfigFromGguf(const GgufFile& g) {
  const std::string& path = g.path();
  TransformerConfig c;
  QUARRY_ASSIGN_OR_RETURN(c.model_type, g.GetString("general.architecture"));
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "gemma3") {
    return Status::InvalidArgument(path + ": general.architecture '" + c.model_type +
                                   "' is not supported (supported: llama, qwen2, gemma3)");
  }
  c.arch = Architecture::kLlama;
  c.qkv_bias = c.model_type == "qwen2";
  c.hidden_act = c.model_type == "gemma3" ? "gelu_tanh" : "silu";
  const std::string a = c.model_type + ".";
  auto int_key = [&](const std::string& key, int* out, bool required) -> Status {
    if (!required && !g.Has(a + key)) return Status::Ok();
    QUARRY_ASSIGN_OR_RETURN(const int64_t v, g.GetInt(a + key));
    if (v <= 0 || v > (int64_t{1} << 30)) return Status::InvalidArgument(path + ": " + a + key + " is " + std::to_string(v));
    *out = static_cast<int>(v);
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(int_key("block_count", &c.n_layers, true));
  QUARRY_RETURN_IF_ERROR(int_key("embedding_length", &c.hidden_size, true));
  QUARRY_RETURN_IF_ERROR(int_key("feed_forward_length", &c.intermediate_size, true));
  QUARRY_RETURN_IF_ERROR(int_key("attention.head_count", &c.n_heads, true));
  c.n_kv_heads = c.n_heads;
  QUARRY_RETURN_IF_ERROR(int_key("attention.head_count_kv", &c.n_kv_heads, false));
  c.head_dim = c.hidden_size / c.n_heads;
  QUARRY_RETURN_IF_ERROR(int_key("attention.key_length", &c.head_dim, false));
  QUARRY_RETURN_IF_ERROR(int_key("context_length", &c.max_position_embeddings, false));
  int rope_dims = c.head_dim, value_dim = c.head_dim;
  QUARRY_RETURN_IF_ERROR(int_key("rope.dimension_count", &rope_dims, false));
  QUARRY_RETURN_IF_ERROR(int_key("attention.value_length", &value_dim, false));
  if (rope_dims != c.head_dim || value_dim != c.head_dim) {
    return Status::InvalidArgument(path + ": rotary dimensions " + std::to_string(rope_dims) + " and value length " +
                                   std::to_string(value_dim) + " must equal the head size " + std::to_string(c.head_dim));
  }
  if (g.Has(a + "rope.scaling.type")) {
    QUARRY_ASSIGN_OR_RETURN(const std::string scaling, g.GetString(a + "rope.scaling.type"));
    if (scaling != "none") return Status::InvalidArgument(path + ": RoPE scaling '" + scaling + "' is not supported");
  }
  if (g.Has(a + "attention.layer_norm_rms_epsilon")) {
    QUARRY_ASSIGN_OR_RETURN(const double eps, g.GetFloat(a + "attention.layer_norm_rms_epsilon"));
    c.norm_eps = static_cast<float>(eps);
  }
  if (g.Has(a + "rope.freq_base")) {
    QUARRY_ASSIGN_OR_RETURN(c.rope_theta, g.GetFloat(a + "rope.freq_base"));
  }
  if (c.model_type == "gemma3") {
    // As llama.cpp builds Gemma 3 (llm_build_gemma3_iswa): embeddings scaled by sqrt(hidden), query and
    // key heads normalised, the attention's and the MLP's outputs normalised before the residual adds,
    // and five local layers (a 512-token window, RoPE base 10,000) to every global one (the file's base).
    c.embedding_scale = std::sqrt(static_cast<float>(c.hidden_size));
    c.qk_norm = true;
    c.sandwich_norm = true;
    c.sliding_window_pattern = 6;
    c.rope_theta_local = 10000.0;
    QUARRY_RETURN_IF_ERROR(int_key("attention.sliding_window", &c.sliding_window, true));
  }
  QUARRY_ASSIGN_OR_RETURN(const std::vector<std::string>* tokens, g.GetStrings("tokenizer.ggml.tokens"));
  c.vocab_size = static_cast<int>(tokens->size());
  c.tie_word_embeddings = !g.HasTensor("output.weight");
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument(path + ": " + std::to_string(c.n_heads) + " heads cannot share " +
                                   std::to_string(c.n_kv_heads) + " key/value heads");
  }
  if (!(c.norm_eps > 0) || !(c.rope_theta > 0)) {
    return Status::InvalidArgument(path + ": norm epsilon and RoPE base must be positive");
  }
  return c;
}

Result<TransformerConfig> LoadConfig(const std::string& dir) {
  if (IsGgufFile(dir)) {
    QUARRY_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(dir));
    return ConfigFromGguf(*gguf);
  }
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace quarry::model
