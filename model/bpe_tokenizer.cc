#include "model/bpe_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <queue>

#include "common/json.h"
#include "model/gguf.h"

namespace quarry::model {

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100 onwards in byte order. Both directions, as UTF-8 strings / codepoints.
struct ByteMap {
  std::string to_text[256];
  int32_t from_cp[512];
  ByteMap() {
    std::fill(std::begin(from_cp), std::end(from_cp), -1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const int cp = printable ? b : next++;
      char buf[4];
      int32_t len = 0;
      U8_APPEND_UNSAFE(buf, len, cp);
      to_text[b].assign(buf, len);
      from_cp[cp] = b;
    }
  }
};
const ByteMap& Bytes() {
  static const ByteMap map;
  return map;
}

// One character of a fragment: its bytes in the text and the classes the regexes test. A byte that
// is not valid UTF-8 is a character of its own with no class (so it groups with punctuation).
struct Char {
  uint32_t begin, end;
  UChar32 cp;  // -1 for an invalid byte
  bool letter, number, space;
};

std::vector<Char> Classify(std::string_view s) {
  std::vector<Char> out;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < n;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    Char ch{uint32_t(start), uint32_t(i), c, false, false, false};
    if (c >= 0) {
      const uint32_t mask = U_GET_GC_MASK(c);
      ch.letter = (mask & U_GC_L_MASK) != 0;
      ch.number = (mask & U_GC_N_MASK) != 0;
      ch.space = u_isUWhiteSpace(c);
    }
    out.push_back(ch);
  }
  return out;
}

bool IsCrLf(const Char& c) { return c.cp == '\r' || c.cp == '\n'; }
bool IsOther(const Char& c) { return !c.letter && !c.number && !c.space; }  // [^\s\p{L}\p{N}]

// Length (in characters) of a contraction at i: 's 't 're 've 'm 'll 'd, case-insensitively or not.
size_t Contraction(const std::vector<Char>& c, size_t i, bool any_case) {
  if (c[i].cp != '\'' || i + 1 >= c.size()) return 0;
  auto low = [&](size_t k) { return any_case ? u_tolower(c[k].cp) : c[k].cp; };
  const UChar32 a = low(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < c.size()) {
    const UChar32 b = low(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

// End of the white-space run starting at i.
size_t SpaceRun(const std::vector<Char>& c, size_t i) {
  while (i < c.size() && c[i].space) ++i;
  return i;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// Returns the end of the match at i (i + 1 for a character no alternative matches, which the
// split keeps as a piece of its own).
size_t MatchGpt2(const std::vector<Char>& c, size_t i) {
  const size_t n = c.size();
  if (size_t len = Contraction(c, i, false)) return i + len;
  const size_t j = c[i].cp == ' ' && i + 1 < n ? i + 1 : i;  // after the optional space
  for (auto in_class : {+[](const Char& x) { return x.letter; }, +[](const Char& x) { return x.number; },
                        +[](const Char& x) { return IsOther(x); }}) {
    if (in_class(c[j])) {
      size_t k = j + 1;
      while (k < n && in_class(c[k])) ++k;
      return k;
    }
  }
  const size_t run = SpaceRun(c, i);
  if (run == n && run > i) return run;   // \s+ at the end
  if (run - i >= 2) return run - 1;      // \s+ not followed by \S: leave the last one
  return i + 1;
}

// Llama 3 (max_digits 3) and Qwen2 (1):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,K}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t MatchLlama3(const std::vector<Char>& c, size_t i, size_t max_digits) {
  const size_t n = c.size();
  if (size_t len = Contraction(c, i, true)) return i + len;
  if (c[i].letter || (!IsCrLf(c[i]) && !c[i].number && i + 1 < n && c[i + 1].letter)) {
    size_t k = i + 1;
    while (k < n && c[k].letter) ++k;
    return k;
  }
  if (c[i].number) {
    size_t k = i + 1;
    while (k < n && k - i < max_digits && c[k].number) ++k;
    return k;
  }
  const size_t j = c[i].cp == ' ' && i + 1 < n ? i + 1 : i;
  if (IsOther(c[j])) {
    size_t k = j + 1;
    while (k < n && IsOther(c[k])) ++k;
    while (k < n && IsCrLf(c[k])) ++k;
    return k;
  }
  const size_t run = SpaceRun(c, i);
  for (size_t k = run; k > i; --k) {
    if (IsCrLf(c[k - 1])) return k;  // \s*[\r\n]+: up to the run's last line break
  }
  if (run == n || run - i < 2) return run;  // \s+(?!\S) at the end, or \s+
  return run - 1;
}

}  // namespace

std::vector<std::string> BpeTokenizer::PreTokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  auto split = [&](std::string_view part) {
    const std::vector<Char> c = Classify(part);
    for (size_t i = 0; i < c.size();) {
      const size_t end = pre_ == PreTokenizer::kQwen2    ? MatchLlama3(c, i, 1)
                         : pre_ == PreTokenizer::kLlama3 ? MatchLlama3(c, i, 3)
                                                         : MatchGpt2(c, i);
      pieces.emplace_back(part.substr(c[i].begin, c[end - 1].end - c[i].begin));
      i = end;
    }
  };
  if (pre_ != PreTokenizer::kSmolLm) {
    split(text);
    return pieces;
  }
  // SmolLM: \p{N} first (every number character isolated), then GPT-2's regex on what lies between.
  const std::vector<Char> c = Classify(text);
  size_t start = 0;
  for (size_t i = 0; i <= c.size(); ++i) {
    if (i < c.size() && !c[i].number) continue;
    if (i > start) split(text.substr(c[start].begin, c[i - 1].end - c[start].begin));
    if (i < c.size()) pieces.emplace_back(text.substr(c[i].begin, c[i].end - c[i].begin));
    start = i + 1;
  }
  return pieces;
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  std::string mapped;
  for (unsigned char b : word) mapped += Bytes().to_text[b];
  if (ignore_merges_) {
    auto it = token_ids_.find(mapped);
    if (it != token_ids_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  // Symbols: the mapped characters (1 or 2 UTF-8 bytes each), linked so that merges can remove them.
  struct Symbol {
    size_t begin, len;
    int prev, next;
  };
  std::vector<Symbol> sym;
  for (size_t i = 0; i < mapped.size();) {
    const size_t len = (static_cast<unsigned char>(mapped[i]) < 0x80) ? 1 : 2;
    sym.push_back({i, len, static_cast<int>(sym.size()) - 1, -1});
    i += len;
  }
  for (size_t i = 0; i + 1 < sym.size(); ++i) sym[i].next = static_cast<int>(i + 1);
  struct Pair {
    int32_t rank;
    int left;
    size_t left_len, right_len;  // lengths when queued: a pair is stale once either symbol changed
    bool operator>(const Pair& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Pair, std::vector<Pair>, std::greater<Pair>> queue;
  std::string key;
  auto push = [&](int left) {
    if (left < 0) return;
    const int right = sym[left].next;
    if (right < 0) return;
    key.assign(mapped, sym[left].begin, sym[left].len);
    key += ' ';
    key.append(mapped, sym[right].begin, sym[right].len);
    auto it = merge_ranks_.find(key);
    if (it != merge_ranks_.end()) queue.push({it->second, left, sym[left].len, sym[right].len});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) push(static_cast<int>(i));
  while (!queue.empty()) {
    const Pair p = queue.top();
    queue.pop();
    Symbol& l = sym[p.left];
    if (l.len != p.left_len || l.len == 0 || l.next < 0 || sym[l.next].len != p.right_len) continue;
    Symbol& r = sym[l.next];
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = p.left;
    push(l.prev);
    push(p.left);
  }
  for (const Symbol& s : sym) {
    if (s.len == 0) continue;
    auto it = token_ids_.find(mapped.substr(s.begin, s.len));
    if (it != token_ids_.end()) {
      ids->push_back(it->second);
      continue;
    }
    // Not in the vocabulary (llama.cpp's fallback): each byte's character on its own, where it is a token.
    for (size_t b = s.begin; b < s.begin + s.len;) {
      const size_t len = (static_cast<unsigned char>(mapped[b]) < 0x80) ? 1 : 2;
      auto byte = token_ids_.find(mapped.substr(b, len));
      if (byte != token_ids_.end()) ids->push_back(byte->second);
      b += len;
    }
  }
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const TextFragment& f : SplitSpecials(text, specials_)) {
    if (f.special >= 0) {
      ids.push_back(f.special);
      continue;
    }
    if (!nfc_) {
      for (const std::string& piece : PreTokenize(f.text)) EncodeWord(piece, &ids);
      continue;
    }
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(err);
    const icu::UnicodeString text = icu::UnicodeString::fromUTF8(icu::StringPiece(f.text.data(), static_cast<int32_t>(f.text.size())));
    std::string normalized;
    if (U_SUCCESS(err)) nfc->normalize(text, err).toUTF8String(normalized);
    if (U_FAILURE(err)) normalized.assign(f.text);  // ICU's data missing: the text as it is
    for (const std::string& piece : PreTokenize(normalized)) EncodeWord(piece, &ids);
  }
  return ids;
}

std::string BpeTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const std::string& t = tokens_[id];
    // Special tokens read as themselves; others are GPT-2 characters standing for bytes.
    if (std::any_of(specials_.begin(), specials_.end(), [&](const auto& s) { return s.second == id; })) {
      out += t;
      continue;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(t.data());
    const int32_t n = static_cast<int32_t>(t.size());
    for (int32_t i = 0; i < n;) {
      UChar32 c;
      U8_NEXT(p, i, n, c);
      const int32_t b = c >= 0 && c < 512 ? Bytes().from_cp[c] : -1;
      if (b >= 0) out += static_cast<char>(b);
    }
  }
  return out;
}

int32_t BpeTokenizer::PieceToId(std::string_view piece) const {
  auto it = token_ids_.find(std::string(piece));
  return it == token_ids_.end() ? -1 : it->second;
}

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromGguf(const GgufFile& g) {
  const std::string& path = g.path();
  QUARRY_ASSIGN_OR_RETURN(const std::string model, g.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return Status::InvalidArgument(path + ": tokenizer.ggml.model is '" + model + "'; byte-level BPE needs 'gpt2'");
  }
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  std::string pre = "gpt-2";
  if (g.Has("tokenizer.ggml.pre")) {
    QUARRY_ASSIGN_OR_RETURN(pre, g.GetString("tokenizer.ggml.pre"));
  }
  if (pre == "gpt-2") {
    t->pre_ = PreTokenizer::kGpt2;
  } else if (pre == "smollm") {
    t->pre_ = PreTokenizer::kSmolLm;
  } else if (pre == "qwen2") {
    t->pre_ = PreTokenizer::kQwen2;
  } else if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    t->pre_ = PreTokenizer::kLlama3;
    t->ignore_merges_ = true;
  } else {
    return Status::InvalidArgument(path + ": tokenizer.ggml.pre '" + pre +
                                   "' is not supported (supported: gpt-2, smollm, qwen2, llama-bpe)");
  }
  // llama.cpp's default for BPE vocabularies is not to add a BOS unless the file says so.
  QUARRY_ASSIGN_OR_RETURN(GgufVocab vocab, ReadGgufVocab(g, /*add_bos_default=*/false));
  QUARRY_ASSIGN_OR_RETURN(const std::vector<std::string>* merges, g.GetStrings("tokenizer.ggml.merges"));
  t->tokens_ = *vocab.tokens;
  for (size_t i = 0; i < t->tokens_.size(); ++i) t->token_ids_.emplace(t->tokens_[i], static_cast<int32_t>(i));
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string& m = (*merges)[i];
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos || space + 1 >= m.size()) {
      return Status::InvalidArgument(path + ": tokenizer.ggml.merges[" + std::to_string(i) + "] '" + m +
                                     "' is not two tokens separated by a space");
    }
    t->merge_ranks_.emplace(m, static_cast<int32_t>(i));
  }
  t->specials_ = std::move(vocab.specials);
  t->bos_ = vocab.bos, t->eos_ = vocab.eos, t->add_bos_ = vocab.add_bos;
  return t;
}

namespace {

// The Split patterns of Qwen2's and Llama 3's tokenizer.json, as the files spell them.
constexpr char kQwen2Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A ByteLevel pre-tokenizer step without a prefix space, with or without its own GPT-2 regex.
bool IsByteLevel(const nlohmann::json& j, bool use_regex) {
  return j.is_object() && j.value("type", "") == "ByteLevel" && !j.value("add_prefix_space", true) &&
         j.value("use_regex", true) == use_regex;
}

// Which of the supported layouts `pre` is (see FromTokenizerJson); nullopt for any other.
std::optional<BpeTokenizer::PreTokenizer> PreTokenizerOf(const nlohmann::json& pre) {
  using P = BpeTokenizer::PreTokenizer;
  if (IsByteLevel(pre, /*use_regex=*/true)) return P::kGpt2;
  if (!pre.is_object() || pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers") ||
      !pre["pretokenizers"].is_array() || pre["pretokenizers"].size() != 2) {
    return std::nullopt;
  }
  const nlohmann::json& first = pre["pretokenizers"][0];
  const nlohmann::json& second = pre["pretokenizers"][1];
  if (first.is_object() && first.value("type", "") == "Digits" && first.value("individual_digits", false) &&
      IsByteLevel(second, /*use_regex=*/true)) {
    return P::kSmolLm;
  }
  if (!first.is_object() || first.value("type", "") != "Split" || first.value("behavior", "") != "Isolated" ||
      first.value("invert", true) || !IsByteLevel(second, /*use_regex=*/false)) {
    return std::nullopt;
  }
  const nlohmann::json pattern = first.value("pattern", nlohmann::json());
  const std::string regex = pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()
                                ? pattern["Regex"].get<std::string>()
                                : "";
  if (regex == kQwen2Pattern) return P::kQwen2;
  if (regex == kLlama3Pattern) return P::kLlama3;
  return std::nullopt;
}

// A JSON value for an error message, cut to a readable length.
std::string Shown(const nlohmann::json& j) {
  std::string s = DumpJson(j);
  return s.size() > 160 ? s.substr(0, 157) + "..." : s;
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(const std::string& path,
                                                                       const std::string& config_path) {
  QUARRY_ASSIGN_OR_RETURN(const nlohmann::json j, ReadJsonFile(path));
  auto unsupported = [&](const std::string& what) {
    return Status::InvalidArgument(path + ": " + what +
                                   " is not supported (byte-level BPE as GPT-2, SmolLM, Qwen2 and Llama 3 lay it out)");
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) return unsupported("a file without a model");
  const nlohmann::json& model = j["model"];
  if (model.value("type", "") != "BPE") return unsupported("model type " + Shown(model.value("type", nlohmann::json())));
  for (const char* field : {"dropout", "unk_token"}) {
    if (model.contains(field) && !model[field].is_null()) return unsupported(std::string("model.") + field + " " + Shown(model[field]));
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(field) && !model[field].is_null() && model[field] != "") {
      return unsupported(std::string("model.") + field + " " + Shown(model[field]));
    }
  }
  if (model.contains("byte_fallback") && model["byte_fallback"] == true) return unsupported("model.byte_fallback");

  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  QUARRY_RETURN_IF_ERROR(JsonField(model, "ignore_merges", &t->ignore_merges_, false, path + ": model"));
  const auto pre = PreTokenizerOf(j.value("pre_tokenizer", nlohmann::json()));
  if (!pre) return unsupported("pre_tokenizer " + Shown(j.value("pre_tokenizer", nlohmann::json())));
  t->pre_ = *pre;
  const nlohmann::json normalizer = j.value("normalizer", nlohmann::json());
  if (!normalizer.is_null()) {
    if (!normalizer.is_object() || normalizer.value("type", "") != "NFC") return unsupported("normalizer " + Shown(normalizer));
    t->nfc_ = true;
  }

  // The vocabulary and the added tokens, by id.
  std::vector<std::pair<std::string, int64_t>> entries;
  if (!model.contains("vocab") || !model["vocab"].is_object()) return unsupported("a model without a vocab object");
  for (const auto& [piece, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) return Status::InvalidArgument(path + ": vocab entry '" + piece + "' has no integer id");
    entries.emplace_back(piece, id.get<int64_t>());
  }
  const nlohmann::json added = j.value("added_tokens", nlohmann::json::array());
  if (!added.is_array()) return unsupported("added_tokens " + Shown(added));
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id") ||
        !a["id"].is_number_integer()) {
      return Status::InvalidArgument(path + ": added token " + Shown(a) + " needs an integer id and a content");
    }
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (a.value(flag, false)) return unsupported("added token " + Shown(a) + " with " + flag);
    }
    if (a.value("normalized", false) && t->nfc_) return unsupported("normalized added token " + Shown(a));
    entries.emplace_back(a["content"].get<std::string>(), a["id"].get<int64_t>());
    if (!a["content"].get<std::string>().empty()) {
      t->specials_.emplace_back(a["content"].get<std::string>(), a["id"].get<int32_t>());
    }
  }
  int64_t max_id = -1;
  for (const auto& [piece, id] : entries) {
    if (id < 0 || id > (int64_t{1} << 24)) {
      return Status::InvalidArgument(path + ": token '" + piece + "' has id " + std::to_string(id) + " (out of range)");
    }
    max_id = std::max(max_id, id);
  }
  if (max_id < 0) return Status::InvalidArgument(path + ": the vocabulary is empty");
  t->tokens_.assign(static_cast<size_t>(max_id) + 1, "");
  std::vector<bool> seen(t->tokens_.size(), false);
  for (const auto& [piece, id] : entries) {
    if (seen[id] && t->tokens_[id] != piece) {
      return Status::InvalidArgument(path + ": id " + std::to_string(id) + " is both '" + t->tokens_[id] + "' and '" +
                                     piece + "'");
    }
    seen[id] = true;
    t->tokens_[id] = piece;
    t->token_ids_.emplace(piece, static_cast<int32_t>(id));
  }
  std::stable_sort(t->specials_.begin(), t->specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  // Merges: "left right" strings (older files) or [left, right] pairs.
  if (!model.contains("merges") || !model["merges"].is_array()) return unsupported("a model without a merges list");
  const nlohmann::json& merges = model["merges"];
  for (size_t i = 0; i < merges.size(); ++i) {
    const nlohmann::json& m = merges[i];
    std::string key;
    if (m.is_string()) {
      key = m.get<std::string>();
      const size_t space = key.find(' ', 1);
      if (space == std::string::npos || space + 1 >= key.size()) key.clear();
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string() && !m[0].get<std::string>().empty() &&
               !m[1].get<std::string>().empty()) {
      key = m[0].get<std::string>() + " " + m[1].get<std::string>();
    }
    if (key.empty()) {
      return Status::InvalidArgument(path + ": model.merges[" + std::to_string(i) + "] " + Shown(m) +
                                     " is not two tokens");
    }
    t->merge_ranks_.emplace(key, static_cast<int32_t>(i));
  }

  // The post-processor: ByteLevel changes no ids; a template may put one special token first (a BOS).
  const nlohmann::json post = j.value("post_processor", nlohmann::json());
  if (!post.is_null() && !(post.is_object() && post.value("type", "") == "ByteLevel")) {
    const nlohmann::json single = post.is_object() ? post.value("single", nlohmann::json()) : nlohmann::json();
    if (!post.is_object() || post.value("type", "") != "TemplateProcessing" || !single.is_array() || single.empty() ||
        single.size() > 2 || !single.back().contains("Sequence")) {
      return unsupported("post_processor " + Shown(post));
    }
    if (single.size() == 2) {
      const nlohmann::json first = single[0].value("SpecialToken", nlohmann::json());
      const std::string bos = first.is_object() ? first.value("id", "") : "";
      auto it = t->token_ids_.find(bos);
      if (it == t->token_ids_.end()) return unsupported("post_processor " + Shown(post));
      t->bos_ = it->second;
      t->add_bos_ = true;
    }
  }
  // tokenizer_config.json's eos_token (a string, or {"content": ...}).
  if (!config_path.empty() && std::filesystem::exists(config_path)) {
    QUARRY_ASSIGN_OR_RETURN(const nlohmann::json config, ReadJsonFile(config_path));
    const nlohmann::json eos = config.is_object() ? config.value("eos_token", nlohmann::json()) : nlohmann::json();
    const std::string name = eos.is_string() ? eos.get<std::string>() : eos.is_object() ? eos.value("content", "") : "";
    if (auto it = t->token_ids_.find(name); !name.empty() && it != t->token_ids_.end()) t->eos_ = it->second;
  }
  return t;
}

}  // namespace quarry::model
