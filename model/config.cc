#include "model/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace quarry::model {

Result<TransformerConfig> ParseConfig(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(source + ": malformed JSON: " + e.what());
  }
  TransformerConfig c;
  c.model_type = j.value("model_type", "");
  const bool decoder = c.model_type == "llama" || c.model_type == "mistral";
  if (!decoder && c.model_type != "bert") {
    return Status::InvalidArgument(source + ": unsupported model_type '" + c.model_type +
                                   "' (supported: llama, mistral, bert)");
  }
  c.arch = decoder ? Architecture::kLlama : Architecture::kBert;
  auto field = [&](const char* name, auto* out) -> Status {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return Status::InvalidArgument(source + ": missing field '" + name + "'");
    try {
      *out = it->get<std::remove_pointer_t<decltype(out)>>();
    } catch (const nlohmann::json::exception&) {
      return Status::InvalidArgument(source + ": field '" + name + "' has the wrong type");
    }
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(field("vocab_size", &c.vocab_size));
  QUARRY_RETURN_IF_ERROR(field("hidden_size", &c.hidden_size));
  QUARRY_RETURN_IF_ERROR(field("num_hidden_layers", &c.n_layers));
  QUARRY_RETURN_IF_ERROR(field("num_attention_heads", &c.n_heads));
  QUARRY_RETURN_IF_ERROR(field("intermediate_size", &c.intermediate_size));
  c.n_kv_heads = j.value("num_key_value_heads", c.n_heads);
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null() ? j["head_dim"].get<int>()
                                                                  : (c.n_heads ? c.hidden_size / c.n_heads : 0);
  c.max_position_embeddings = j.value("max_position_embeddings", 0);
  c.hidden_act = j.value("hidden_act", decoder ? "silu" : "gelu");
  if (j.contains("dtype") && j["dtype"].is_string()) c.dtype = j["dtype"];
  else if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.dtype = j["torch_dtype"];
  if (decoder) {
    c.norm_eps = j.value("rms_norm_eps", 1e-6f);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    if (j.contains("rope_theta") && j["rope_theta"].is_number()) {
      c.rope_theta = j["rope_theta"].get<double>();
    } else if (j.contains("rope_parameters") && j["rope_parameters"].is_object() &&
               j["rope_parameters"].contains("rope_theta")) {
      c.rope_theta = j["rope_parameters"]["rope_theta"].get<double>();
    }
    if (c.hidden_act != "silu") return Status::InvalidArgument(source + ": hidden_act '" + c.hidden_act + "' (need silu)");
  } else {
    QUARRY_RETURN_IF_ERROR(field("layer_norm_eps", &c.norm_eps));
    c.type_vocab_size = j.value("type_vocab_size", 2);
    if (c.hidden_act != "gelu") return Status::InvalidArgument(source + ": hidden_act '" + c.hidden_act + "' (need gelu)");
  }
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.head_dim <= 0 || c.intermediate_size <= 0 || c.n_heads % c.n_kv_heads != 0) {
    return Status::InvalidArgument(source + ": inconsistent sizes (heads, kv heads, head_dim, hidden)");
  }
  return c;
}

Result<TransformerConfig> LoadConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace quarry::model
