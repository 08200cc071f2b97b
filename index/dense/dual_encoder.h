// A dual encoder on the model/ runtime: a query tower and a document tower (here the same checkpoint),
// each with its own text prefix ("query: ", "passage: "), pooling, optional L2 normalisation and a
// maximum length in tokens, as sentence-transformers' SentenceTransformer.encode computes them. The
// checkpoint is BERT-family (WordPiece, bidirectional; [CLS] or mean pooling) or Llama-family
// (SentencePiece with <s>, causal; last-token or mean pooling), told apart by config.json's model_type,
// or a GGUF decoder file (llama, qwen2, gemma3: its own tokenizer, BOS as its tokenizer.ggml.add_bos_token says);
// a sentence-transformers directory (modules.json) is read as that library reads it.
// Thread-safe: Encode may run from many threads; batches are encoded in parallel (oneTBB).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/bert.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "model/wordpiece.h"
#include "quarry/status.h"

namespace quarry {

enum class Pooling {
  kCls,        // the first row ([CLS] for BERT)
  kMean,       // the mean of the token rows
  kLastToken,  // the last row (decoder embedders: the only row that has seen the whole text)
  kDefault,    // kCls for BERT-family checkpoints, kLastToken for Llama-family ones
};

// Every option left unset follows the model: a sentence-transformers directory's own modules.json,
// sentence_bert_config.json and prompts (model/sentence_transformers.h), else the defaults below.
struct DualEncoderOptions {
  // Default: the model's "query" prompt, else "". Prepended to every query.
  std::optional<std::string> query_prefix;
  // Default: the model's "document" (or "passage") prompt, else "". Prepended to every document.
  std::optional<std::string> document_prefix;
  // Default: the model's Pooling module, else kCls for BERT-family and kLastToken for Llama-family.
  Pooling pooling = Pooling::kDefault;
  // Default: whether the model has a Normalize module, else true. L2-normalise embeddings.
  std::optional<bool> normalize;
  // Default (0): the model's max_seq_length, else 512; never more than its position embeddings. Tokens
  // per text, special tokens included.
  size_t max_length = 0;
};

class DualEncoder {
 public:
  static Result<std::unique_ptr<DualEncoder>> Load(const std::string& model_dir, const DualEncoderOptions& options = {});

  size_t dim() const { return static_cast<size_t>(hidden_size_); }
  // The options in effect: every field resolved (set) by Load.
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
  std::unique_ptr<model::Tokenizer> decoder_tokenizer_;
};

}  // namespace quarry
