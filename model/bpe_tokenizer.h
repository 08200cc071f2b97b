// Byte-level BPE (GPT-2's scheme: SmolLM, Qwen2, Llama 3) from a GGUF file's tokenizer.ggml.*
// metadata, with ids equal to llama.cpp's (llama_tokenize with parse_special) on the same file, or from
// Hugging Face's tokenizer.json, with ids equal to the tokenizers library's (encode without special
// tokens; the post-processor's BOS is add_bos()/bos_id()):
//   1. special tokens are cut out first, longest first: control tokens (token_type 3) and
//      user-defined ones (4);
//   2. each remaining fragment is split by the pre-tokenizer regex `tokenizer.ggml.pre` names
//      (gpt-2; smollm: every digit alone, then gpt-2; qwen2: llama 3's regex with single digits;
//      llama-bpe: llama 3's, digits in threes, whole words found in the vocabulary taken as they are),
//      with Unicode letters, numbers and white space as ICU classifies them;
//   3. each piece's bytes are mapped to GPT-2's printable characters and merged pair by pair, the
//      lowest-ranked merge first (leftmost on ties).
// Bytes that are not valid UTF-8 are kept (each is a non-letter, non-number, non-space character), so
// nothing is lost. A tokenizer.json's NFC normalizer is applied to the text between special tokens.
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

class BpeTokenizer : public Tokenizer {
 public:
  enum class PreTokenizer { kGpt2, kSmolLm, kQwen2, kLlama3 };

  static Result<std::unique_ptr<BpeTokenizer>> FromGguf(const GgufFile& gguf);
  // A tokenizer.json whose model is BPE over GPT-2's byte characters, laid out as the four families'
  // files are (pre-tokenizer ByteLevel; Digits + ByteLevel; or Split by Qwen2's or Llama 3's regex +
  // ByteLevel; normalizer none or NFC; special added tokens; post-processor ByteLevel or a template
  // that prepends one special token). Anything else is refused, naming the field. `config_path`, when
  // the file exists (tokenizer_config.json), names the EOS token.
  static Result<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(const std::string& path,
                                                                 const std::string& config_path = "");

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(const std::vector<int32_t>& ids) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  bool add_bos() const override { return add_bos_; }
  int32_t PieceToId(std::string_view piece) const override;
  PreTokenizer pre_tokenizer() const { return pre_; }

  // The pre-tokenizer's pieces of `text` (no special-token handling), for tests.
  std::vector<std::string> PreTokenize(std::string_view text) const;

 private:
  BpeTokenizer() = default;
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  PreTokenizer pre_ = PreTokenizer::kGpt2;
  bool ignore_merges_ = false;  // llama 3: a piece that is a whole token is not merged
  bool nfc_ = false;            // tokenizer.json's NFC normalizer (Qwen2)
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_ids_;
  std::unordered_map<std::string, int32_t> merge_ranks_;  // "left right" -> rank
  std::vector<std::pair<std::string, int32_t>> specials_;  // longest first
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false;
};

}  // namespace quarry::model
