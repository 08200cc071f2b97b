#include "tools/bench/random_checkpoint.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace quarry::bench {

using model::DType;
using model::DTypeSize;
using model::F32ToBf16;
using model::TensorToWrite;
using model::WriteSafetensors;

Status WriteRandomCheckpoint(const std::string& dir, const Shape& s, model::DType dtype) {
  std::filesystem::create_directories(dir);
  const int head_dim = s.hidden / s.heads;
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"], "
                                      << "\"vocab_size\": " << s.vocab << ", \"hidden_size\": " << s.hidden
                                      << ", \"num_hidden_layers\": " << s.layers << ", \"num_attention_heads\": " << s.heads
                                      << ", \"num_key_value_heads\": " << s.kv_heads << ", \"head_dim\": " << head_dim
                                      << ", \"intermediate_size\": " << s.ffn << ", \"rms_norm_eps\": 1e-5, "
                                      << "\"rope_theta\": 10000.0, \"hidden_act\": \"silu\", \"tie_word_embeddings\": false, "
                                      << "\"dtype\": \"" << (dtype == DType::kBF16 ? "bfloat16" : "float32") << "\"}";
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones) {
    size_t n = 1;
    for (auto d : shape) n *= d;
    TensorToWrite t{name, dtype, shape, {}};
    t.bytes.resize(n * DTypeSize(dtype));
    for (size_t i = 0; i < n; ++i) {
      const float v = ones ? 1.0f : normal(rng);
      if (dtype == DType::kF32) std::memcpy(&t.bytes[4 * i], &v, 4);
      else {
        const uint16_t b = F32ToBf16(v);
        std::memcpy(&t.bytes[2 * i], &b, 2);
      }
    }
    tensors.push_back(std::move(t));
  };
  const int64_t H = s.hidden, q = int64_t{s.heads} * head_dim, kv = int64_t{s.kv_heads} * head_dim;
  const bool whole = s.written_layers < 0 || s.written_layers >= s.layers;
  add("model.embed_tokens.weight", {s.vocab, H}, false);
  if (whole) {
    add("model.norm.weight", {H}, true);
    add("lm_head.weight", {s.vocab, H}, false);
  }
  for (int l = 0; l < (whole ? s.layers : s.written_layers); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {H}, true);
    add(p + "post_attention_layernorm.weight", {H}, true);
    add(p + "self_attn.q_proj.weight", {q, H}, false);
    add(p + "self_attn.k_proj.weight", {kv, H}, false);
    add(p + "self_attn.v_proj.weight", {kv, H}, false);
    add(p + "self_attn.o_proj.weight", {H, q}, false);
    add(p + "mlp.gate_proj.weight", {s.ffn, H}, false);
    add(p + "mlp.up_proj.weight", {s.ffn, H}, false);
    add(p + "mlp.down_proj.weight", {H, s.ffn}, false);
  }
  return WriteSafetensors(dir + "/model.safetensors", tensors);
}

Status WriteRandomCheckpointIfAbsent(const std::string& dir, const Shape& shape, model::DType dtype) {
  if (std::filesystem::exists(dir + "/model.safetensors")) return Status::Ok();
  const pid_t child = fork();
  if (child == 0) {
    const Status s = WriteRandomCheckpoint(dir, shape, dtype);
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
    _exit(s.ok() ? 0 : 1);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal(dir + ": writing the random checkpoint failed");
  }
  return Status::Ok();
}

}  // namespace quarry::bench
