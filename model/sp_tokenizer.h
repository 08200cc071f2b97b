// SentencePiece tokenization (libsentencepiece) as Hugging Face's tokenizers apply it to Llama/Mistral
// models: special tokens (<s>, </s>, [INST], [/INST], <unk> and the model's other control pieces) are
// recognised inside the text, and the text between them is encoded in one of HF's two modes:
//   legacy = true : every segment gets a leading "▁" (HF's Prepend("▁") normalizer);
//   legacy = false: only a segment at the very start of the text gets one, and not when it already
//                   starts with a space (HF's Metaspace, prepend_scheme "first").
// The mode comes from tokenizer_config.json's "legacy" (absent: true, as transformers defaults), or
// an explicit override. Thread-safe after Load.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/tokenizer.h"
#include "quarry/status.h"

namespace sentencepiece { class SentencePieceProcessor; }

namespace quarry::model {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `path`: a model directory holding tokenizer.model (and maybe tokenizer_config.json), or the
  // .model file itself. `legacy` overrides tokenizer_config.json.
  static Result<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path,
                                                              std::optional<bool> legacy = std::nullopt);
  ~SentencePieceTokenizer() override;

  // Token ids of `text`, special tokens recognised; no BOS is added.
  std::vector<int32_t> Encode(std::string_view text) const override;
  // SentencePiece alone over the whole text (no special-token handling), for comparison.
  std::vector<int32_t> EncodePlain(std::string_view text) const;
  std::string Decode(const std::vector<int32_t>& ids) const override;

  bool legacy() const { return legacy_; }
  int32_t bos_id() const override;
  int32_t eos_id() const override;
  int32_t vocab_size() const override;
  // -1 when `piece` is not in the vocabulary.
  int32_t PieceToId(std::string_view piece) const override;

 private:
  SentencePieceTokenizer();
  void EncodeSegment(std::string_view segment, bool prefix, std::vector<int32_t>* ids) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> with_prefix_, without_prefix_;
  std::vector<std::pair<std::string, int32_t>> specials_[256];  // by first byte, longest first
  bool legacy_ = true;
};

// Returns the serialized ModelProto with normalizer_spec.add_dummy_prefix set to false (protobuf:
// a repeated scalar field's last value wins, so it is appended to the normalizer_spec message).
Result<std::string> WithoutDummyPrefix(const std::string& model_proto);

}  // namespace quarry::model
