// What decoders need from a tokenizer, whichever kind the checkpoint ships: SentencePiece
// (tokenizer.model: Llama 2, Mistral) or byte-level BPE (GGUF metadata or tokenizer.json: SmolLM,
// Qwen2, Llama 3).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quarry/status.h"

namespace quarry::model {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`, the model's special tokens recognised inside it; no BOS is added.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the model has none
  virtual int32_t eos_id() const = 0;
  virtual int32_t vocab_size() const = 0;
  // Whether prompts start with bos_id() (tokenizer.ggml.add_bos_token; SentencePiece models: true).
  virtual bool add_bos() const { return true; }
  // -1 when `piece` is not a token (pieces as the vocabulary spells them).
  virtual int32_t PieceToId(std::string_view piece) const = 0;
};

// A piece of text between special tokens, or a special token (`special` >= 0: its id).
struct TextFragment {
  std::string_view text;
  int32_t special = -1;
};
// Cuts the special tokens `specials` (content, id; longest first) out of `text`, longest first, as
// llama.cpp's tokenizer_st_partition does; the text between them is returned as raw fragments.
std::vector<TextFragment> SplitSpecials(std::string_view text, const std::vector<std::pair<std::string, int32_t>>& specials);

// What both GGUF tokenizers read alike from tokenizer.ggml.*: the tokens, their types (1, normal, for
// every token when the file gives none), the special tokens (types 2 unknown, 3 control, 4 user-defined;
// longest first, as SplitSpecials wants them), the BOS and EOS ids (-1 when absent) and add_bos_token
// (`add_bos_default` when absent). Errors name the file and the key.
class GgufFile;
struct GgufVocab {
  const std::vector<std::string>* tokens = nullptr;
  std::vector<int64_t> types;
  std::vector<std::pair<std::string, int32_t>> specials;
  int32_t bos = -1, eos = -1;
  bool add_bos = false;
};
Result<GgufVocab> ReadGgufVocab(const GgufFile& gguf, bool add_bos_default);

// `path`: a GGUF file (its tokenizer.ggml.* metadata), a checkpoint directory with tokenizer.model
// (SentencePiece), or a tokenizer.json (byte-level BPE; the file, or a directory holding it and no
// tokenizer.model).
Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path);

}  // namespace quarry::model
