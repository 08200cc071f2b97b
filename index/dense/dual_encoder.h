// A dual encoder on the model/ runtime: a query tower and a document tower (here the same BERT-family
// checkpoint), each with its own text prefix ("query: ", "passage: "), pooling (the [CLS] row or the
// mean of the token rows), optional L2 normalisation and a maximum length in tokens.
// Thread-safe: Encode may run from many threads; batches are encoded in parallel (oneTBB).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/bert.h"
#include "model/wordpiece.h"
#include "quarry/status.h"

namespace quarry {

enum class Pooling { kCls, kMean };

struct DualEncoderOptions {
  // Default: "". Prepended to every query.
  std::string query_prefix;
  // Default: "". Prepended to every document.
  std::string document_prefix;
  // Default: kCls.
  Pooling pooling = Pooling::kCls;
  // Default: true. L2-normalise embeddings (inner product = cosine).
  bool normalize = true;
  // Default: 512. Tokens per text, [CLS] and [SEP] included.
  size_t max_length = 512;
};

class DualEncoder {
 public:
  static Result<std::unique_ptr<DualEncoder>> Load(const std::string& model_dir, const DualEncoderOptions& options = {});

  size_t dim() const { return model_->config().hidden_size; }
  const DualEncoderOptions& options() const { return options_; }
  // Row-major [texts.size(), dim()].
  Result<std::vector<float>> EncodeQueries(const std::vector<std::string>& texts) const;
  Result<std::vector<float>> EncodeDocuments(const std::vector<std::string>& texts) const;

 private:
  DualEncoder() = default;
  Result<std::vector<float>> Encode(const std::vector<std::string>& texts, const std::string& prefix) const;
  DualEncoderOptions options_;
  std::unique_ptr<model::BertModel> model_;
  std::unique_ptr<model::WordPieceTokenizer> tokenizer_;
};

}  // namespace quarry
