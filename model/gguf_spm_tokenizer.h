// llama.cpp's SentencePiece-style tokenizer (tokenizer.ggml.model "llama": Llama 2, Mistral and Gemma
// GGUF files) from the file's metadata alone, with ids equal to llama.cpp's (llama_tokenize with
// parse_special):
//   1. special tokens are cut out first, longest first: control (token_type 3), user-defined (4) and
//      unknown (2) tokens;
//   2. in each remaining fragment spaces become U+2581 ("▁"), after a leading space when the file asks
//      for one (tokenizer.ggml.add_space_prefix) and the fragment starts the text or follows a special
//      token;
//   3. the fragment's UTF-8 characters are merged pair by pair, the pair whose merged text is the
//      token of the highest score first (leftmost on ties), as long as some pair's text is a token;
//   4. each final piece is its token, or (a character the vocabulary lacks) one byte token <0xXX> per
//      byte.
// Thread-safe after construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/tokenizer.h"

namespace quarry::model {

class GgufFile;

class GgufSpmTokenizer : public Tokenizer {
 public:
  static Result<std::unique_ptr<GgufSpmTokenizer>> FromGguf(const GgufFile& gguf);

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  bool add_bos() const override { return add_bos_; }
  int32_t PieceToId(std::string_view piece) const override;

 private:
  GgufSpmTokenizer() = default;
  void EncodeFragment(std::string_view text, std::vector<int32_t>* ids) const;

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int64_t> types_;
  std::unordered_map<std::string, int32_t> token_ids_;
  std::vector<std::pair<std::string, int32_t>> specials_;  // longest first
  int32_t byte_tokens_[256];                               // <0xXX>, -1 when absent
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = true, add_space_prefix_ = true;
};

}  // namespace quarry::model
