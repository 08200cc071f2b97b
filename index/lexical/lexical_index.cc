#include "index/lexical/lexical_index.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>
#include <map>

#include <tbb/parallel_for.h>

#include "common/coding.h"

namespace quarry {

std::string LexicalText(const Document& doc) { return doc.title + " " + doc.text; }

std::string PostingsKey(std::string_view term, DocNum first_doc) {
  std::string key(term);
  key.push_back('\0');
  PutFixed32BE(&key, first_doc);
  return key;
}

bool ParsePostingsKey(std::string_view key, std::string_view* term, DocNum* first_doc) {
  if (key.size() < 5 || key[key.size() - 5] != '\0') return false;
  *term = key.substr(0, key.size() - 5);
  *first_doc = DecodeFixed32BE(key.data() + key.size() - 4);
  return true;
}

std::string EncodePostingsBlock(const Postings& postings) {
  std::string block;
  PutVarint32(&block, static_cast<uint32_t>(postings.size()));
  DocNum prev = postings.empty() ? 0 : postings.front().first;
  for (auto [doc, tf] : postings) {
    PutVarint32(&block, doc - prev);
    PutVarint32(&block, tf);
    prev = doc;
  }
  return block;
}

bool DecodePostingsBlock(DocNum doc, std::string_view in, Postings* postings) {
  uint32_t n;
  if (!GetVarint32(&in, &n)) return false;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t delta, tf;
    if (!GetVarint32(&in, &delta) || !GetVarint32(&in, &tf)) return false;
    doc += delta;
    postings->emplace_back(doc, tf);
  }
  return in.empty();
}

namespace {

void PutCounter(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* meta, const char* key, uint64_t v) {
  std::string value;
  PutFixed64BE(&value, v);
  batch->Put(meta, key, value);
}

}  // namespace

Result<std::unique_ptr<LexicalWriter>> LexicalWriter::Open(Store* store, rocksdb::WriteBatch* batch) {
  std::unique_ptr<LexicalWriter> w(new LexicalWriter(store));
  QUARRY_ASSIGN_OR_RETURN(auto settings_json, store->Get(kCfMeta, kMetaLexAnalyzer));
  AnalyzerSettings settings;
  if (settings_json) {
    QUARRY_ASSIGN_OR_RETURN(settings, AnalyzerSettings::FromJson(*settings_json));
  } else {
    batch->Put(store->cf(kCfMeta), kMetaLexAnalyzer, settings.ToJson());
  }
  QUARRY_ASSIGN_OR_RETURN(w->analyzer_, Analyzer::Create(settings));
  w->settings_ = settings;
  QUARRY_ASSIGN_OR_RETURN(w->sum_ttf_, store->GetCounter(kMetaLexSumTtf));
  QUARRY_ASSIGN_OR_RETURN(w->doc_count_, store->GetCounter(kMetaLexDocCount));
  w->Discard();
  return w;
}

void LexicalWriter::Add(DocNum docnum, const Document& doc) {
  std::vector<std::string> terms;
  analyzer_->Analyze(LexicalText(doc), &terms);
  AddAnalyzed(docnum, doc.id, std::move(terms));
}

Result<std::vector<std::vector<std::string>>> LexicalWriter::AnalyzeBatch(const std::vector<Document>& docs) const {
  // Creating this thread's analyzer first surfaces an ICU failure here rather than in a worker.
  QUARRY_RETURN_IF_ERROR(Analyzer::ForThisThread(settings_).status());
  std::vector<std::vector<std::string>> terms(docs.size());
  std::atomic<bool> failed{false};
  tbb::parallel_for(tbb::blocked_range<size_t>(0, docs.size(), 16), [&](const tbb::blocked_range<size_t>& r) {
    auto analyzer = Analyzer::ForThisThread(settings_);
    if (!analyzer.ok()) {
      failed = true;
      return;
    }
    for (size_t i = r.begin(); i < r.end(); ++i) (*analyzer)->Analyze(LexicalText(docs[i]), &terms[i]);
  });
  if (failed) return Status::Internal("lexical index: could not create an analyzer on a worker thread");
  return terms;
}

void LexicalWriter::AddAnalyzed(DocNum docnum, std::string_view id, std::vector<std::string> terms) {
  const auto length = static_cast<uint32_t>(terms.size());
  std::sort(terms.begin(), terms.end());
  for (size_t i = 0; i < terms.size();) {
    size_t j = i;
    while (j < terms.size() && terms[j] == terms[i]) ++j;
    pending_postings_[std::move(terms[i])].emplace_back(docnum, static_cast<uint32_t>(j - i));
    i = j;
  }
  pending_lengths_[docnum] = length;
  std::string value;
  PutVarint32(&value, length);
  value.append(id);
  pending_docs_.emplace_back(docnum, std::move(value));
  pending_sum_ttf_ += length;
  if (length > 0) ++pending_doc_count_;
}

Status LexicalWriter::Remove(DocNum docnum) {
  uint32_t length;
  if (auto it = pending_lengths_.find(docnum); it != pending_lengths_.end()) {
    length = it->second;
    pending_lengths_.erase(it);
    // Its lex_docs put is still pending: drop it rather than write and delete in one batch.
    std::erase_if(pending_docs_, [docnum](const auto& d) { return d.first == docnum; });
  } else {
    QUARRY_ASSIGN_OR_RETURN(auto value, store_->Get(kCfLexDocs, EncodeFixed32BE(docnum)));
    if (!value) return Status::Corruption("lexical index: live doc " + std::to_string(docnum) + " has no lex_docs entry");
    std::string_view in = *value;
    if (!GetVarint32(&in, &length)) return Status::Corruption("lexical index: bad lex_docs entry " + std::to_string(docnum));
    pending_removed_.push_back(docnum);
  }
  pending_sum_ttf_ -= length;
  if (length > 0) --pending_doc_count_;
  return Status::Ok();
}

void LexicalWriter::Flush(rocksdb::WriteBatch* batch) {
  auto* postings_cf = store_->cf(kCfLexPostings);
  auto* docs_cf = store_->cf(kCfLexDocs);
  for (auto& [term, postings] : pending_postings_) {
    // Postings of a batch's documents are in ascending doc order (doc numbers only grow).
    batch->Put(postings_cf, PostingsKey(term, postings.front().first), EncodePostingsBlock(postings));
  }
  for (DocNum doc : pending_removed_) batch->Delete(docs_cf, EncodeFixed32BE(doc));
  for (auto& [doc, value] : pending_docs_) batch->Put(docs_cf, EncodeFixed32BE(doc), value);
  auto* meta = store_->cf(kCfMeta);
  PutCounter(batch, meta, kMetaLexSumTtf, pending_sum_ttf_);
  PutCounter(batch, meta, kMetaLexDocCount, pending_doc_count_);
  sum_ttf_ = pending_sum_ttf_;
  doc_count_ = pending_doc_count_;
  Discard();
}

void LexicalWriter::Discard() {
  pending_sum_ttf_ = sum_ttf_;
  pending_doc_count_ = doc_count_;
  pending_postings_.clear();
  pending_lengths_.clear();
  pending_docs_.clear();
  pending_removed_.clear();
}

// ---------------------------------------------------------------------------------------------------

Result<std::shared_ptr<const LexicalIndex>> LexicalIndex::Load(const Store& store, const Store::Snapshot* snap,
                                                               Bm25Params params) {
  AnalyzerSettings settings;
  QUARRY_ASSIGN_OR_RETURN(auto settings_json, store.Get(kCfMeta, kMetaLexAnalyzer, snap));
  if (settings_json) {
    QUARRY_ASSIGN_OR_RETURN(settings, AnalyzerSettings::FromJson(*settings_json));
  }
  const std::string& dir = store.dir();
  auto* docs_cf = store.cf(kCfLexDocs);
  auto* postings_cf = store.cf(kCfLexPostings);

  // Pass 1: live documents, their lengths and ids.
  std::vector<uint32_t> lengths;
  std::vector<uint8_t> live;
  std::vector<uint64_t> id_offsets{0};
  std::string ids;
  uint64_t sum_ttf = 0, doc_count = 0;
  if (docs_cf) {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ReadOptionsAt(snap), docs_cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 4) return Status::Corruption(dir + ": lex_docs key of wrong size");
      const DocNum doc = DecodeFixed32BE(it->key().data());
      std::string_view in(it->value().data(), it->value().size());
      uint32_t length;
      if (!GetVarint32(&in, &length)) return Status::Corruption(dir + ": lex_docs entry " + std::to_string(doc));
      if (doc >= lengths.size()) {
        lengths.resize(doc + 1, 0);
        live.resize(doc + 1, 0);
        id_offsets.resize(doc + 2, ids.size());
      }
      lengths[doc] = length;
      live[doc] = 1;
      ids.append(in);
      id_offsets[doc + 1] = ids.size();
      sum_ttf += length;
      if (length > 0) ++doc_count;
    }
    if (!it->status().ok()) return FromRocks(it->status(), dir + ": scan lex_docs");
  }
  std::shared_ptr<LexicalIndex> index =
      WithDocuments(params, settings, lengths, std::move(id_offsets), std::move(ids), sum_ttf, doc_count);

  // Pass 2: postings blocks, term by term in key order, keeping live documents only.
  if (postings_cf) {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ReadOptionsAt(snap), postings_cf));
    std::string current;
    TermEntry entry{};
    bool have_term = false;
    Postings block;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view term;
      DocNum first;
      if (!ParsePostingsKey(std::string_view(it->key().data(), it->key().size()), &term, &first)) {
        return Status::Corruption(dir + ": lex_postings key");
      }
      if (!have_term || term != current) {
        if (have_term) index->FinishTerm(current, entry);
        current.assign(term);
        entry = TermEntry{static_cast<uint32_t>(index->docs_.size()), 0, 0.0f, 0.0f};
        have_term = true;
      }
      block.clear();
      if (!DecodePostingsBlock(first, std::string_view(it->value().data(), it->value().size()), &block)) {
        return Status::Corruption(dir + ": truncated lex_postings block of '" + current + "'");
      }
      for (auto [doc, tf] : block) {
        if (doc < live.size() && live[doc]) index->AddPosting(&entry, doc, tf);
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), dir + ": scan lex_postings");
    if (have_term) index->FinishTerm(current, entry);
  }
  return std::shared_ptr<const LexicalIndex>(std::move(index));
}

std::shared_ptr<LexicalIndex> LexicalIndex::WithDocuments(Bm25Params params, const AnalyzerSettings& settings,
                                                         const std::vector<uint32_t>& lengths,
                                                         std::vector<uint64_t> id_offsets, std::string ids,
                                                         uint64_t sum_ttf, uint64_t doc_count) {
  const float avgdl = doc_count ? static_cast<float>(static_cast<double>(sum_ttf) / doc_count) : 1.0f;
  std::shared_ptr<LexicalIndex> index(new LexicalIndex(params, avgdl));
  index->analyzer_settings_ = settings;
  index->doc_count_ = doc_count;
  index->ids_ = std::move(ids);
  index->id_offsets_ = std::move(id_offsets);
  index->doc_norms_.resize(lengths.size());
  for (size_t d = 0; d < lengths.size(); ++d) index->doc_norms_[d] = IntToByte4(lengths[d]);
  return index;
}

void LexicalIndex::AddPosting(TermEntry* entry, DocNum doc, uint32_t tf) {
  docs_.push_back(doc);
  tfs_.push_back(tf);
  entry->max_saturation = std::max(entry->max_saturation, norms_.Saturation(tf, doc_norms_[doc]));
}

void LexicalIndex::FinishTerm(const std::string& term, TermEntry entry) {
  entry.end = static_cast<uint32_t>(docs_.size());
  if (entry.end == entry.begin) return;
  entry.idf = Bm25Idf(doc_count_, entry.end - entry.begin);
  unit_scores_.resize(entry.end);
  for (uint32_t i = entry.begin; i < entry.end; ++i) {
    unit_scores_[i] = Bm25Norms::Score(entry.idf, norms_.Saturation(tfs_[i], doc_norms_[docs_[i]]));
  }
  terms_.emplace(term, entry);
}

Result<std::shared_ptr<const LexicalIndex>> LexicalIndex::Build(const std::vector<std::string>& ids,
                                                                const std::vector<std::string>& texts,
                                                                const AnalyzerSettings& settings, Bm25Params params) {
  if (ids.size() != texts.size()) return Status::InvalidArgument("lexical index: ids and texts differ in number");
  QUARRY_ASSIGN_OR_RETURN(auto analyzer, Analyzer::Create(settings));
  std::map<std::string, std::vector<std::pair<DocNum, uint32_t>>> postings;  // term order, as on disk
  std::vector<uint32_t> lengths(texts.size());
  std::vector<uint64_t> id_offsets{0};
  std::string all_ids;
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
    all_ids += ids[d];
    id_offsets.push_back(all_ids.size());
  }
  auto index = WithDocuments(params, settings, lengths, std::move(id_offsets), std::move(all_ids), sum_ttf, doc_count);
  for (const auto& [term, list] : postings) {
    TermEntry entry{static_cast<uint32_t>(index->docs_.size()), 0, 0.0f, 0.0f};
    for (auto [doc, tf] : list) index->AddPosting(&entry, doc, tf);
    index->FinishTerm(term, entry);
  }
  return std::shared_ptr<const LexicalIndex>(std::move(index));
}

std::string_view LexicalIndex::ExternalId(DocNum doc) const {
  if (doc + 1 >= id_offsets_.size()) return {};
  return std::string_view(ids_).substr(id_offsets_[doc], id_offsets_[doc + 1] - id_offsets_[doc]);
}

namespace {

// true when `a` ranks above `b`. As a heap's "less", it puts the worst hit on top.
bool RanksAbove(const LexicalHit& a, const LexicalHit& b) {
  return a.score != b.score ? a.score > b.score : a.doc < b.doc;
}

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k + 1); }
  // The score a new hit must beat; -inf until k hits are held.
  float threshold() const { return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score; }
  bool full() const { return heap_.size() >= k_; }
  void Push(LexicalHit h) {
    if (k_ == 0) return;
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

}  // namespace

std::vector<LexicalHit> LexicalIndex::Search(const std::vector<std::string>& terms, size_t k, bool exhaustive,
                                             LexicalSearchStats* stats) const {
  std::map<std::string_view, int> counts;
  for (const auto& t : terms) ++counts[t];
  std::vector<QueryTerm> q;
  for (auto [term, count] : counts) {
    auto it = terms_.find(std::string(term));
    if (it == terms_.end()) continue;
    const float weight = static_cast<float>(count) * it->second.idf;
    q.push_back({&it->second, weight, Bm25Norms::Score(weight, it->second.max_saturation), count == 1});
  }
  if (q.empty() || k == 0) return {};
  return exhaustive ? SearchExhaustive(q, k, stats) : SearchMaxScore(std::move(q), k, stats);
}

std::vector<LexicalHit> LexicalIndex::SearchExhaustive(const std::vector<QueryTerm>& q, size_t k,
                                                       LexicalSearchStats* stats) const {
  // Per-thread accumulators, all zero between calls. A BM25 score is always > 0 (idf > 0), so a zero
  // accumulator means "not yet touched".
  thread_local std::vector<double> acc;
  thread_local std::vector<DocNum> touched;
  if (acc.size() < doc_norms_.size()) acc.resize(doc_norms_.size(), 0.0);
  touched.clear();
  for (const auto& t : q) {
    for (uint32_t i = t.entry->begin; i < t.entry->end; ++i) {
      const DocNum d = docs_[i];
      if (acc[d] == 0) touched.push_back(d);
      acc[d] += PostingScore(t, i);
    }
    if (stats) stats->postings_scored += t.entry->end - t.entry->begin;
  }
  if (stats) stats->docs_scored += touched.size();
  TopK top(k);
  for (DocNum d : touched) {
    top.Push({d, static_cast<float>(acc[d])});
    acc[d] = 0;
  }
  return top.Take();
}

std::vector<LexicalHit> LexicalIndex::SearchMaxScore(std::vector<QueryTerm> q, size_t k,
                                                     LexicalSearchStats* stats) const {
  // MaxScore over windows of doc numbers (as Lucene 9's MaxScoreBulkScorer). Terms by ascending
  // upper bound; bound_prefix[i] = sum of the bounds of terms 0..i. Terms below `first_essential` are
  // non-essential: a document only they contain scores at most bound_prefix[first_essential - 1],
  // which cannot beat the threshold. Within a window the essential terms are scored term-at-a-time into
  // a small accumulator; each candidate then probes the non-essential terms (highest bound first) only
  // while it can still beat the threshold. Documents are finished in ascending order, so a later
  // document that ties the threshold never displaces a held one and pruning at <= is exact.
  std::sort(q.begin(), q.end(), [](const QueryTerm& a, const QueryTerm& b) { return a.upper_bound < b.upper_bound; });
  const size_t m = q.size();
  std::vector<double> bound_prefix(m);
  double running = 0;
  for (size_t i = 0; i < m; ++i) bound_prefix[i] = running += q[i].upper_bound;
  std::vector<uint32_t> pos(m), end(m);
  for (size_t i = 0; i < m; ++i) pos[i] = q[i].entry->begin, end[i] = q[i].entry->end;

  constexpr DocNum kWindow = 4096;
  thread_local std::vector<double> window_scores(kWindow, 0.0);
  thread_local std::vector<uint64_t> window_seen(kWindow / 64, 0);
  TopK top(k);
  size_t first_essential = 0;
  uint64_t postings = 0, scored = 0;
  const DocNum kNoDoc = std::numeric_limits<DocNum>::max();
  for (;;) {
    DocNum window_start = kNoDoc;
    for (size_t i = first_essential; i < m; ++i) {
      if (pos[i] < end[i]) window_start = std::min(window_start, docs_[pos[i]]);
    }
    if (window_start == kNoDoc) break;
    const uint64_t window_end = uint64_t{window_start} + kWindow;
    for (size_t i = first_essential; i < m; ++i) {
      uint32_t p = pos[i];
      for (; p < end[i] && docs_[p] < window_end; ++p) {
        const DocNum slot = docs_[p] - window_start;
        window_seen[slot >> 6] |= uint64_t{1} << (slot & 63);
        window_scores[slot] += PostingScore(q[i], p);
      }
      postings += p - pos[i];
      pos[i] = p;
    }
    for (size_t word = 0; word < kWindow / 64; ++word) {
      for (uint64_t bits = window_seen[word]; bits; bits &= bits - 1) {
        const DocNum slot = static_cast<DocNum>(word * 64 + std::countr_zero(bits));
        const DocNum doc = window_start + slot;
        double score = window_scores[slot];
        window_scores[slot] = 0;
        ++scored;
        const double threshold = top.threshold();
        bool competitive = true;
        for (size_t i = first_essential; i-- > 0;) {
          if (score + bound_prefix[i] <= threshold) {
            competitive = false;
            break;
          }
          uint32_t lo = pos[i], step = 1;  // gallop to the first posting >= doc
          while (lo + step < end[i] && docs_[lo + step] < doc) lo += step, step <<= 1;
          pos[i] = static_cast<uint32_t>(
              std::lower_bound(docs_.begin() + lo, docs_.begin() + std::min<uint64_t>(lo + step, end[i]), doc) -
              docs_.begin());
          if (pos[i] < end[i] && docs_[pos[i]] == doc) {
            score += PostingScore(q[i], pos[i]);
            ++postings;
          }
        }
        if (competitive && static_cast<float>(score) > threshold) top.Push({doc, static_cast<float>(score)});
      }
      window_seen[word] = 0;
    }
    if (top.full()) {
      const double t = top.threshold();
      while (first_essential < m && bound_prefix[first_essential] <= t) ++first_essential;
    }
  }
  if (stats) stats->postings_scored += postings, stats->docs_scored += scored;
  return top.Take();
}

}  // namespace quarry

namespace quarry {

Result<CompactionReport> CompactLexicalIndex(Store* store) {
  const std::string& dir = store->dir();
  std::vector<uint8_t> live;
  {
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(nullptr), store->cf(kCfLexDocs)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 4) return Status::Corruption(dir + ": lex_docs key of wrong size");
      const DocNum doc = DecodeFixed32BE(it->key().data());
      if (doc >= live.size()) live.resize(doc + 1, 0);
      live[doc] = 1;
    }
    if (!it->status().ok()) return FromRocks(it->status(), dir + ": scan lex_docs");
  }
  auto* cf = store->cf(kCfLexPostings);
  CompactionReport report;
  rocksdb::WriteBatch batch;
  std::string current;
  std::vector<std::string> keys;  // the current term's blocks
  Postings kept;
  uint64_t dropped = 0;
  auto finish_term = [&]() {
    if (keys.size() > 1 || dropped > 0) {
      for (const auto& k : keys) batch.Delete(cf, k);
      if (!kept.empty()) batch.Put(cf, PostingsKey(current, kept.front().first), EncodePostingsBlock(kept));
      ++report.terms_rewritten;
      report.postings_dropped += dropped;
    }
    keys.clear();
    kept.clear();
    dropped = 0;
  };
  std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(ReadOptionsAt(nullptr), cf));
  Postings block;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view term;
    DocNum first;
    const std::string_view key(it->key().data(), it->key().size());
    if (!ParsePostingsKey(key, &term, &first)) return Status::Corruption(dir + ": lex_postings key");
    if (!keys.empty() && term != current) {
      finish_term();
      if (batch.Count() >= 4096) {  // each term is whole within a batch
        QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
        batch.Clear();
      }
    }
    current.assign(term);
    keys.emplace_back(key);
    block.clear();
    if (!DecodePostingsBlock(first, std::string_view(it->value().data(), it->value().size()), &block)) {
      return Status::Corruption(dir + ": truncated lex_postings block of '" + current + "'");
    }
    for (auto posting : block) {
      if (posting.first < live.size() && live[posting.first]) kept.push_back(posting);
      else ++dropped;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), dir + ": scan lex_postings");
  if (!keys.empty()) finish_term();
  if (batch.Count() > 0) QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  return report;
}

}  // namespace quarry
