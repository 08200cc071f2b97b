#include "index/dense/dual_encoder.h"

#include <tbb/parallel_for.h>

#include <cmath>

namespace quarry {

Result<std::unique_ptr<DualEncoder>> DualEncoder::Load(const std::string& model_dir, const DualEncoderOptions& options) {
  std::unique_ptr<DualEncoder> e(new DualEncoder());
  e->options_ = options;
  QUARRY_ASSIGN_OR_RETURN(e->model_, model::BertModel::Load(model_dir));
  QUARRY_ASSIGN_OR_RETURN(e->tokenizer_, model::WordPieceTokenizer::Load(model_dir));
  const size_t limit = static_cast<size_t>(e->model_->config().max_position_embeddings);
  if (e->options_.max_length == 0 || e->options_.max_length > limit) e->options_.max_length = limit;
  return e;
}

Result<std::vector<float>> DualEncoder::EncodeQueries(const std::vector<std::string>& texts) const {
  return Encode(texts, options_.query_prefix);
}

Result<std::vector<float>> DualEncoder::EncodeDocuments(const std::vector<std::string>& texts) const {
  return Encode(texts, options_.document_prefix);
}

Result<std::vector<float>> DualEncoder::Encode(const std::vector<std::string>& texts, const std::string& prefix) const {
  const size_t d = dim();
  std::vector<float> out(texts.size() * d);
  std::vector<Status> errors(texts.size());
  tbb::parallel_for(size_t{0}, texts.size(), [&](size_t i) {
    const std::vector<int32_t> ids = tokenizer_->Encode(prefix + texts[i], options_.max_length);
    auto hidden = model_->Forward(ids);
    if (!hidden.ok()) {
      errors[i] = hidden.status().WithContext("text " + std::to_string(i));
      return;
    }
    const std::vector<float> pooled =
        options_.pooling == Pooling::kCls ? model::PoolCls(*hidden, d) : model::PoolMean(*hidden, d, ids.size());
    float* row = out.data() + i * d;
    std::copy(pooled.begin(), pooled.end(), row);
    if (options_.normalize) {
      double norm = 0;
      for (size_t j = 0; j < d; ++j) norm += double(row[j]) * row[j];
      const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (size_t j = 0; j < d; ++j) row[j] *= inv;
    }
  });
  for (const auto& e : errors) {
    if (!e.ok()) return e;
  }
  return out;
}

}  // namespace quarry
