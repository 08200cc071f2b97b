#include "index/lexical/analyzer.h"

#include <nlohmann/json.hpp>
#include <unicode/brkiter.h>
#include <unicode/rbbi.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <array>

namespace quarry {

namespace {

// org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (Lucene 8).
constexpr std::array<std::string_view, 33> kEnglishStopWords = {
    "a",    "an",    "and",  "are",   "as",   "at",    "be",   "but",  "by",   "for",  "if",
    "in",   "into",  "is",   "it",    "no",   "not",   "of",   "on",   "or",   "such", "that",
    "the",  "their", "then", "there", "these", "they", "this", "to",   "was",  "will", "with"};

constexpr int32_t kMaxTokenUtf16 = 255;  // StandardAnalyzer.DEFAULT_MAX_TOKEN_LENGTH

}  // namespace

bool IsEnglishStopWord(std::string_view term) {
  for (auto w : kEnglishStopWords) {
    if (w == term) return true;
  }
  return false;
}

std::string AnalyzerSettings::ToJson() const {
  nlohmann::json j = {{"name", "lucene8-english"}, {"stopwords", stopwords}, {"stem", stem},
                      {"stemmer", "lucene-porter"}, {"max_token_length", kMaxTokenUtf16}};
  return j.dump();
}

Result<AnalyzerSettings> AnalyzerSettings::FromJson(std::string_view json) {
  try {
    auto j = nlohmann::json::parse(json);
    if (j.value("name", "") != "lucene8-english") {
      return Status::InvalidArgument("analyzer: unknown analyzer '" + j.value("name", "") + "'");
    }
    AnalyzerSettings s;
    s.stopwords = j.at("stopwords").get<bool>();
    s.stem = j.at("stem").get<bool>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("analyzer settings: ") + e.what());
  }
}

namespace {

// ICU's root word rules with two of ICU's customisations of UAX#29 undone, so that words break as in
// Lucene 8's StandardTokenizer: ICU counts '@' as a letter ("name@host.org" one word) and drops ':'
// from MidLetter ("a:b" two words); UAX#29 as Lucene implements it does neither.
Result<std::unique_ptr<icu::BreakIterator>> LuceneWordBreaker() {
  UErrorCode err = U_ZERO_ERROR;
  std::unique_ptr<icu::BreakIterator> root(icu::BreakIterator::createWordInstance(icu::Locale::getRoot(), err));
  auto* rules_based = dynamic_cast<icu::RuleBasedBreakIterator*>(root.get());
  if (U_FAILURE(err) || !rules_based) {
    return Status::Internal(std::string("analyzer: ICU word break iterator: ") + u_errorName(err));
  }
  std::string rules;
  rules_based->getRules().toUTF8String(rules);
  const std::pair<std::string_view, std::string_view> edits[] = {
      {"$ALetter=[\\p{Word_Break=ALetter}@];", "$ALetter=[\\p{Word_Break=ALetter}];"},
      {"$MidLetter=[\\p{Word_Break=MidLetter}-[\\:\\uFE55\\uFF1A]];", "$MidLetter=[\\p{Word_Break=MidLetter}];"}};
  for (auto [from, to] : edits) {
    const size_t at = rules.find(from);
    if (at == std::string::npos) {
      return Status::Internal("analyzer: this ICU (" U_ICU_VERSION ") has word rules without '" + std::string(from) +
                              "'; the tokenizer cannot be made to match Lucene's");
    }
    rules.replace(at, from.size(), to);
  }
  UParseError parse_error;
  auto custom = std::make_unique<icu::RuleBasedBreakIterator>(icu::UnicodeString::fromUTF8(rules), parse_error, err);
  if (U_FAILURE(err)) return Status::Internal(std::string("analyzer: compiling word rules: ") + u_errorName(err));
  return std::unique_ptr<icu::BreakIterator>(std::move(custom));
}

}  // namespace

Result<std::unique_ptr<Analyzer>> Analyzer::Create(const AnalyzerSettings& settings) {
  // Compiling the rules takes milliseconds; do it once per process and clone (cheap) per analyzer.
  static const auto* const prototype = new Result<std::unique_ptr<icu::BreakIterator>>(LuceneWordBreaker());
  if (!prototype->ok()) return prototype->status();
  std::unique_ptr<Analyzer> a(new Analyzer());
  a->settings_ = settings;
  a->words_.reset((**prototype)->clone());
  return a;
}

Result<Analyzer*> Analyzer::ForThisThread(const AnalyzerSettings& settings) {
  thread_local std::unique_ptr<Analyzer> analyzer;
  if (!analyzer || analyzer->settings() != settings) {
    QUARRY_ASSIGN_OR_RETURN(analyzer, Create(settings));
  }
  return analyzer.get();
}

namespace {

// UAX#29 word-break classes of ASCII characters (Unicode 15, with '@' Other and ':' MidLetter as in
// Lucene's StandardTokenizer; see LuceneWordBreaker).
enum AsciiWb : uint8_t { kOther, kLetter, kNumeric, kExtendNumLet, kMidLetter, kMidNumLet, kSingleQuote, kMidNum, kSpace, kBreak };

constexpr std::array<uint8_t, 128> AsciiClasses() {
  std::array<uint8_t, 128> c{};
  for (int i = 'a'; i <= 'z'; ++i) c[i] = kLetter;
  for (int i = 'A'; i <= 'Z'; ++i) c[i] = kLetter;
  for (int i = '0'; i <= '9'; ++i) c[i] = kNumeric;
  c['_'] = kExtendNumLet;
  c[':'] = kMidLetter;
  c['.'] = kMidNumLet;
  c['\''] = kSingleQuote;
  c[','] = kMidNum;
  c[';'] = kMidNum;
  c[' '] = kSpace;
  c['\n'] = c['\r'] = c['\v'] = c['\f'] = kBreak;
  return c;
}
constexpr auto kAsciiWb = AsciiClasses();

bool IsAscii(std::string_view text) {
  for (char ch : text) {
    if (static_cast<uint8_t>(ch) >= 0x80) return false;
  }
  return true;
}

// Whether UAX#29 keeps text[i - 1] and text[i] in one segment (rules WB3..WB13b restricted to ASCII;
// WB3c/WB4/WB7a-c/WB13/WB15-16 concern non-ASCII characters only).
bool JoinsAscii(std::string_view text, size_t i) {
  const uint8_t a = kAsciiWb[static_cast<uint8_t>(text[i - 1])], b = kAsciiWb[static_cast<uint8_t>(text[i])];
  auto cls = [&](size_t j) { return j < text.size() ? kAsciiWb[static_cast<uint8_t>(text[j])] : uint8_t{kOther}; };
  if (text[i - 1] == '\r' && text[i] == '\n') return true;                         // WB3
  if (a == kBreak || b == kBreak) return false;                                    // WB3a, WB3b
  if (a == kSpace && b == kSpace) return true;                                     // WB3d
  const bool a_word = a == kLetter || a == kNumeric, b_word = b == kLetter || b == kNumeric;
  if (a_word && b_word) return true;                                               // WB5, WB8, WB9, WB10
  const bool b_mid_letter = b == kMidLetter || b == kMidNumLet || b == kSingleQuote;
  const bool a_mid_letter = a == kMidLetter || a == kMidNumLet || a == kSingleQuote;
  if (a == kLetter && b_mid_letter && cls(i + 1) == kLetter) return true;         // WB6
  if (a_mid_letter && b == kLetter && i >= 2 && cls(i - 2) == kLetter) return true;  // WB7
  const bool b_mid_num = b == kMidNum || b == kMidNumLet || b == kSingleQuote;
  const bool a_mid_num = a == kMidNum || a == kMidNumLet || a == kSingleQuote;
  if (a == kNumeric && b_mid_num && cls(i + 1) == kNumeric) return true;          // WB12
  if (a_mid_num && b == kNumeric && i >= 2 && cls(i - 2) == kNumeric) return true;  // WB11
  if ((a_word || a == kExtendNumLet) && b == kExtendNumLet) return true;            // WB13a
  if (a == kExtendNumLet && b_word) return true;                                   // WB13b
  return false;                                                                    // WB999
}

}  // namespace

void Analyzer::Tokenize(std::string_view text, std::vector<std::pair<size_t, size_t>>* spans) {
  if (!IsAscii(text)) return TokenizeWithIcu(text, spans);
  // ASCII text (most of an English corpus) is segmented here, without ICU's iterator: the same
  // UAX#29 rules, checked against ICU on every SciFact document and on random strings (analyzer_test).
  spans->clear();
  for (size_t start = 0; start < text.size();) {
    size_t end = start + 1;
    while (end < text.size() && JoinsAscii(text, end)) ++end;
    // A segment is a word when it holds a letter or digit (a run of '_' alone is none, as in Lucene).
    bool word = false;
    for (size_t i = start; i < end && !word; ++i) {
      const uint8_t c = kAsciiWb[static_cast<uint8_t>(text[i])];
      word = c == kLetter || c == kNumeric;
    }
    if (word) {
      for (size_t piece = start; piece < end; piece += kMaxTokenUtf16) {
        spans->emplace_back(piece, std::min(end, piece + kMaxTokenUtf16));
      }
    }
    start = end;
  }
}

void Analyzer::TokenizeWithIcu(std::string_view text, std::vector<std::pair<size_t, size_t>>* spans) {
  spans->clear();
  UErrorCode err = U_ZERO_ERROR;
  UText ut = UTEXT_INITIALIZER;
  utext_openUTF8(&ut, text.data(), static_cast<int64_t>(text.size()), &err);
  if (U_FAILURE(err)) return;
  words_->setText(&ut, err);
  int32_t start = words_->first();
  for (int32_t end = words_->next(); end != icu::BreakIterator::DONE; start = end, end = words_->next()) {
    // Rule status >= UBRK_WORD_NONE_LIMIT: a segment of letters, numbers, kana or ideographs.
    if (words_->getRuleStatus() < UBRK_WORD_NONE_LIMIT) {
      UChar32 first;
      int32_t at = start;
      U8_NEXT(reinterpret_cast<const uint8_t*>(text.data()), at, end, first);
      const bool emoji = first >= 0x80 && (u_hasBinaryProperty(first, UCHAR_EXTENDED_PICTOGRAPHIC) ||
                                           u_hasBinaryProperty(first, UCHAR_REGIONAL_INDICATOR));
      if (emoji) spans->emplace_back(start, end);
      continue;
    }
    // A run of connectors alone ("___") is no word for Lucene, though ICU gives it a word status.
    bool has_word_char = false;
    for (int32_t i = start; i < end && !has_word_char;) {
      UChar32 c;
      U8_NEXT(reinterpret_cast<const uint8_t*>(text.data()), i, end, c);
      const auto wb = u_getIntPropertyValue(c, UCHAR_WORD_BREAK);
      has_word_char = wb != U_WB_EXTENDNUMLET && wb != U_WB_EXTEND && wb != U_WB_FORMAT && wb != U_WB_ZWJ;
    }
    if (!has_word_char) continue;
    // Split tokens longer than Lucene's limit, counted in UTF-16 units as Lucene does.
    int32_t piece_start = start, units = 0, i = start;
    while (i < end) {
      UChar32 c;
      int32_t next = i;
      U8_NEXT(reinterpret_cast<const uint8_t*>(text.data()), next, end, c);
      const int32_t w = c > 0xffff ? 2 : 1;
      if (units + w > kMaxTokenUtf16) {
        spans->emplace_back(piece_start, i);
        piece_start = i;
        units = 0;
      }
      units += w;
      i = next;
    }
    spans->emplace_back(piece_start, end);
  }
  utext_close(&ut);
}

void Analyzer::Analyze(std::string_view text, std::vector<std::string>* terms) {
  terms->clear();
  std::vector<std::pair<size_t, size_t>> spans;
  Tokenize(text, &spans);
  std::string term;
  for (auto [b, e] : spans) {
    if (Normalize(text.substr(b, e - b), &term)) terms->push_back(term);
  }
}

bool Analyzer::Normalize(std::string_view tok, std::string* term) {
  // EnglishPossessiveFilter: drop a trailing 's / ’s / ＇s (before lower-casing, as in Lucene 8).
  if (tok.size() >= 2 && (tok.back() == 's' || tok.back() == 'S')) {
    std::string_view head = tok.substr(0, tok.size() - 1);
    if (head.ends_with("'")) tok = head.substr(0, head.size() - 1);
    else if (head.ends_with("\u2019") || head.ends_with("\uFF07")) tok = head.substr(0, head.size() - 3);
  }
  if (tok.empty()) return false;
  // LowerCaseFilter: Character.toLowerCase per code point.
  term->clear();
  int32_t i = 0;
  const auto n = static_cast<int32_t>(tok.size());
  const auto* p = reinterpret_cast<const uint8_t*>(tok.data());
  int32_t utf16_units = 0;
  while (i < n) {
    if (p[i] < 0x80) {  // ASCII: Character.toLowerCase is A-Z -> a-z
      const char ch = static_cast<char>(p[i++]);
      term->push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch);
      ++utf16_units;
      continue;
    }
    UChar32 c;
    U8_NEXT(p, i, n, c);
    c = u_tolower(c);
    utf16_units += c > 0xffff ? 2 : 1;
    uint8_t buf[4];
    int32_t len = 0;
    [[maybe_unused]] UBool err = false;
    U8_APPEND(buf, len, 4, c, err);
    term->append(reinterpret_cast<const char*>(buf), len);
  }
  if (settings_.stopwords && IsEnglishStopWord(*term)) return false;
  // Lucene's PorterStemmer leaves words of at most two UTF-16 units unchanged.
  if (settings_.stem && utf16_units > 2) stemmer_.Stem(term);
  return true;
}

}  // namespace quarry
