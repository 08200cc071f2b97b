#include "model/tokenizer.h"

#include <filesystem>

#include "model/bpe_tokenizer.h"
#include "model/gguf.h"
#include "model/gguf_spm_tokenizer.h"
#include "model/sp_tokenizer.h"

namespace quarry::model {

std::vector<TextFragment> SplitSpecials(std::string_view text, const std::vector<std::pair<std::string, int32_t>>& specials) {
  std::vector<TextFragment> fragments{{text, -1}};
  for (const auto& [content, id] : specials) {
    std::vector<TextFragment> next;
    for (const TextFragment& f : fragments) {
      if (f.special >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t at; (at = rest.find(content)) != std::string_view::npos;) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({{}, id});
        rest.remove_prefix(at + content.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments = std::move(next);
  }
  return fragments;
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  if (IsGgufFile(path)) {
    QUARRY_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(path));
    QUARRY_ASSIGN_OR_RETURN(const std::string model, gguf->GetString("tokenizer.ggml.model"));
    if (model == "llama") {
      QUARRY_ASSIGN_OR_RETURN(auto spm, GgufSpmTokenizer::FromGguf(*gguf));
      return std::unique_ptr<Tokenizer>(std::move(spm));
    }
    QUARRY_ASSIGN_OR_RETURN(auto bpe, BpeTokenizer::FromGguf(*gguf));
    return std::unique_ptr<Tokenizer>(std::move(bpe));
  }
  // Hugging Face's tokenizer.json (byte-level BPE), given as the file or as a directory that has no
  // tokenizer.model beside it.
  namespace fs = std::filesystem;
  const bool is_dir = fs::is_directory(path);
  const std::string json = is_dir ? path + "/tokenizer.json" : path;
  if (json.ends_with("tokenizer.json") && fs::exists(json) && !(is_dir && fs::exists(path + "/tokenizer.model"))) {
    const std::string dir = fs::path(json).parent_path().string();
    QUARRY_ASSIGN_OR_RETURN(auto bpe, BpeTokenizer::FromTokenizerJson(json, (dir.empty() ? "." : dir) + "/tokenizer_config.json"));
    return std::unique_ptr<Tokenizer>(std::move(bpe));
  }
  QUARRY_ASSIGN_OR_RETURN(auto sp, SentencePieceTokenizer::Load(path));
  return std::unique_ptr<Tokenizer>(std::move(sp));
}

}  // namespace quarry::model
