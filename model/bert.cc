#include "model/bert.h"

#include <cstring>

#include "model/attention.h"
#include "model/kernels.h"

namespace quarry::model {

Result<std::unique_ptr<BertModel>> BertModel::Load(const std::string& dir) {
  std::unique_ptr<BertModel> m(new BertModel());
  QUARRY_ASSIGN_OR_RETURN(m->config_, LoadConfig(dir));
  const auto& c = m->config_;
  if (c.arch != Architecture::kBert) return Status::InvalidArgument(dir + ": not a BERT encoder");
  QUARRY_ASSIGN_OR_RETURN(m->ckpt_, Checkpoint::Open(dir));
  const std::string prefix = m->ckpt_->Has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  const int64_t H = c.hidden_size, F = c.intermediate_size;
  auto load = [&](const std::string& name, std::vector<int64_t> shape, Weight* w) -> Status {
    auto r = Weight::Load(*m->ckpt_, prefix + name, shape);
    if (!r.ok()) return r.status().WithContext(dir);
    *w = std::move(*r);
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(load("embeddings.word_embeddings.weight", {c.vocab_size, H}, &m->word_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.position_embeddings.weight", {c.max_position_embeddings, H}, &m->position_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}, &m->token_type_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.LayerNorm.weight", {H}, &m->emb_ln_w_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.LayerNorm.bias", {H}, &m->emb_ln_b_));
  m->layers_.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    Layer& L = m->layers_[l];
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.query.weight", {H, H}, &L.wq));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.query.bias", {H}, &L.bq));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.key.weight", {H, H}, &L.wk));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.key.bias", {H}, &L.bk));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.value.weight", {H, H}, &L.wv));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.self.value.bias", {H}, &L.bv));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.output.dense.weight", {H, H}, &L.wo));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.output.dense.bias", {H}, &L.bo));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.output.LayerNorm.weight", {H}, &L.ln1_w));
    QUARRY_RETURN_IF_ERROR(load(p + "attention.output.LayerNorm.bias", {H}, &L.ln1_b));
    QUARRY_RETURN_IF_ERROR(load(p + "intermediate.dense.weight", {F, H}, &L.w_in));
    QUARRY_RETURN_IF_ERROR(load(p + "intermediate.dense.bias", {F}, &L.b_in));
    QUARRY_RETURN_IF_ERROR(load(p + "output.dense.weight", {H, F}, &L.w_out));
    QUARRY_RETURN_IF_ERROR(load(p + "output.dense.bias", {H}, &L.b_out));
    QUARRY_RETURN_IF_ERROR(load(p + "output.LayerNorm.weight", {H}, &L.ln2_w));
    QUARRY_RETURN_IF_ERROR(load(p + "output.LayerNorm.bias", {H}, &L.ln2_b));
  }
  return m;
}

Result<std::vector<float>> BertModel::Forward(const std::vector<int32_t>& ids, const std::vector<int32_t>& token_types,
                                              size_t valid_length) const {
  const auto& c = config_;
  const size_t n = ids.size(), H = c.hidden_size, F = c.intermediate_size, heads = c.n_heads, d = c.head_dim;
  if (n == 0) return Status::InvalidArgument("bert forward: no tokens");
  if (n > size_t(c.max_position_embeddings)) {
    return Status::InvalidArgument("bert forward: " + std::to_string(n) + " tokens exceed max_position_embeddings " +
                                   std::to_string(c.max_position_embeddings));
  }
  if (!token_types.empty() && token_types.size() != n) {
    return Status::InvalidArgument("bert forward: token_types and ids differ in length");
  }
  std::vector<float> x(n * H), h(n * H);
  for (size_t t = 0; t < n; ++t) {
    const int type = token_types.empty() ? 0 : token_types[t];
    if (ids[t] < 0 || ids[t] >= c.vocab_size || type < 0 || type >= c.type_vocab_size) {
      return Status::InvalidArgument("bert forward: token " + std::to_string(t) + " has an id or type out of range");
    }
    for (size_t i = 0; i < H; ++i) {
      h[t * H + i] = word_.data[size_t(ids[t]) * H + i] + position_.data[t * H + i] + token_type_.data[size_t(type) * H + i];
    }
  }
  LayerNorm(h.data(), n, H, emb_ln_w_.data, emb_ln_b_.data, c.norm_eps, x.data());
  const AttentionMask mask = AttentionMask::Bidirectional(valid_length ? valid_length : n);
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> q(n * H), k(n * H), v(n * H), attn(n * H), inter(n * F);
  for (const Layer& L : layers_) {
    Linear(x.data(), n, H, L.wq.data, H, L.bq.data, q.data());
    Linear(x.data(), n, H, L.wk.data, H, L.bk.data, k.data());
    Linear(x.data(), n, H, L.wv.data, H, L.bv.data, v.data());
    Attention(q.data(), rows, k.data(), v.data(), n, heads, heads, d, mask, attn.data());
    Linear(attn.data(), n, H, L.wo.data, H, L.bo.data, h.data());
    AddInPlace(h.data(), x.data(), n * H);
    LayerNorm(h.data(), n, H, L.ln1_w.data, L.ln1_b.data, c.norm_eps, x.data());
    Linear(x.data(), n, H, L.w_in.data, F, L.b_in.data, inter.data());
    GeluErf(inter.data(), n * F);
    Linear(inter.data(), n, F, L.w_out.data, H, L.b_out.data, h.data());
    AddInPlace(h.data(), x.data(), n * H);
    LayerNorm(h.data(), n, H, L.ln2_w.data, L.ln2_b.data, c.norm_eps, x.data());
  }
  return x;
}

std::vector<float> PoolCls(const std::vector<float>& hidden, size_t dim) {
  return std::vector<float>(hidden.begin(), hidden.begin() + dim);
}

std::vector<float> PoolMean(const std::vector<float>& hidden, size_t dim, size_t valid) {
  std::vector<double> sum(dim, 0.0);
  for (size_t t = 0; t < valid; ++t) {
    for (size_t i = 0; i < dim; ++i) sum[i] += hidden[t * dim + i];
  }
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(sum[i] / std::max<size_t>(valid, 1));
  return out;
}

}  // namespace quarry::model
