// A dual encoder on the model/ runtime: a query tower and a document tower (here the same checkpoint),
// each with its own text prefix ("query: ", "passage: "), pooling, optional L2 normalisation and a
// maximum length in tokens. The checkpoint is BERT-family (WordPiece, bidirectional; [CLS] or mean
// pooling) or Llama-family (SentencePiece with <s>, causal; last-token or mean pooling), told apart by
// config.json's model_type.
// Thread-safe: Encode may run from many threads; batches are encoded in parallel (oneTBB).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/bert.h"
#include "model/llama.h"
#include "model/sp_tokenizer.h"
#include "model/wordpiece.h"
#include "quarry/status.h"

namespace quarry {

enum class Pooling {
  kCls,        // the first row ([CLS] for BERT)
  kMean,       // the mean of the token rows
  kLastToken,  // the last row (decoder embedders: the only row that has seen the whole text)
  kDefault,    // kCls for BERT-family checkpoints, kLastToken for Llama-family ones
};

struct DualEncoderOptions {
  // Default: "". Prepended to every query.
  std::string query_prefix;
  // Default: "". Prepended to every document.
  std::string document_prefix;
  // Default: kDefault.
  Pooling pooling = Pooling::kDefault;
  // Default: true. L2-normalise embeddings (inner product = cosine).
  bool normalize = true;
  // Default: 512. Tokens per text, [CLS] and [SEP] included.
  size_t max_length = 512;
};

class DualEncoder {
 public:
  static Result<std::unique_ptr<DualEncoder>> Load(const std::string& model_dir, const DualEncoderOptions& options = {});

  size_t dim() const { return static_cast<size_t>(hidden_size_); }
  const DualEncoderOptions& options() const { return options_; }
  // Row-major [texts.size(), dim()].
  Result<std::vector<float>> EncodeQueries(const std::vector<std::string>& texts) const;
  Result<std::vector<float>> EncodeDocuments(const std::vector<std::string>& texts) const;
  // The token ids a text becomes (prefix included, special tokens added, cut at max_length).
  std::vector<int32_t> Tokenize(const std::string& text) const;
  // Embeds already tokenized sequences (as Tokenize gives), row-major [sequences.size(), dim()].
  Result<std::vector<float>> EncodeIds(const std::vector<std::vector<int32_t>>& sequences) const;

 private:
  DualEncoder() = default;
  Result<std::vector<float>> Encode(const std::vector<std::string>& texts, const std::string& prefix) const;
  DualEncoderOptions options_;
  int hidden_size_ = 0;
  std::unique_ptr<model::BertModel> bert_;
  std::unique_ptr<model::WordPieceTokenizer> wordpiece_;
  std::unique_ptr<model::LlamaModel> llama_;
  std::unique_ptr<model::SentencePieceTokenizer> sentencepiece_;
};

}  // namespace quarry
