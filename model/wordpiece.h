// BERT's WordPiece tokenization from vocab.txt (or tokenizer.json), as Hugging Face's BertTokenizer(Fast) does it:
// clean text (control characters dropped, whitespace to spaces), spaces around CJK ideographs,
// lower-casing and accent stripping (NFD, drop non-spacing marks) when `lower_case`, splitting on
// whitespace and punctuation, then greedy longest-match-first pieces with "##" continuations; a word
// of more than 100 characters, or one that cannot be pieced, becomes [UNK]. Special tokens written in
// the text ([CLS], [SEP], [UNK], [PAD], [MASK], or the names tokenizer_config.json gives, e.g. MPNet's
// <s> </s> <pad> <mask>) are recognised as tokens, as HF tokenizers does. Thread-safe after Load.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quarry/status.h"

namespace quarry::model {

class WordPieceTokenizer {
 public:
  // `path`: a directory holding vocab.txt, or only a tokenizer.json with a WordPiece model and BERT's
  // normalizer and pre-tokenizer (tokenizer_config.json's do_lower_case and special token names are
  // read when present); or vocab.txt itself.
  static Result<std::unique_ptr<WordPieceTokenizer>> Load(const std::string& path);

  // cls pieces sep ([CLS] ... [SEP]; MPNet <s> ... </s>), cut to `max_length` tokens (0: no limit) keeping [SEP] last.
  std::vector<int32_t> Encode(std::string_view text, size_t max_length = 0) const;
  // The word pieces without special tokens.
  std::vector<std::string> Tokenize(std::string_view text) const;

  int32_t cls_id() const { return cls_; }
  int32_t sep_id() const { return sep_; }
  int32_t unk_id() const { return unk_; }
  int32_t pad_id() const { return pad_; }
  bool lower_case() const { return lower_case_; }

 private:
  WordPieceTokenizer() = default;
  std::vector<std::string> BasicTokens(std::string_view text) const;
  void TokenizeSegment(std::string_view text, std::vector<std::string>* pieces) const;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> special_;  // special tokens recognised inside text
  std::string unk_piece_ = "[UNK]";
  int32_t cls_ = -1, sep_ = -1, unk_ = -1, pad_ = -1;
  bool lower_case_ = true;
};

}  // namespace quarry::model
