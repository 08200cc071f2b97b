#include "model/tokenizer.h"

#include <algorithm>
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

Result<GgufVocab> ReadGgufVocab(const GgufFile& g, bool add_bos_default) {
  const std::string& path = g.path();
  GgufVocab v;
  QUARRY_ASSIGN_OR_RETURN(v.tokens, g.GetStrings("tokenizer.ggml.tokens"));
  const size_t n = v.tokens->size();
  if (n == 0) return Status::InvalidArgument(path + ": tokenizer.ggml.tokens is empty");
  v.types.assign(n, 1);
  if (g.Has("tokenizer.ggml.token_type")) {
    QUARRY_ASSIGN_OR_RETURN(const std::vector<int64_t>* types, g.GetInts("tokenizer.ggml.token_type"));
    if (types->size() != n) {
      return Status::InvalidArgument(path + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    v.types = *types;
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t type = v.types[i];
    if ((type == 2 || type == 3 || type == 4) && !(*v.tokens)[i].empty()) v.specials.emplace_back((*v.tokens)[i], static_cast<int32_t>(i));
  }
  std::stable_sort(v.specials.begin(), v.specials.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  auto token_id = [&](const char* key, int32_t* out) -> Status {
    if (!g.Has(key)) return Status::Ok();
    QUARRY_ASSIGN_OR_RETURN(const int64_t id, g.GetInt(key));
    if (id < 0 || id >= static_cast<int64_t>(n)) {
      return Status::InvalidArgument(path + ": " + key + " " + std::to_string(id) + " is outside the vocabulary");
    }
    *out = static_cast<int32_t>(id);
    return Status::Ok();
  };
  QUARRY_RETURN_IF_ERROR(token_id("tokenizer.ggml.bos_token_id", &v.bos));
  QUARRY_RETURN_IF_ERROR(token_id("tokenizer.ggml.eos_token_id", &v.eos));
  v.add_bos = add_bos_default;
  if (g.Has("tokenizer.ggml.add_bos_token")) {
    QUARRY_ASSIGN_OR_RETURN(v.add_bos, g.GetBool("tokenizer.ggml.add_bos_token"));
  }
  return v;
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
