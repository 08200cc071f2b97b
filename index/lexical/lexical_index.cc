#include "index/lexical/lexical_index.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>

#include "common/thread_scratch.h"

namespace quarry {

std::string LexicalText(const Document& doc) { return doc.title + " " + doc.text; }

uint64_t DeadDocs::Count() const {
  uint64_t n = 0;
  for (uint64_t w : bits_) n += std::popcount(w);
  return n;
}

LexicalIndex::LexicalIndex(std::vector<Part> parts, uint64_t doc_count, uint64_t sum_ttf,
                           const AnalyzerSettings& settings, DeadTermCount dead_term_count, Bm25Params params,
                           std::shared_ptr<Store::Snapshot> store_snapshot)
    : parts_(std::move(parts)),
      doc_count_(doc_count),
      sum_ttf_(sum_ttf),
      analyzer_settings_(settings),
      dead_term_count_(std::move(dead_term_count)),
      params_(params),
      norms_(params, doc_count ? static_cast<float>(static_cast<double>(sum_ttf) / doc_count) : 1.0f),
      store_snapshot_(std::move(store_snapshot)) {}

Result<std::shared_ptr<const LexicalIndex>> LexicalIndex::Build(const std::vector<std::string>& ids,
                                                                const std::vector<std::string>& texts,
                                                                const AnalyzerSettings& settings, Bm25Params params) {
  if (ids.size() != texts.size()) return Status::InvalidArgument("lexical index: ids and texts differ in number");
  if (texts.size() > UINT32_MAX) return Status::InvalidArgument("lexical index: too many texts");
  QUARRY_ASSIGN_OR_RETURN(auto analyzer, Analyzer::Create(settings));
  std::map<std::string, std::vector<std::pair<DocNum, uint32_t>>> postings;  // term order, as segments need
  std::vector<uint32_t> lengths(texts.size());
  uint64_t sum_ttf = 0, doc_count = 0;
  std::vector<std::string> terms;
  for (size_t d = 0; d < texts.size(); ++d) {
    analyzer->Analyze(texts[d], &terms);
    lengths[d] = static_cast<uint32_t>(terms.size());
    sum_ttf += terms.size();
    doc_count += !terms.empty();
    std::map<std::string, uint32_t> tf;
    for (auto& t : terms) ++tf[t];
    for (auto& [t, n] : tf) postings[t].emplace_back(static_cast<DocNum>(d), n);
  }
  const float avgdl = doc_count ? static_cast<float>(static_cast<double>(sum_ttf) / doc_count) : 1.0f;
  SegmentWriter writer(0, static_cast<uint32_t>(texts.size()), params, avgdl);
  for (size_t d = 0; d < texts.size(); ++d) writer.SetDocument(static_cast<DocNum>(d), ids[d], IntToByte4(lengths[d]));
  for (const auto& [term, list] : postings) QUARRY_RETURN_IF_ERROR(writer.AddTerm(term, list));
  QUARRY_ASSIGN_OR_RETURN(auto segment, Segment::FromBuffer(writer.FinishBuffer()));
  return std::make_shared<const LexicalIndex>(std::vector<Part>{{std::move(segment), nullptr}}, doc_count, sum_ttf,
                                              settings, DeadTermCount(), params);
}

const LexicalIndex::Part* LexicalIndex::PartOf(DocNum doc) const {
  auto it = std::upper_bound(parts_.begin(), parts_.end(), doc,
                             [](DocNum d, const Part& p) { return d < p.segment->base(); });
  if (it == parts_.begin()) return nullptr;
  --it;
  return doc < it->segment->end() ? &*it : nullptr;
}

std::string_view LexicalIndex::ExternalId(DocNum doc) const {
  const Part* p = PartOf(doc);
  if (!p || (p->dead && p->dead->Contains(doc))) return {};
  return p->segment->ExternalId(doc);
}

namespace {

// true when `a` ranks above `b`. As a heap's "less", it puts the worst hit on top.
bool RanksAbove(const LexicalHit& a, const LexicalHit& b) {
  return a.score != b.score ? a.score > b.score : a.doc < b.doc;
}

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(std::min<size_t>(k, 1 << 16) + 1); }
  // The score a new hit must beat; -inf until k hits are held.
  float threshold() const { return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score; }
  bool full() const { return heap_.size() >= k_; }
  void Push(LexicalHit h) {
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), RanksAbove);
    } else if (RanksAbove(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), RanksAbove);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), RanksAbove);
    }
  }
  std::vector<LexicalHit> Take() {
    std::sort(heap_.begin(), heap_.end(), RanksAbove);
    return std::move(heap_);
  }

 private:
  size_t k_;
  std::vector<LexicalHit> heap_;
};

constexpr uint64_t kExhausted = uint64_t{1} << 32;  // above every doc number

// The score bound of a term whose saturations are at most `saturation` (stored at the segment's
// reference norms) rescaled by `scale`; a damaged or unusable bound falls back to the weight itself,
// which no score of the term exceeds.
float BoundScore(float weight, float saturation, float scale) {
  const float s = saturation * scale;
  return s >= 0 && s < std::numeric_limits<float>::infinity() ? Bm25Norms::Score(weight, s) : weight;
}

// One query term's postings in one segment: a position (block, index in block), blocks decoded lazily.
class TermIter {
 public:
  TermIter(const Segment::Cursor& cursor, const Segment& segment, const Bm25Norms& norms, float weight, float scale)
      : cursor_(cursor), norms_(&norms), seg_norms_(segment.norms()), base_(segment.base()), weight_(weight),
        scale_(scale) {}

  float weight() const { return weight_; }
  bool corrupt() const { return corrupt_; }
  uint64_t blocks_decoded() const { return blocks_decoded_; }

  // The current doc (kExhausted past the end).
  uint64_t Doc() {
    while (block_ < cursor_.n_blocks()) {
      if (!Ensure()) return kExhausted;
      if (pos_ < buf_.n) return buf_.docs[pos_];
      NextBlock();
    }
    return kExhausted;
  }
  // A lower bound of the current doc that decodes nothing.
  uint64_t DocLowerBound() const {
    if (block_ >= cursor_.n_blocks()) return kExhausted;
    if (decoded_ == block_ && pos_ < buf_.n) return buf_.docs[pos_];
    return block_ == 0 ? base_ : uint64_t{cursor_.BlockLastDoc(block_ - 1)} + 1;
  }
  // Moves to the first block that may hold a doc >= target, decoding nothing.
  void ShallowAdvance(uint64_t target) {
    while (block_ < cursor_.n_blocks() && cursor_.BlockLastDoc(block_) < target) NextBlock();
  }
  // Moves to the first posting >= target.
  void Advance(uint64_t target) {
    ShallowAdvance(target);
    while (block_ < cursor_.n_blocks()) {
      if (!Ensure()) return;
      if (pos_ < buf_.n && buf_.docs[pos_] < target) {
        pos_ = static_cast<uint32_t>(std::lower_bound(buf_.docs + pos_, buf_.docs + buf_.n, target) - buf_.docs);
      }
      if (pos_ < buf_.n) return;
      NextBlock();
    }
  }
  // Last doc the current block may hold (the block's bound covers up to it).
  uint64_t BlockEnd() const { return block_ < cursor_.n_blocks() ? cursor_.BlockLastDoc(block_) : kExhausted; }
  // A bound of this term's score over docs in [from, to).
  float WindowBound(uint64_t from, uint64_t to) {
    ShallowAdvance(from);
    float sat = 0;
    for (uint32_t b = block_; b < cursor_.n_blocks(); ++b) {
      sat = std::max(sat, cursor_.BlockMaxSaturation(b));
      if (cursor_.BlockLastDoc(b) + uint64_t{1} >= to) break;
    }
    return block_ < cursor_.n_blocks() ? BoundScore(weight_, sat, scale_) : 0.0f;
  }
  float Score() const {
    return Bm25Norms::Score(weight_, norms_->Saturation(buf_.tfs[pos_], seg_norms_[buf_.docs[pos_] - base_]));
  }
  // Adds the scores of postings below `end` from the current position, moving past them; calls
  // `add(doc, score)` for each. Returns the number of postings scored.
  template <typename Add>
  uint64_t ScoreUpTo(uint64_t end, Add&& add) {
    uint64_t n = 0;
    while (block_ < cursor_.n_blocks()) {
      if (!Ensure()) break;
      for (; pos_ < buf_.n && buf_.docs[pos_] < end; ++pos_, ++n) add(buf_.docs[pos_], Score());
      if (pos_ < buf_.n) break;
      NextBlock();
    }
    return n;
  }

 private:
  void NextBlock() {
    ++block_;
    pos_ = 0;
  }
  bool Ensure() {
    if (decoded_ == block_) return true;
    if (!cursor_.Decode(block_, &buf_)) {
      corrupt_ = true;
      block_ = cursor_.n_blocks();
      return false;
    }
    decoded_ = block_;
    pos_ = 0;
    ++blocks_decoded_;
    return true;
  }

  Segment::Cursor cursor_;
  const Bm25Norms* norms_;
  const uint8_t* seg_norms_;
  DocNum base_;
  float weight_, scale_;
  uint32_t block_ = 0, pos_ = 0, decoded_ = UINT32_MAX;
  bool corrupt_ = false;
  uint64_t blocks_decoded_ = 0;
  PostingsBlock buf_;
};

// SearchMaxScore scores the essential terms in inner windows of this many doc numbers.
constexpr uint64_t kInnerWindow = 4096;

// Per-thread scoring buffers (ThreadScratch), all zero between calls.
struct ScoringScratch {
  std::vector<double> acc;       // SearchExhaustive: a score per doc number of the segment
  std::vector<DocNum> touched;   // ... and the doc numbers it touched
  std::vector<double> window_scores = std::vector<double>(kInnerWindow, 0.0);  // SearchMaxScore
  std::vector<uint64_t> window_seen = std::vector<uint64_t>(kInnerWindow / 64, 0);
};

// Scores every posting of one segment.
void SearchExhaustive(std::vector<TermIter>& terms, const Segment& segment, const DeadDocs* dead, TopK* top,
                      LexicalSearchStats* stats) {
  // A BM25 score is always > 0 (idf > 0), so a zero accumulator means "not yet touched".
  ScoringScratch& scratch = ThreadScratch<ScoringScratch>();
  std::vector<double>& acc = scratch.acc;
  std::vector<DocNum>& touched = scratch.touched;
  if (acc.size() < segment.n_docnums()) acc.resize(segment.n_docnums(), 0.0);
  touched.clear();
  const DocNum base = segment.base();
  for (auto& t : terms) {
    const uint64_t n = t.ScoreUpTo(kExhausted, [&](DocNum d, float s) {
      if (acc[d - base] == 0) touched.push_back(d);
      acc[d - base] += s;
    });
    if (stats) stats->postings_scored += n;
  }
  if (stats) stats->docs_scored += touched.size();
  for (DocNum d : touched) {
    if (!dead || !dead->Contains(d)) top->Push({d, static_cast<float>(acc[d - base])});
    acc[d - base] = 0;
  }
}

// Block-max MaxScore over one segment (as Lucene 9's MaxScoreBulkScorer). The segment's doc range is
// walked in outer windows; in each, every term's score bound over the window (the maximum of its blocks'
// bounds there) orders the terms, and those whose cumulative bound cannot beat the current k-th score
// are non-essential: a document only they contain cannot enter the top k. A window where every term is
// non-essential is skipped without decoding. Within a window the essential terms are scored
// term-at-a-time into a small accumulator, in inner windows of 4,096 doc numbers; each candidate then
// probes the non-essential terms (highest bound first) only while it can still beat the threshold.
// Documents are finished in ascending order, so a later document that ties the threshold never displaces
// a held one and pruning at <= is exact.
void SearchMaxScore(std::vector<TermIter>& terms, const Segment& segment, const DeadDocs* dead, TopK* top,
                    LexicalSearchStats* stats) {
  const size_t m = terms.size();
  constexpr uint64_t kInner = kInnerWindow;
  ScoringScratch& scratch = ThreadScratch<ScoringScratch>();
  std::vector<double>& window_scores = scratch.window_scores;
  std::vector<uint64_t>& window_seen = scratch.window_seen;
  std::vector<uint32_t> order(m);  // terms by ascending window bound
  for (uint32_t i = 0; i < m; ++i) order[i] = i;
  std::vector<float> bound(m);
  std::vector<double> prefix(m);  // prefix[i] = sum of the bounds of order[0..i]
  uint64_t postings = 0, scored = 0;
  size_t first_essential = 0;
  const uint64_t seg_end = segment.end();
  uint64_t from = segment.base();
  for (;;) {
    uint64_t next = kExhausted;
    for (auto& t : terms) next = std::min(next, t.DocLowerBound());
    from = std::max(from, next);
    if (from >= seg_end) break;
    // The window reaches at least to the end of the essential terms' current blocks.
    uint64_t to = kExhausted;
    for (size_t i = first_essential; i < m; ++i) {
      terms[order[i]].ShallowAdvance(from);
      to = std::min(to, terms[order[i]].BlockEnd() + 1);
    }
    to = std::min(std::max(to, from + kInner), seg_end);
    for (size_t i = 0; i < m; ++i) bound[i] = terms[i].WindowBound(from, to);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return bound[a] < bound[b]; });
    double running = 0;
    for (size_t i = 0; i < m; ++i) prefix[i] = running += bound[order[i]];
    first_essential = 0;
    if (top->full()) {
      const double t = top->threshold();
      while (first_essential < m && prefix[first_essential] <= t) ++first_essential;
    }
    if (first_essential == m) {  // nothing in this window can enter the top k
      first_essential = 0;
      from = to;
      continue;
    }
    for (uint64_t inner = from; inner < to;) {
      uint64_t start = kExhausted;
      for (size_t i = first_essential; i < m; ++i) {
        terms[order[i]].Advance(inner);
        start = std::min(start, terms[order[i]].Doc());
      }
      if (start >= to) break;
      const uint64_t end = std::min(start + kInner, to);
      for (size_t i = first_essential; i < m; ++i) {
        postings += terms[order[i]].ScoreUpTo(end, [&](DocNum d, float s) {
          const uint64_t slot = d - start;
          window_seen[slot >> 6] |= uint64_t{1} << (slot & 63);
          window_scores[slot] += s;
        });
      }
      for (size_t word = 0; word < kInner / 64; ++word) {
        for (uint64_t bits = window_seen[word]; bits; bits &= bits - 1) {
          const uint64_t slot = word * 64 + std::countr_zero(bits);
          const DocNum doc = static_cast<DocNum>(start + slot);
          double score = window_scores[slot];
          window_scores[slot] = 0;
          ++scored;
          const double threshold = top->threshold();
          bool competitive = true;
          for (size_t i = first_essential; i-- > 0;) {
            if (score + prefix[i] <= threshold) {
              competitive = false;
              break;
            }
            TermIter& t = terms[order[i]];
            t.Advance(doc);
            if (t.Doc() == doc) {
              score += t.Score();
              ++postings;
            }
          }
          if (competitive && static_cast<float>(score) > threshold && !(dead && dead->Contains(doc))) {
            top->Push({doc, static_cast<float>(score)});
          }
        }
        window_seen[word] = 0;
      }
      inner = end;
      if (top->full()) {
        const double t = top->threshold();
        while (first_essential < m && prefix[first_essential] <= t) ++first_essential;
        if (first_essential == m) break;
      }
    }
    first_essential = std::min(first_essential, m - 1);
    from = to;
  }
  if (stats) stats->postings_scored += postings, stats->docs_scored += scored;
}

}  // namespace

Result<std::vector<LexicalHit>> LexicalIndex::Search(const std::vector<std::string>& terms, size_t k, bool exhaustive,
                                                     LexicalSearchStats* stats) const {
  if (k == 0 || terms.empty()) return std::vector<LexicalHit>();
  std::map<std::string_view, int> counts;
  for (const auto& t : terms) ++counts[t];
  struct QueryTerm {
    std::string_view text;
    float weight;
    std::vector<std::optional<Segment::Term>> in_part;
  };
  std::vector<QueryTerm> query;
  for (auto [term, count] : counts) {
    QueryTerm q{term, 0.0f, std::vector<std::optional<Segment::Term>>(parts_.size())};
    uint64_t df = 0;
    for (size_t p = 0; p < parts_.size(); ++p) {
      q.in_part[p] = parts_[p].segment->Find(term);
      if (q.in_part[p]) df += q.in_part[p]->df;
    }
    if (df == 0) continue;
    if (dead_term_count_) {
      QUARRY_ASSIGN_OR_RETURN(const uint64_t dead, dead_term_count_(term));
      df = dead < df ? df - dead : 0;
      if (df == 0) continue;
    }
    q.weight = static_cast<float>(count) * Bm25Idf(doc_count_, df);
    query.push_back(std::move(q));
  }
  TopK top(k);
  std::vector<TermIter> iters;
  for (size_t p = 0; p < parts_.size(); ++p) {
    const Segment& segment = *parts_[p].segment;
    const float scale = segment.BoundScale(params_, norms_.avgdl());
    iters.clear();
    for (const auto& q : query) {
      if (!q.in_part[p]) continue;
      QUARRY_ASSIGN_OR_RETURN(auto cursor, Segment::Cursor::Open(segment, *q.in_part[p]));
      iters.emplace_back(cursor, segment, norms_, q.weight, scale);
    }
    if (iters.empty()) continue;
    if (exhaustive) SearchExhaustive(iters, segment, parts_[p].dead.get(), &top, stats);
    else SearchMaxScore(iters, segment, parts_[p].dead.get(), &top, stats);
    for (const auto& it : iters) {
      if (it.corrupt()) return Status::Corruption(segment.name() + ": a postings block failed its checks");
      if (stats) stats->blocks_decoded += it.blocks_decoded();
    }
  }
  return top.Take();
}

}  // namespace quarry
