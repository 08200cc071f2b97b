#include "model/llama.h"

#include <algorithm>
#include <cstring>

#include "model/kernels.h"

namespace quarry::model {

namespace {

// GGUF's name for a Hugging Face tensor name (llama.cpp's convert_hf_to_gguf mapping).
std::string GgufTensorName(const std::string& hf) {
  static const std::pair<const char*, const char*> kTop[] = {
      {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},         {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},         {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},         {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},          {"mlp.down_proj.weight", "ffn_down.weight"}};
  for (const auto& [from, to] : kTop) {
    if (hf == from) return to;
  }
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) == 0) {
    const size_t dot = hf.find('.', prefix.size());
    const std::string layer = hf.substr(prefix.size(), dot - prefix.size()), rest = hf.substr(dot + 1);
    for (const auto& [from, to] : kLayer) {
      if (rest == from) return "blk." + layer + "." + to;
    }
  }
  return hf;
}

// llama.cpp stores a llama model's query and key rows so that interleaved RoPE (pairs 2i, 2i+1) applies;
// Hugging Face's rotate-half RoPE pairs i and i + d/2. Row h*d + 2i + j of the file is row
// h*d + j*d/2 + i of the original; this puts every row back.
template <typename T>
std::vector<T> UnpermuteRopeRows(const T* w, int64_t rows, int64_t cols, int64_t head_dim) {
  std::vector<T> out(rows * cols);
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / head_dim, within = r % head_dim, i = within / 2, j = within % 2;
    std::copy_n(w + r * cols, cols, &out[(h * head_dim + j * half + i) * cols]);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LlamaModel>> LlamaModel::Load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  const bool gguf = IsGgufFile(path);
  if (gguf) {
    QUARRY_ASSIGN_OR_RETURN(m->gguf_, GgufFile::Open(path));
    QUARRY_ASSIGN_OR_RETURN(m->config_, ConfigFromGguf(*m->gguf_));
  } else {
    QUARRY_ASSIGN_OR_RETURN(m->config_, LoadConfig(path));
    if (m->config_.arch != Architecture::kLlama) return Status::InvalidArgument(path + ": not a Llama/Mistral/Qwen2 decoder");
    QUARRY_ASSIGN_OR_RETURN(m->ckpt_, Checkpoint::Open(path));
  }
  const auto& c = m->config_;
  const int64_t H = c.hidden_size, V = c.vocab_size, F = c.intermediate_size;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  auto has = [&](const std::string& name) { return gguf ? m->gguf_->HasTensor(GgufTensorName(name)) : m->ckpt_->Has(name); };
  // `name` as Hugging Face spells it; GGUF names are translated. Matrices stay in the mapping as stored
  // (BF16 as such, a GGUF file's F16 and quantized ones in their blocks; weights.h); vectors and what
  // has no in-place form are widened to float32.
  auto load = [&](const std::string& name, std::vector<int64_t> shape, Weight* w) -> Status {
    const bool matrix = shape.size() == 2;
    if (!gguf) {
      auto r = Weight::Load(*m->ckpt_, name, shape, /*keep_bf16=*/matrix);
      if (!r.ok()) return r.status().WithContext(path);
      *w = std::move(*r);
      return Status::Ok();
    }
    QUARRY_ASSIGN_OR_RETURN(const GgufTensor* t, m->gguf_->Get(GgufTensorName(name), shape));
    w->size = static_cast<size_t>(t->n_elements());
    const bool rope_rows = c.model_type == "llama" && (name.find("q_proj") != std::string::npos ||
                                                       name.find("k_proj") != std::string::npos);
    const int64_t cols = matrix ? shape[1] : 1;
    if (t->type == uint32_t(GgmlType::kBF16) && matrix && reinterpret_cast<uintptr_t>(t->data) % alignof(uint16_t) == 0) {
      const auto* bf16 = reinterpret_cast<const uint16_t*>(t->data);
      if (rope_rows) {
        w->owned_bf16 = UnpermuteRopeRows(bf16, shape[0], cols, c.head_dim);
        bf16 = w->owned_bf16.data();
      }
      w->bf16 = bf16;
      return Status::Ok();
    }
    const GgmlBlock block = GgmlBlockOf(t->type);
    if (matrix && t->type != uint32_t(GgmlType::kF32) && t->type != uint32_t(GgmlType::kBF16) && block.elements > 0) {
      // F16 and quantized matrices stay in their blocks (whole blocks per row: checked at open).
      w->ggml_type = t->type;
      w->row_bytes = static_cast<size_t>(cols / block.elements) * block.bytes;
      w->blocks = t->data;
      if (rope_rows) {
        w->owned_blocks = UnpermuteRopeRows(t->data, shape[0], static_cast<int64_t>(w->row_bytes), c.head_dim);
        w->blocks = w->owned_blocks.data();
      }
      return Status::Ok();
    }
    if (t->type == uint32_t(GgmlType::kF32) && !rope_rows && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
      w->data = reinterpret_cast<const float*>(t->data);
      return Status::Ok();
    }
    QUARRY_ASSIGN_OR_RETURN(w->owned, m->gguf_->ToF32(*t));
    if (rope_rows) w->owned = UnpermuteRopeRows(w->owned.data(), shape[0], cols, c.head_dim);
    w->data = w->owned.data();
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(load("model.embed_tokens.weight", {V, H}, &m->embed_));
  // Every full forward applies the final norm (embedders pool its output); partial loads never reach it.
  const int n_loaded = options.n_layers < 0 ? c.n_layers : std::min(options.n_layers, c.n_layers);
  if (n_loaded == c.n_layers) QUARRY_RETURN_IF_ERROR(load("model.norm.weight", {H}, &m->final_norm_));
  if (options.head) {
    if (has("lm_head.weight")) {
      QUARRY_RETURN_IF_ERROR(load("lm_head.weight", {V, H}, &m->lm_head_));
    } else if (c.tie_word_embeddings) {
      m->lm_head_ = m->embed_.View();
    } else {
      return Status::NotFound(path + ": checkpoint has no tensor 'lm_head.weight' and embeddings are not tied");
    }
  }
  // A bfloat16 checkpoint runs in HF with its RoPE frequencies rounded to bfloat16 too (kernels.h).
  m->rope_inv_freq_ = RopeInverseFrequencies(c.rope_theta, c.head_dim, c.dtype == "bfloat16");
  if (c.rope_theta_local > 0) {
    m->rope_inv_freq_local_ = RopeInverseFrequencies(c.rope_theta_local, c.head_dim, c.dtype == "bfloat16");
  }
  if (c.model_type == "gemma3" && !gguf) {
    return Status::InvalidArgument(path + ": Gemma 3 is read from GGUF files only");
  }
  m->n_loaded_layers_ = n_loaded;
  m->has_head_ = options.head;
  m->layers_.resize(m->n_loaded_layers_);
  for (int l = 0; l < m->n_loaded_layers_; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer& L = m->layers_[l];
    QUARRY_RETURN_IF_ERROR(load(p + "input_layernorm.weight", {H}, &L.attn_norm));
    QUARRY_RETURN_IF_ERROR(load(p + "self_attn.q_proj.weight", {q_dim, H}, &L.wq));
    QUARRY_RETURN_IF_ERROR(load(p + "self_attn.k_proj.weight", {kv_dim, H}, &L.wk));
    QUARRY_RETURN_IF_ERROR(load(p + "self_attn.v_proj.weight", {kv_dim, H}, &L.wv));
    if (c.qkv_bias) {
      QUARRY_RETURN_IF_ERROR(load(p + "self_attn.q_proj.bias", {q_dim}, &L.bq));
      QUARRY_RETURN_IF_ERROR(load(p + "self_attn.k_proj.bias", {kv_dim}, &L.bk));
      QUARRY_RETURN_IF_ERROR(load(p + "self_attn.v_proj.bias", {kv_dim}, &L.bv));
    }
    QUARRY_RETURN_IF_ERROR(load(p + "self_attn.o_proj.weight", {H, q_dim}, &L.wo));
    QUARRY_RETURN_IF_ERROR(load(p + "post_attention_layernorm.weight", {H}, &L.mlp_norm));
    QUARRY_RETURN_IF_ERROR(load(p + "mlp.gate_proj.weight", {F, H}, &L.w_gate));
    QUARRY_RETURN_IF_ERROR(load(p + "mlp.up_proj.weight", {F, H}, &L.w_up));
    QUARRY_RETURN_IF_ERROR(load(p + "mlp.down_proj.weight", {H, F}, &L.w_down));
    if (c.qk_norm || c.sandwich_norm) {  // Gemma 3, by their GGUF names
      const std::string b = "blk." + std::to_string(l) + ".";
      QUARRY_RETURN_IF_ERROR(load(b + "attn_q_norm.weight", {c.head_dim}, &L.q_norm));
      QUARRY_RETURN_IF_ERROR(load(b + "attn_k_norm.weight", {c.head_dim}, &L.k_norm));
      QUARRY_RETURN_IF_ERROR(load(b + "post_attention_norm.weight", {H}, &L.post_attn_norm));
      QUARRY_RETURN_IF_ERROR(load(b + "post_ffw_norm.weight", {H}, &L.post_mlp_norm));
    }
  }
  if (options.quantized_activations && HasInt8Dot()) {
    // Layer matrices and an untied head (the embeddings' rows are read as float32, so they stay).
    std::vector<Weight*> matrices;
    if (!m->lm_head_.SameStorage(m->embed_)) matrices.push_back(&m->lm_head_);
    for (Layer& L : m->layers_) {
      for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) matrices.push_back(w);
    }
    for (Weight* w : matrices) {
      if (!w->blocks || !w->row_bytes) continue;
      const GgmlBlock block = GgmlBlockOf(w->ggml_type);
      const size_t cols = w->row_bytes / block.bytes * block.elements, rows = w->size / cols;
      std::unique_ptr<Int8Panels> packed = PackInt8Panels(w->ggml_type, w->blocks, w->row_bytes, rows, cols);
      if (!packed) continue;  // another type: widened per panel as before
      if (w->owned_blocks.empty()) m->gguf_->ReleasePages(w->blocks, rows * w->row_bytes);
      w->int8 = std::move(packed);
      w->blocks = nullptr;
      w->owned_blocks = {};
    }
  }
  if (options.bf16_activations) {
    for (Weight* w : {&m->embed_, &m->lm_head_}) w->bf16_activations = true;
    for (Layer& L : m->layers_) {
      for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) w->bf16_activations = true;
    }
  }
  return m;
}

uint64_t LlamaModel::weight_bytes() const {
  const bool tied = lm_head_.SameStorage(embed_);
  uint64_t n = embed_.bytes() + final_norm_.bytes() + (tied ? 0 : lm_head_.bytes());
  for (const auto& L : layers_) {
    for (const Weight* w : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.mlp_norm, &L.w_gate, &L.w_up, &L.w_down,
                            &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.post_attn_norm, &L.post_mlp_norm}) {
      n += w->bytes();
    }
  }
  return n;
}

std::vector<float> LlamaModel::Embed(const std::vector<int32_t>& ids) const {
  const size_t H = config_.hidden_size;
  std::vector<float> x(ids.size() * H);
  for (size_t t = 0; t < ids.size(); ++t) embed_.RowToF32(size_t(ids[t]), H, &x[t * H]);
  if (config_.embedding_scale > 0) {
    for (float& v : x) v *= config_.embedding_scale;
  }
  return x;
}

void LlamaModel::QueryKeyValue(int l, const float* x, size_t n, const int32_t* positions, float* q, float* k,
                               float* v) const {
  const auto& c = config_;
  const Layer& L = layers_[l];
  const size_t H = c.hidden_size, d = c.head_dim, q_dim = size_t(c.n_heads) * d, kv_dim = size_t(c.n_kv_heads) * d;
  ScratchFloats h(n * H);
  RmsNorm(x, n, H, L.attn_norm.data, c.norm_eps, h.data());
  // Gemma 3 normalises every head (a row of d) before RoPE.
  auto head_norm = [&](float* m, size_t n_heads, const Weight& w) {
    if (!c.qk_norm) return;
    ScratchFloats normed(n * n_heads * d);
    RmsNorm(m, n * n_heads, d, w.data, c.norm_eps, normed.data());
    std::copy(normed.begin(), normed.end(), m);
  };
  if (q) {
    Linear(h.data(), n, H, L.wq, q_dim, L.bq.data, q);
    head_norm(q, c.n_heads, L.q_norm);
    ApplyRope(q, n, c.n_heads, d, positions, rope_inv_freq(l));
  }
  if (k) {
    Linear(h.data(), n, H, L.wk, kv_dim, L.bk.data, k);
    head_norm(k, c.n_kv_heads, L.k_norm);
    ApplyRope(k, n, c.n_kv_heads, d, positions, rope_inv_freq(l));
  }
  if (v) Linear(h.data(), n, H, L.wv, kv_dim, L.bv.data, v);
}

void LlamaModel::FinishLayer(int l, float* x, size_t n, const float* attn) const {
  const auto& c = config_;
  const Layer& L = layers_[l];
  const size_t H = c.hidden_size, F = c.intermediate_size, q_dim = size_t(c.n_heads) * c.head_dim;
  ScratchFloats h(n * H), o(n * H);
  // Adds `out` to the residual stream, through Gemma 3's norm of a block's output when it has one.
  auto add = [&](const Weight& post_norm) {
    if (c.sandwich_norm) {
      RmsNorm(o.data(), n, H, post_norm.data, c.norm_eps, h.data());
      AddInPlace(x, h.data(), n * H);
    } else {
      AddInPlace(x, o.data(), n * H);
    }
  };
  Linear(attn, n, q_dim, L.wo, H, nullptr, o.data());
  add(L.post_attn_norm);
  RmsNorm(x, n, H, L.mlp_norm.data, c.norm_eps, h.data());
  ScratchFloats gate(n * F), up(n * F);
  Linear(h.data(), n, H, L.w_gate, F, nullptr, gate.data());
  Linear(h.data(), n, H, L.w_up, F, nullptr, up.data());
  if (c.hidden_act == "gelu_tanh") {
    GeluTanhMul(gate.data(), up.data(), n * F);
  } else {
    SiluMul(gate.data(), up.data(), n * F);
  }
  Linear(gate.data(), n, F, L.w_down, H, nullptr, o.data());
  add(L.post_mlp_norm);
}

void LlamaModel::RunLayer(int l, std::vector<float>* x_io, const std::vector<int32_t>& positions,
                          const AttentionMask& mask) const {
  const auto& c = config_;
  const size_t n = positions.size(), d = c.head_dim;
  const size_t q_dim = size_t(c.n_heads) * d, kv_dim = size_t(c.n_kv_heads) * d;
  std::vector<float>& x = *x_io;
  ScratchFloats q(n * q_dim), k(n * kv_dim), v(n * kv_dim), attn(n * q_dim);
  QueryKeyValue(l, x.data(), n, positions.data(), q.data(), k.data(), v.data());
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  AttentionMask windowed = mask;
  if (is_local_layer(l)) windowed.window = static_cast<size_t>(c.sliding_window);
  Attention(q.data(), rows, k.data(), v.data(), n, c.n_heads, c.n_kv_heads, d, windowed, attn.data());
  FinishLayer(l, x.data(), n, attn.data());
}

Result<ForwardOutput> LlamaModel::Forward(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions_in,
                                          const AttentionMask& mask, const ForwardOptions& options) const {
  const auto& c = config_;
  const size_t n = ids.size(), H = c.hidden_size;
  if (n == 0) return Status::InvalidArgument("forward: no tokens");
  for (size_t t = 0; t < n; ++t) {
    if (ids[t] < 0 || ids[t] >= c.vocab_size) {
      return Status::InvalidArgument("forward: token " + std::to_string(t) + " has id " + std::to_string(ids[t]) +
                                     " outside the vocabulary of " + std::to_string(c.vocab_size));
    }
  }
  std::vector<int32_t> positions = positions_in;
  if (positions.empty()) {
    positions.resize(n);
    for (size_t t = 0; t < n; ++t) positions[t] = static_cast<int32_t>(t);
  }
  if (positions.size() != n) return Status::InvalidArgument("forward: positions and ids differ in length");
  const int n_layers = options.n_layers < 0 ? c.n_layers : std::min(options.n_layers, c.n_layers);
  if (n_layers > n_loaded_layers_) {
    return Status::FailedPrecondition("forward: " + std::to_string(n_layers) + " layers asked, " +
                                      std::to_string(n_loaded_layers_) + " loaded");
  }
  ForwardOutput out;
  std::vector<float> x = Embed(ids);
  if (options.keep_hidden_states) out.hidden_states.push_back(x);
  for (int l = 0; l < n_layers; ++l) {
    RunLayer(l, &x, positions, mask);
    if (options.keep_hidden_states) out.hidden_states.push_back(x);
  }
  if (n_layers == c.n_layers) {
    std::vector<float> normed(n * H);
    RmsNorm(x.data(), n, H, final_norm_.data, c.norm_eps, normed.data());
    x = std::move(normed);
    if (options.keep_hidden_states) out.hidden_states.back() = x;
    if (options.logits && has_head_) {
      const size_t rows = options.logits_all_rows ? n : 1;
      out.logits.resize(rows * size_t(c.vocab_size));
      Linear(x.data() + (n - rows) * H, rows, H, lm_head_, c.vocab_size, nullptr, out.logits.data());
    }
  }
  out.hidden = std::move(x);
  return out;
}

}  // namespace quarry::model
