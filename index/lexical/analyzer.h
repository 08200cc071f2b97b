// The lexical analyzer: Lucene 8's EnglishAnalyzer, token for token.
//   UAX#29 word breaking (ICU; segments of letters, digits, kana or ideographs become tokens, split at
//   255 UTF-16 units like Lucene's StandardTokenizer) -> English possessive removal ('s, ’s, ＇s)
//   -> lower-casing (simple per-code-point mapping, as Character.toLowerCase) -> Lucene's 33-word
//   English stop set -> Porter stemming as Lucene's PorterStemmer does it (porter_stemmer.h).
//   Like Lucene 8's StandardTokenizer, an emoji (an Extended_Pictographic character such as ©, ®, ™, or
//   a regional-indicator pair) is a token of its own.
// Not thread-safe (ICU iterator and stemmer state); use one Analyzer per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "index/lexical/porter_stemmer.h"
#include "quarry/status.h"

#include <unicode/brkiter.h>


namespace quarry {

struct AnalyzerSettings {
  // Default: true. Apply the English stop set.
  bool stopwords = true;
  // Default: true. Apply Porter stemming.
  bool stem = true;
  // The stored description (collection meta "lex.analyzer").
  std::string ToJson() const;
  static Result<AnalyzerSettings> FromJson(std::string_view json);
  bool operator==(const AnalyzerSettings&) const = default;
};

class Analyzer {
 public:
  static Result<std::unique_ptr<Analyzer>> Create(const AnalyzerSettings& settings = {});
  // The calling thread's analyzer with these settings, created on first use; valid until the thread
  // asks for other settings or ends. The way to analyze from many threads.
  static Result<Analyzer*> ForThisThread(const AnalyzerSettings& settings);

  // Appends the terms of `text` to `terms` (cleared first), in order, duplicates kept.
  void Analyze(std::string_view text, std::vector<std::string>* terms);
  // Byte spans of the word tokens of `text` (before filtering), in order.
  void Tokenize(std::string_view text, std::vector<std::pair<size_t, size_t>>* byte_spans);
  // The same through ICU's iterator whatever the text (Tokenize's reference for ASCII text).
  void TokenizeWithIcu(std::string_view text, std::vector<std::pair<size_t, size_t>>* byte_spans);
  // The term one token becomes, or false when it is filtered out (a stop word, or empty).
  bool Normalize(std::string_view token, std::string* term);

  const AnalyzerSettings& settings() const { return settings_; }

 private:
  Analyzer() = default;
  AnalyzerSettings settings_;
  std::unique_ptr<icu::BreakIterator> words_;
  PorterStemmer stemmer_;
};

bool IsEnglishStopWord(std::string_view term);

}  // namespace quarry
