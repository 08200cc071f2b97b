#include "index/dense/dual_encoder.h"

#include <tbb/parallel_for.h>

#include <cmath>

#include "model/config.h"
#include "model/sentence_transformers.h"

namespace quarry {

Result<std::unique_ptr<DualEncoder>> DualEncoder::Load(const std::string& model_dir, const DualEncoderOptions& options) {
  std::unique_ptr<DualEncoder> e(new DualEncoder());
  QUARRY_ASSIGN_OR_RETURN(const auto st, model::LoadSentenceTransformerConfig(model_dir));
  const std::string& dir = st.transformer_dir;
  QUARRY_ASSIGN_OR_RETURN(auto config, model::LoadConfig(dir));
  DualEncoderOptions& o = e->options_;
  o = options;
  if (config.arch == model::Architecture::kBert) {
    QUARRY_ASSIGN_OR_RETURN(e->bert_, model::BertModel::Load(dir));
    QUARRY_ASSIGN_OR_RETURN(e->wordpiece_, model::WordPieceTokenizer::Load(dir));
    if (st.lower_case && !e->wordpiece_->lower_case()) {
      return Status::InvalidArgument(dir + "/sentence_bert_config.json: do_lower_case with a cased tokenizer is not supported");
    }
  } else {
    // An embedder needs the final norm, not the LM head.
    QUARRY_ASSIGN_OR_RETURN(e->llama_, model::LlamaModel::Load(dir, {.n_layers = -1, .head = false}));
    QUARRY_ASSIGN_OR_RETURN(e->decoder_tokenizer_, model::LoadTokenizer(dir));
    if (st.lower_case) return Status::InvalidArgument(dir + "/sentence_bert_config.json: do_lower_case is not supported here");
  }
  if (o.pooling == Pooling::kDefault) {
    if (st.pooling) {
      o.pooling = *st.pooling == model::PoolingMode::kMean  ? Pooling::kMean
                  : *st.pooling == model::PoolingMode::kCls ? Pooling::kCls
                                                            : Pooling::kLastToken;
    } else {
      o.pooling = config.arch == model::Architecture::kBert ? Pooling::kCls : Pooling::kLastToken;
    }
  }
  if (!o.normalize) o.normalize = st.normalize.value_or(true);
  if (!o.query_prefix) o.query_prefix = st.query_prompt.value_or("");
  if (!o.document_prefix) o.document_prefix = st.document_prompt.value_or("");
  if (o.max_length == 0) o.max_length = st.max_seq_length > 0 ? st.max_seq_length : 512;
  const size_t positions = static_cast<size_t>(config.max_position_embeddings);
  if (positions > 0 && o.max_length > positions) o.max_length = positions;
  e->hidden_size_ = config.hidden_size;
  return e;
}

Result<std::vector<float>> DualEncoder::EncodeQueries(const std::vector<std::string>& texts) const {
  return Encode(texts, *options_.query_prefix);
}

Result<std::vector<float>> DualEncoder::EncodeDocuments(const std::vector<std::string>& texts) const {
  return Encode(texts, *options_.document_prefix);
}

std::vector<int32_t> DualEncoder::Tokenize(const std::string& text) const {
  if (wordpiece_) return wordpiece_->Encode(text, options_.max_length);
  std::vector<int32_t> ids;
  if (decoder_tokenizer_->add_bos() && decoder_tokenizer_->bos_id() >= 0) ids.push_back(decoder_tokenizer_->bos_id());
  const auto pieces = decoder_tokenizer_->Encode(text);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (options_.max_length > 0 && ids.size() > options_.max_length) ids.resize(options_.max_length);
  return ids;
}

Result<std::vector<float>> DualEncoder::Encode(const std::vector<std::string>& texts, const std::string& prefix) const {
  std::vector<std::vector<int32_t>> sequences(texts.size());
  tbb::parallel_for(size_t{0}, texts.size(), [&](size_t i) { sequences[i] = Tokenize(prefix + texts[i]); });
  return EncodeIds(sequences);
}

namespace {

// Tokens per stacked BERT forward: big enough that each weight matrix is packed once for many texts,
// small enough that the activations stay modest (hidden 768, intermediate 3072: ~150 MB).
constexpr size_t kTokensPerForward = 8192;

}  // namespace

Result<std::vector<float>> DualEncoder::EncodeIds(const std::vector<std::vector<int32_t>>& sequences) const {
  const size_t d = dim();
  std::vector<float> out(sequences.size() * d);
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) return Status::InvalidArgument("dual encoder: sequence " + std::to_string(i) + " has no tokens");
  }
  // Pools the hidden rows of sequence i into out's row i and normalises it.
  auto pool = [&](size_t i, const float* hidden) {
    const size_t n = sequences[i].size();
    float* row = out.data() + i * d;
    switch (options_.pooling) {
      case Pooling::kMean: {
        const std::vector<float> mean = model::PoolMean(hidden, d, n);
        std::copy(mean.begin(), mean.end(), row);
        break;
      }
      case Pooling::kLastToken: std::copy(hidden + (n - 1) * d, hidden + n * d, row); break;
      default: std::copy(hidden, hidden + d, row); break;
    }
    if (*options_.normalize) {
      double norm = 0;
      for (size_t j = 0; j < d; ++j) norm += double(row[j]) * row[j];
      const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (size_t j = 0; j < d; ++j) row[j] *= inv;
    }
  };
  if (bert_) {
    for (size_t first = 0; first < sequences.size();) {
      size_t last = first, tokens = 0;
      while (last < sequences.size() && (last == first || tokens + sequences[last].size() <= kTokensPerForward)) {
        tokens += sequences[last++].size();
      }
      const std::vector<std::vector<int32_t>> chunk(sequences.begin() + first, sequences.begin() + last);
      auto hidden = bert_->ForwardBatch(chunk);
      if (!hidden.ok()) return hidden.status().WithContext("texts " + std::to_string(first) + ".." + std::to_string(last - 1));
      size_t row = 0;
      for (size_t i = first; i < last; ++i) {
        pool(i, hidden->data() + row * d);
        row += sequences[i].size();
      }
      first = last;
    }
    return out;
  }
  std::vector<Status> errors(sequences.size());
  tbb::parallel_for(size_t{0}, sequences.size(), [&](size_t i) {
    auto h = llama_->Forward(sequences[i], {}, model::AttentionMask::Causal(), {.logits = false});
    if (!h.ok()) {
      errors[i] = h.status().WithContext("text " + std::to_string(i));
      return;
    }
    pool(i, h->hidden.data());
  });
  for (const auto& e : errors) {
    if (!e.ok()) return e;
  }
  return out;
}

}  // namespace quarry
