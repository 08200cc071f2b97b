#include "model/wordpiece.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json.h"

namespace quarry::model {

namespace fs = std::filesystem;

namespace {

bool IsCjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool IsWhitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

bool IsControl(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const int8_t t = u_charType(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_UNASSIGNED || t == U_PRIVATE_USE_CHAR ||
         t == U_SURROGATE;
}

bool IsPunctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return U_GET_GC_MASK(c) & U_GC_P_MASK;
}

void AppendUtf8(std::string* out, UChar32 c) {
  char buf[4];
  int32_t len = 0;
  [[maybe_unused]] UBool err = false;
  U8_APPEND(reinterpret_cast<uint8_t*>(buf), len, 4, c, err);
  out->append(buf, len);
}

// A WordPiece model from Hugging Face's tokenizer.json (models that ship no vocab.txt): the vocabulary,
// and the BertNormalizer's lower-casing. Anything this tokenizer would not reproduce (another model
// type, prefix, word limit, normalizer or pre-tokenizer) is refused, naming the field.
Status ReadTokenizerJson(const std::string& path, std::unordered_map<std::string, int32_t>* vocab, bool* lower_case) {
  QUARRY_ASSIGN_OR_RETURN(const nlohmann::json j, ReadJsonFile(path));
  auto unsupported = [&](const std::string& what) {
    return Status::InvalidArgument(path + ": " + what + " is not supported (only BERT's WordPiece is)");
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) return unsupported("a file without a model");
  const nlohmann::json& model = j["model"];
  std::string type, prefix = "##";
  int32_t max_chars = 100;
  QUARRY_RETURN_IF_ERROR(JsonField(model, "type", &type, true, path + ": model"));
  if (type != "WordPiece") return unsupported("model type '" + type + "'");
  QUARRY_RETURN_IF_ERROR(JsonField(model, "continuing_subword_prefix", &prefix, false, path + ": model"));
  QUARRY_RETURN_IF_ERROR(JsonField(model, "max_input_chars_per_word", &max_chars, false, path + ": model"));
  if (prefix != "##") return unsupported("continuing_subword_prefix '" + prefix + "'");
  if (max_chars != 100) return unsupported("max_input_chars_per_word " + std::to_string(max_chars));
  if (!model.contains("vocab") || !model["vocab"].is_object()) return unsupported("a model without a vocab object");
  std::vector<bool> seen(model["vocab"].size(), false);
  for (const auto& [piece, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= static_cast<int64_t>(seen.size()) ||
        seen[id.get<size_t>()]) {
      return Status::InvalidArgument(path + ": vocab entry '" + piece + "' has a bad or repeated id");
    }
    seen[id.get<size_t>()] = true;
    vocab->emplace(piece, id.get<int32_t>());
  }
  const nlohmann::json normalizer = j.value("normalizer", nlohmann::json());
  if (!normalizer.is_null()) {
    if (!normalizer.is_object() || normalizer.value("type", "") != "BertNormalizer") {
      return unsupported("normalizer " + normalizer.dump());
    }
    bool clean = true, chinese = true;
    QUARRY_RETURN_IF_ERROR(JsonField(normalizer, "lowercase", lower_case, false, path + ": normalizer"));
    QUARRY_RETURN_IF_ERROR(JsonField(normalizer, "clean_text", &clean, false, path + ": normalizer"));
    QUARRY_RETURN_IF_ERROR(JsonField(normalizer, "handle_chinese_chars", &chinese, false, path + ": normalizer"));
    bool strip = *lower_case;  // null: accents are stripped exactly when lower-casing
    QUARRY_RETURN_IF_ERROR(JsonField(normalizer, "strip_accents", &strip, false, path + ": normalizer"));
    if (!clean || !chinese || strip != *lower_case) return unsupported("normalizer " + normalizer.dump());
  }
  const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
  if (!pre.is_object() || pre.value("type", "") != "BertPreTokenizer") return unsupported("pre_tokenizer " + pre.dump());
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::Load(const std::string& path) {
  const bool is_dir = fs::is_directory(path);
  std::string vocab_path = is_dir ? path + "/vocab.txt" : path;
  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());
  bool json_lower_case = true, from_json = false;
  if (is_dir && !fs::exists(vocab_path) && fs::exists(path + "/tokenizer.json")) {
    vocab_path = path + "/tokenizer.json";
    QUARRY_RETURN_IF_ERROR(ReadTokenizerJson(vocab_path, &t->vocab_, &json_lower_case));
    from_json = true;
  } else {
    std::ifstream in(vocab_path);
    if (!in) return Status::NotFound(vocab_path + ": cannot open vocabulary");
    std::string line;
    for (int32_t id = 0; std::getline(in, line); ++id) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      t->vocab_.emplace(line, id);
    }
  }
  // Special tokens: BertTokenizer's names unless tokenizer_config.json names others (MPNet: <s> </s>
  // <pad> <mask>, with [UNK]); a name is a string or an AddedToken object {"content": ...}.
  std::string names[] = {"[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"};
  const char* fields[] = {"cls_token", "sep_token", "unk_token", "pad_token", "mask_token"};
  const fs::path config = (is_dir ? fs::path(path) : fs::path(path).parent_path()) / "tokenizer_config.json";
  auto j = ReadJsonFile(config.string());
  if (j.ok()) {
    if (!j->is_object()) return Status::InvalidArgument(config.string() + ": not a JSON object");
    QUARRY_RETURN_IF_ERROR(JsonField(*j, "do_lower_case", &t->lower_case_, false, config.string()));
    for (size_t i = 0; i < 5; ++i) {
      auto it = j->find(fields[i]);
      if (it == j->end() || it->is_null()) continue;
      if (it->is_object()) {
        QUARRY_RETURN_IF_ERROR(JsonField(*it, "content", &names[i], true, config.string() + ": " + fields[i]));
      } else {
        QUARRY_RETURN_IF_ERROR(JsonField(*j, fields[i], &names[i], false, config.string()));
      }
    }
  } else if (j.status().code() != StatusCode::kNotFound) {
    return j.status();
  }
  if (from_json) t->lower_case_ = json_lower_case;  // the normalizer is what HF's fast tokenizer applies
  auto id_of = [&](const std::string& piece) -> int32_t {
    auto it = t->vocab_.find(piece);
    return it == t->vocab_.end() ? -1 : it->second;
  };
  t->cls_ = id_of(names[0]);
  t->sep_ = id_of(names[1]);
  t->unk_ = id_of(names[2]);
  t->pad_ = id_of(names[3]);
  t->unk_piece_ = names[2];
  if (t->cls_ < 0 || t->sep_ < 0 || t->unk_ < 0) {
    return Status::InvalidArgument(vocab_path + ": vocabulary lacks the special tokens " + names[0] + ", " + names[1] +
                                   " or " + names[2]);
  }
  for (const std::string& name : names) {
    if (id_of(name) >= 0) t->special_.push_back(name);
  }
  return t;
}

std::vector<std::string> WordPieceTokenizer::BasicTokens(std::string_view text) const {
  // Clean, and put spaces around CJK ideographs.
  std::string cleaned;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  for (int32_t i = 0, n = static_cast<int32_t>(text.size()); i < n;) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0 || c == 0 || c == 0xFFFD || IsControl(c)) continue;
    if (IsWhitespace(c)) cleaned.push_back(' ');
    else if (IsCjk(c)) cleaned.push_back(' '), AppendUtf8(&cleaned, c), cleaned.push_back(' ');
    else AppendUtf8(&cleaned, c);
  }
  if (lower_case_) {
    UErrorCode err = U_ZERO_ERROR;
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(cleaned);
    u.toLower(icu::Locale::getRoot());
    const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
    icu::UnicodeString decomposed = U_SUCCESS(err) ? nfd->normalize(u, err) : u;
    icu::UnicodeString stripped;
    for (int32_t i = 0; i < decomposed.length();) {
      const UChar32 c = decomposed.char32At(i);
      if (u_charType(c) != U_NON_SPACING_MARK) stripped.append(c);
      i += U16_LENGTH(c);
    }
    cleaned.clear();
    stripped.toUTF8String(cleaned);
  }
  // Split on whitespace, and every punctuation character is a token of its own.
  std::vector<std::string> tokens;
  std::string current;
  p = reinterpret_cast<const uint8_t*>(cleaned.data());
  for (int32_t i = 0, n = static_cast<int32_t>(cleaned.size()); i < n;) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c == ' ') {
      if (!current.empty()) tokens.push_back(std::move(current)), current.clear();
    } else if (IsPunctuation(c)) {
      if (!current.empty()) tokens.push_back(std::move(current)), current.clear();
      std::string punct;
      AppendUtf8(&punct, c);
      tokens.push_back(std::move(punct));
    } else {
      AppendUtf8(&current, c);
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

std::vector<std::string> WordPieceTokenizer::Tokenize(std::string_view text) const {
  // Special tokens written in the text are tokens of their own, matched before normalisation (as HF's
  // added tokens with normalized=false are); the text between them is tokenized normally.
  std::vector<std::string> pieces;
  while (!text.empty()) {
    size_t at = std::string_view::npos;
    const std::string* found = nullptr;
    for (const std::string& special : special_) {
      const size_t pos = text.find(special);
      if (pos == std::string_view::npos) continue;
      // The earliest match; the longest of those starting at the same place.
      if (pos < at || (pos == at && special.size() > found->size())) at = pos, found = &special;
    }
    TokenizeSegment(text.substr(0, at), &pieces);
    if (!found) break;
    pieces.push_back(*found);
    text.remove_prefix(at + found->size());
  }
  return pieces;
}

void WordPieceTokenizer::TokenizeSegment(std::string_view text, std::vector<std::string>* out) const {
  std::vector<std::string>& pieces = *out;
  for (const std::string& word : BasicTokens(text)) {
    std::vector<int32_t> starts;  // code point boundaries
    const auto* p = reinterpret_cast<const uint8_t*>(word.data());
    for (int32_t i = 0, n = static_cast<int32_t>(word.size()); i < n;) {
      starts.push_back(i);
      U8_FWD_1(p, i, n);
    }
    if (starts.size() > 100) {
      pieces.push_back(unk_piece_);
      continue;
    }
    starts.push_back(static_cast<int32_t>(word.size()));
    std::vector<std::string> word_pieces;
    bool bad = false;
    for (size_t s = 0; s + 1 < starts.size() && !bad;) {
      size_t e = starts.size() - 1;
      std::string match;
      for (; e > s; --e) {
        std::string candidate = (s > 0 ? "##" : "") + word.substr(starts[s], starts[e] - starts[s]);
        if (vocab_.count(candidate)) {
          match = std::move(candidate);
          break;
        }
      }
      if (e == s) bad = true;
      else word_pieces.push_back(std::move(match)), s = e;
    }
    if (bad) pieces.push_back(unk_piece_);
    else pieces.insert(pieces.end(), word_pieces.begin(), word_pieces.end());
  }
}

std::vector<int32_t> WordPieceTokenizer::Encode(std::string_view text, size_t max_length) const {
  std::vector<int32_t> ids = {cls_};
  for (const auto& piece : Tokenize(text)) {
    auto it = vocab_.find(piece);
    ids.push_back(it == vocab_.end() ? unk_ : it->second);
  }
  if (max_length >= 2 && ids.size() + 1 > max_length) ids.resize(max_length - 1);
  ids.push_back(sep_);
  return ids;
}

}  // namespace quarry::model
