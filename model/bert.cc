#include "model/bert.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <tbb/parallel_for.h>

#include "model/attention.h"
#include "model/kernels.h"

namespace quarry::model {

Result<std::unique_ptr<BertModel>> BertModel::Load(const std::string& dir) {
  std::unique_ptr<BertModel> m(new BertModel());
  QUARRY_ASSIGN_OR_RETURN(m->config_, LoadConfig(dir));
  const auto& c = m->config_;
  if (c.arch != Architecture::kBert) return Status::InvalidArgument(dir + ": not a BERT-family encoder");
  QUARRY_ASSIGN_OR_RETURN(m->ckpt_, Checkpoint::Open(dir));
  const bool mpnet = c.model_type == "mpnet";
  std::string prefix;
  for (const char* p : {"bert.", "mpnet."}) {
    if (m->ckpt_->Has(std::string(p) + "embeddings.word_embeddings.weight")) prefix = p;
  }
  const int64_t H = c.hidden_size, F = c.intermediate_size;
  auto load = [&](const std::string& name, std::vector<int64_t> shape, Weight* w) -> Status {
    auto r = Weight::Load(*m->ckpt_, prefix + name, shape);
    if (!r.ok()) return r.status().WithContext(dir);
    *w = std::move(*r);
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(load("embeddings.word_embeddings.weight", {c.vocab_size, H}, &m->word_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.position_embeddings.weight", {c.max_position_embeddings, H}, &m->position_));
  if (c.type_vocab_size > 0) {
    QUARRY_RETURN_IF_ERROR(load("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}, &m->token_type_));
  }
  QUARRY_RETURN_IF_ERROR(load("embeddings.LayerNorm.weight", {H}, &m->emb_ln_w_));
  QUARRY_RETURN_IF_ERROR(load("embeddings.LayerNorm.bias", {H}, &m->emb_ln_b_));
  if (c.relative_attention_num_buckets > 0) {
    QUARRY_RETURN_IF_ERROR(load("encoder.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.n_heads},
                                &m->relative_bias_));
  }
  // Where each weight of a layer lives: BERT's names, or MPNet's.
  struct Names {
    const char *q, *k, *v, *o, *ln1;
  };
  const Names names = mpnet ? Names{"attention.attn.q.", "attention.attn.k.", "attention.attn.v.", "attention.attn.o.",
                                    "attention.LayerNorm."}
                            : Names{"attention.self.query.", "attention.self.key.", "attention.self.value.",
                                    "attention.output.dense.", "attention.output.LayerNorm."};
  m->layers_.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    Layer& L = m->layers_[l];
    QUARRY_RETURN_IF_ERROR(load(p + names.q + "weight", {H, H}, &L.wq));
    QUARRY_RETURN_IF_ERROR(load(p + names.q + "bias", {H}, &L.bq));
    QUARRY_RETURN_IF_ERROR(load(p + names.k + "weight", {H, H}, &L.wk));
    QUARRY_RETURN_IF_ERROR(load(p + names.k + "bias", {H}, &L.bk));
    QUARRY_RETURN_IF_ERROR(load(p + names.v + "weight", {H, H}, &L.wv));
    QUARRY_RETURN_IF_ERROR(load(p + names.v + "bias", {H}, &L.bv));
    QUARRY_RETURN_IF_ERROR(load(p + names.o + "weight", {H, H}, &L.wo));
    QUARRY_RETURN_IF_ERROR(load(p + names.o + "bias", {H}, &L.bo));
    QUARRY_RETURN_IF_ERROR(load(p + names.ln1 + "weight", {H}, &L.ln1_w));
    QUARRY_RETURN_IF_ERROR(load(p + names.ln1 + "bias", {H}, &L.ln1_b));
    QUARRY_RETURN_IF_ERROR(load(p + "intermediate.dense.weight", {F, H}, &L.w_in));
    QUARRY_RETURN_IF_ERROR(load(p + "intermediate.dense.bias", {F}, &L.b_in));
    QUARRY_RETURN_IF_ERROR(load(p + "output.dense.weight", {H, F}, &L.w_out));
    QUARRY_RETURN_IF_ERROR(load(p + "output.dense.bias", {H}, &L.b_out));
    QUARRY_RETURN_IF_ERROR(load(p + "output.LayerNorm.weight", {H}, &L.ln2_w));
    QUARRY_RETURN_IF_ERROR(load(p + "output.LayerNorm.bias", {H}, &L.ln2_b));
  }
  return m;
}

int RelativePositionBucket(int relative_position, int num_buckets, int max_distance) {
  // transformers' MPNet relative_position_bucket: n = -(key - query); the sign takes half the buckets.
  int n = -relative_position;
  const int half = num_buckets / 2;
  int bucket = n < 0 ? half : 0;
  n = std::abs(n);
  const int max_exact = half / 2;
  if (n < max_exact) return bucket + n;
  // float32 throughout, as torch computes log(n.float() / max_exact) / math.log(...) * (half - max_exact).
  const float scaled = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                       static_cast<float>(half - max_exact);
  return bucket + std::min(max_exact + static_cast<int>(scaled), half - 1);
}

Result<std::vector<float>> BertModel::Forward(const std::vector<int32_t>& ids) const { return ForwardBatch({ids}); }

Result<std::vector<float>> BertModel::ForwardBatch(const std::vector<std::vector<int32_t>>& sequences) const {
  const auto& c = config_;
  const size_t H = c.hidden_size, F = c.intermediate_size, heads = c.n_heads, d = c.head_dim;
  const size_t offset = static_cast<size_t>(c.position_offset);
  std::vector<size_t> begin(sequences.size() + 1, 0);  // first stacked row of each sequence
  for (size_t s = 0; s < sequences.size(); ++s) {
    const size_t n = sequences[s].size();
    const std::string which = sequences.size() > 1 ? " (sequence " + std::to_string(s) + ")" : "";
    if (n == 0) return Status::InvalidArgument("bert forward: no tokens" + which);
    if (n + offset > size_t(c.max_position_embeddings)) {
      return Status::InvalidArgument("bert forward: " + std::to_string(n) + " tokens exceed max_position_embeddings " +
                                     std::to_string(c.max_position_embeddings) +
                                     (offset ? " (positions start at " + std::to_string(offset) + ")" : "") + which);
    }
    for (size_t t = 0; t < n; ++t) {
      if (sequences[s][t] < 0 || sequences[s][t] >= c.vocab_size) {
        return Status::InvalidArgument("bert forward: token " + std::to_string(t) + " has an id out of range" + which);
      }
    }
    begin[s + 1] = begin[s] + n;
  }
  const size_t rows = begin.back();
  std::vector<float> x(rows * H), h(rows * H);
  for (size_t s = 0; s < sequences.size(); ++s) {
    for (size_t t = 0; t < sequences[s].size(); ++t) {
      const float* word = word_.data + size_t(sequences[s][t]) * H;
      const float* position = position_.data + (t + offset) * H;
      float* row = h.data() + (begin[s] + t) * H;
      for (size_t i = 0; i < H; ++i) row[i] = word[i] + position[i];
      if (c.type_vocab_size > 0) {
        for (size_t i = 0; i < H; ++i) row[i] += token_type_.data[i];
      }
    }
  }
  LayerNorm(h.data(), rows, H, emb_ln_w_.data, emb_ln_b_.data, c.norm_eps, x.data());
  // MPNet: per sequence, one bias per head and relative distance (key - query), shared by every layer.
  std::vector<std::vector<float>> relative(sequences.size());
  if (c.relative_attention_num_buckets > 0) {
    for (size_t s = 0; s < sequences.size(); ++s) {
      const size_t n = sequences[s].size();
      relative[s].resize(heads * (2 * n - 1));
      for (size_t r = 0; r < 2 * n - 1; ++r) {
        const int bucket = RelativePositionBucket(static_cast<int>(r) - static_cast<int>(n - 1),
                                                  c.relative_attention_num_buckets);
        for (size_t hd = 0; hd < heads; ++hd) {
          relative[s][hd * (2 * n - 1) + r] = relative_bias_.data[size_t(bucket) * heads + hd];
        }
      }
    }
  }
  std::vector<float> q(rows * H), k(rows * H), v(rows * H), attn(rows * H), inter(rows * F);
  for (const Layer& L : layers_) {
    Linear(x.data(), rows, H, L.wq.data, H, L.bq.data, q.data());
    Linear(x.data(), rows, H, L.wk.data, H, L.bk.data, k.data());
    Linear(x.data(), rows, H, L.wv.data, H, L.bv.data, v.data());
    tbb::parallel_for(size_t{0}, sequences.size(), [&](size_t s) {
      const size_t n = sequences[s].size(), at = begin[s] * H;
      std::vector<size_t> positions(n);
      for (size_t i = 0; i < n; ++i) positions[i] = i;
      Attention(q.data() + at, positions, k.data() + at, v.data() + at, n, heads, heads, d,
                AttentionMask::Bidirectional(n), attn.data() + at, relative[s].empty() ? nullptr : relative[s].data());
    });
    Linear(attn.data(), rows, H, L.wo.data, H, L.bo.data, h.data());
    AddInPlace(h.data(), x.data(), rows * H);
    LayerNorm(h.data(), rows, H, L.ln1_w.data, L.ln1_b.data, c.norm_eps, x.data());
    Linear(x.data(), rows, H, L.w_in.data, F, L.b_in.data, inter.data());
    GeluErf(inter.data(), rows * F);
    Linear(inter.data(), rows, F, L.w_out.data, H, L.b_out.data, h.data());
    AddInPlace(h.data(), x.data(), rows * H);
    LayerNorm(h.data(), rows, H, L.ln2_w.data, L.ln2_b.data, c.norm_eps, x.data());
  }
  return x;
}

std::vector<float> PoolCls(const std::vector<float>& hidden, size_t dim) {
  return std::vector<float>(hidden.begin(), hidden.begin() + dim);
}

std::vector<float> PoolMean(const float* hidden, size_t dim, size_t valid) {
  std::vector<double> sum(dim, 0.0);
  for (size_t t = 0; t < valid; ++t) {
    for (size_t i = 0; i < dim; ++i) sum[i] += hidden[t * dim + i];
  }
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(sum[i] / std::max<size_t>(valid, 1));
  return out;
}

}  // namespace quarry::model
