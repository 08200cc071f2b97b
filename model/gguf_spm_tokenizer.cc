#include "model/gguf_spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "model/gguf.h"

namespace quarry::model {

namespace {

constexpr char kSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

// Bytes of the UTF-8 character that starts with `lead` (1 for a continuation or invalid byte, as
// llama.cpp's unicode_len_utf8 counts it).
size_t Utf8Length(unsigned char lead) {
  static const size_t kLengths[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

}  // namespace

Result<std::unique_ptr<GgufSpmTokenizer>> GgufSpmTokenizer::FromGguf(const GgufFile& g) {
  const std::string& path = g.path();
  QUARRY_ASSIGN_OR_RETURN(const std::string model, g.GetString("tokenizer.ggml.model"));
  if (model != "llama") {
    return Status::InvalidArgument(path + ": tokenizer.ggml.model is '" + model + "'; SentencePiece-style needs 'llama'");
  }
  std::unique_ptr<GgufSpmTokenizer> t(new GgufSpmTokenizer());
  // llama.cpp's defaults for SentencePiece vocabularies: a BOS, and a space before the text.
  QUARRY_ASSIGN_OR_RETURN(GgufVocab vocab, ReadGgufVocab(g, /*add_bos_default=*/true));
  QUARRY_ASSIGN_OR_RETURN(const std::vector<double>* scores, g.GetFloats("tokenizer.ggml.scores"));
  if (scores->size() != vocab.tokens->size()) {
    return Status::InvalidArgument(path + ": tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                                   " entries for " + std::to_string(vocab.tokens->size()) + " tokens");
  }
  t->tokens_ = *vocab.tokens;
  t->scores_.assign(scores->begin(), scores->end());
  t->types_ = std::move(vocab.types);
  t->specials_ = std::move(vocab.specials);
  t->bos_ = vocab.bos, t->eos_ = vocab.eos, t->add_bos_ = vocab.add_bos;
  std::fill(std::begin(t->byte_tokens_), std::end(t->byte_tokens_), -1);
  for (size_t i = 0; i < t->tokens_.size(); ++i) {
    const std::string& text = t->tokens_[i];
    t->token_ids_.emplace(text, static_cast<int32_t>(i));
    unsigned byte = 0;
    if (t->types_[i] == 6 && text.size() == 6 && std::sscanf(text.c_str(), "<0x%02X>", &byte) == 1) {
      t->byte_tokens_[byte] = static_cast<int32_t>(i);  // type 6: a byte token
    }
  }
  if (g.Has("tokenizer.ggml.add_space_prefix")) {
    QUARRY_ASSIGN_OR_RETURN(t->add_space_prefix_, g.GetBool("tokenizer.ggml.add_space_prefix"));
  }
  return t;
}

void GgufSpmTokenizer::EncodeFragment(std::string_view text, std::vector<int32_t>* ids) const {
  // Symbols: the text's UTF-8 characters, linked so that merges can remove them.
  struct Symbol {
    size_t begin, len;
    int prev, next;
  };
  std::vector<Symbol> sym;
  for (size_t at = 0; at < text.size();) {
    const size_t len = std::min(Utf8Length(static_cast<unsigned char>(text[at])), text.size() - at);
    sym.push_back({at, len, static_cast<int>(sym.size()) - 1, -1});
    at += len;
  }
  for (size_t i = 0; i + 1 < sym.size(); ++i) sym[i].next = static_cast<int>(i + 1);
  // The highest score first; on a tie the leftmost. `size` detects a symbol that changed since.
  struct Bigram {
    float score;
    int left, right;
    size_t size;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    auto it = token_ids_.find(std::string(text.substr(sym[left].begin, sym[left].len + sym[right].len)));
    if (it != token_ids_.end()) queue.push({scores_[it->second], left, right, sym[left].len + sym[right].len});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i - 1), static_cast<int>(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Each final symbol is a token (merges only ever make tokens), or a character the vocabulary lacks,
  // which becomes one byte token per byte.
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    auto it = token_ids_.find(std::string(text.substr(sym[i].begin, sym[i].len)));
    if (it != token_ids_.end()) {
      ids->push_back(it->second);
      continue;
    }
    for (size_t b = sym[i].begin; b < sym[i].begin + sym[i].len; ++b) {
      const int32_t id = byte_tokens_[static_cast<unsigned char>(text[b])];
      if (id >= 0) ids->push_back(id);
    }
  }
}

std::vector<int32_t> GgufSpmTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  bool after_special = true;  // the text's start counts as following a special token
  for (const TextFragment& f : SplitSpecials(text, specials_)) {
    if (f.special >= 0) {
      ids.push_back(f.special);
      after_special = true;
      continue;
    }
    std::string escaped = add_space_prefix_ && after_special ? kSpace : "";
    for (char c : f.text) {
      if (c == ' ') escaped += kSpace;
      else escaped += c;
    }
    EncodeFragment(escaped, &ids);
    after_special = false;
  }
  return ids;
}

std::string GgufSpmTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const std::string& t = tokens_[id];
    if (types_[id] == 6) {
      for (int b = 0; b < 256; ++b) {
        if (byte_tokens_[b] == id) out += static_cast<char>(b);
      }
      continue;
    }
    if (types_[id] == 2 || types_[id] == 3 || types_[id] == 4) {  // special tokens read as themselves
      out += t;
      continue;
    }
    for (size_t at = 0; at < t.size();) {
      if (t.compare(at, 3, kSpace) == 0) {
        out += ' ';
        at += 3;
      } else {
        out += t[at++];
      }
    }
  }
  return out;
}

int32_t GgufSpmTokenizer::PieceToId(std::string_view piece) const {
  auto it = token_ids_.find(std::string(piece));
  return it == token_ids_.end() ? -1 : it->second;
}

}  // namespace quarry::model
