#include "model/tokenizer.h"

#include "model/bpe_tokenizer.h"
#include "model/gguf.h"
#include "model/sp_tokenizer.h"

namespace quarry::model {

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  if (IsGgufFile(path)) {
    QUARRY_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(path));
    QUARRY_ASSIGN_OR_RETURN(auto bpe, BpeTokenizer::FromGguf(*gguf));
    return std::unique_ptr<Tokenizer>(std::move(bpe));
  }
  QUARRY_ASSIGN_OR_RETURN(auto sp, SentencePieceTokenizer::Load(path));
  return std::unique_ptr<Tokenizer>(std::move(sp));
}

}  // namespace quarry::model
