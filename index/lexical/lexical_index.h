// The persistent inverted index and its in-memory searcher.
//
// On disk (docs/formats.md, "Lexical index"): every committed write batch appends, for each term it
// touches, one postings block keyed (term, 0x00, BE32 first doc number of the block); a document's
// analyzed length and external id live in `lex_docs`. Deleting or replacing a document removes its
// `lex_docs` entry; its postings stay behind as garbage that loading skips, so no change ever rewrites
// existing blocks (no full rebuild after small changes).
//
// In memory (LexicalIndex): the live postings of every term concatenated in doc order, per-term
// score bounds for MaxScore pruning, one norm byte per document. Immutable once loaded; safe to
// search from many threads.
#pragma once

#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "index/lexical/analyzer.h"
#include "index/lexical/bm25.h"
#include "quarry/document.h"
#include "quarry/status.h"
#include "storage/store.h"

namespace quarry {

inline constexpr char kCfLexPostings[] = "lex_postings";  // term 0x00 BE32(first doc) -> block
inline constexpr char kCfLexDocs[] = "lex_docs";          // BE32 doc -> varint length, id bytes
inline constexpr char kMetaLexAnalyzer[] = "lex.analyzer";  // AnalyzerSettings JSON
inline constexpr char kMetaLexSumTtf[] = "lex.sum_ttf";     // BE64: sum of live document lengths
inline constexpr char kMetaLexDocCount[] = "lex.doc_count"; // BE64: live documents with >= 1 term

// The text a document is indexed under: title + " " + text (Pyserini's "flat" field).
std::string LexicalText(const Document& doc);

// Postings blocks (docs/formats.md): key = term 0x00 BE32(first doc); value = varint n, then n x
// (varint doc delta, varint tf), the first delta relative to the key's doc.
using Postings = std::vector<std::pair<DocNum, uint32_t>>;  // (doc, tf), ascending docs
std::string PostingsKey(std::string_view term, DocNum first_doc);
// false when the key is malformed.
bool ParsePostingsKey(std::string_view key, std::string_view* term, DocNum* first_doc);
std::string EncodePostingsBlock(const Postings& postings);
// Appends the block's postings; false when it is truncated or has trailing bytes.
bool DecodePostingsBlock(DocNum first_doc, std::string_view value, Postings* postings);

struct CompactionReport {
  uint64_t terms_rewritten = 0, postings_dropped = 0;
};
// Rewrites each term's blocks into one holding only live documents' postings (those with a lex_docs
// entry). Each term is replaced within one write batch, so the index is complete at every moment.
// The caller holds the collection's write lock.
Result<CompactionReport> CompactLexicalIndex(Store* store);

// Accumulates one write batch's changes to the lexical index. Not thread-safe: one writer at a time
// (the collection's write lock). Counters are committed with the batch they belong to.
class LexicalWriter {
 public:
  // Reads counters and analyzer settings (writing the defaults into `batch` for a new collection).
  static Result<std::unique_ptr<LexicalWriter>> Open(Store* store, rocksdb::WriteBatch* batch);

  void Add(DocNum docnum, const Document& doc);
  // Add() with the document's terms already analyzed (by AnalyzeBatch) under this writer's settings.
  void AddAnalyzed(DocNum docnum, std::string_view id, std::vector<std::string> terms);
  // Analyzes LexicalText of every document in parallel (oneTBB), one term list per document.
  Result<std::vector<std::vector<std::string>>> AnalyzeBatch(const std::vector<Document>& docs) const;
  // Removes a live document (committed, or added earlier in this batch).
  Status Remove(DocNum docnum);
  // Puts this batch's postings blocks, lex_docs entries and counters into `batch`.
  void Flush(rocksdb::WriteBatch* batch);
  // Forgets everything since the last Flush (the batch was not applied).
  void Discard();

 private:
  explicit LexicalWriter(Store* store) : store_(store) {}
  Store* store_;
  std::unique_ptr<Analyzer> analyzer_;
  AnalyzerSettings settings_;
  uint64_t sum_ttf_ = 0, doc_count_ = 0;                 // as of the last Flush
  uint64_t pending_sum_ttf_ = 0, pending_doc_count_ = 0;  // including this batch
  std::unordered_map<std::string, std::vector<std::pair<DocNum, uint32_t>>> pending_postings_;
  std::unordered_map<DocNum, uint32_t> pending_lengths_;  // added in this batch
  std::vector<std::pair<DocNum, std::string>> pending_docs_;  // lex_docs values to put
  std::vector<DocNum> pending_removed_;
};

struct LexicalHit {
  DocNum doc;
  float score;
};

// Work counters of one search (for benchmarks and tests of pruning).
struct LexicalSearchStats {
  uint64_t postings_scored = 0;
  uint64_t docs_scored = 0;
};

class LexicalIndex {
 public:
  // Loads the live postings as of `snap` (null: latest).
  static Result<std::shared_ptr<const LexicalIndex>> Load(const Store& store, const Store::Snapshot* snap,
                                                          Bm25Params params = {});

  // An index of in-memory texts, doc number = position (e.g. ResMem's training queries).
  static Result<std::shared_ptr<const LexicalIndex>> Build(const std::vector<std::string>& ids,
                                                           const std::vector<std::string>& texts,
                                                           const AnalyzerSettings& settings = {},
                                                           Bm25Params params = {});

  const AnalyzerSettings& analyzer_settings() const { return analyzer_settings_; }
  uint64_t doc_count() const { return doc_count_; }
  uint64_t n_terms() const { return terms_.size(); }
  uint64_t n_postings() const { return docs_.size(); }
  float avgdl() const { return norms_.avgdl(); }
  // External id of a live document; empty for a doc number that is not live.
  std::string_view ExternalId(DocNum doc) const;

  // Top k by score descending, ties by doc number ascending (insertion order, as Lucene). `terms` are
  // analyzed query terms; a repeated term counts that many times (Lucene's summed clause boosts).
  // MaxScore dynamic pruning; `exhaustive` scores every posting instead (same results, for tests).
  std::vector<LexicalHit> Search(const std::vector<std::string>& terms, size_t k, bool exhaustive = false,
                                 LexicalSearchStats* stats = nullptr) const;

 private:
  struct TermEntry {
    uint32_t begin, end;    // range in docs_/tfs_
    float idf;
    float max_saturation;   // max over postings of tf * norm inverse: bounds every score of the term
  };
  struct QueryTerm {
    const TermEntry* entry;
    float weight;
    float upper_bound;
    bool unit_boost;  // weight == idf: the precomputed unit_scores_ apply
  };
  // The score posting `i` of term `t` contributes.
  float PostingScore(const QueryTerm& t, uint32_t i) const {
    return t.unit_boost ? unit_scores_[i] : Bm25Norms::Score(t.weight, norms_.Saturation(tfs_[i], doc_norms_[docs_[i]]));
  }
  LexicalIndex(Bm25Params params, float avgdl) : params_(params), norms_(params, avgdl) {}
  // An index with these documents (lengths by doc number; ids packed by offsets) and no terms yet;
  // terms are then added, in term order, with AddPosting (ascending docs) and FinishTerm.
  static std::shared_ptr<LexicalIndex> WithDocuments(Bm25Params params, const AnalyzerSettings& settings,
                                                     const std::vector<uint32_t>& lengths,
                                                     std::vector<uint64_t> id_offsets, std::string ids,
                                                     uint64_t sum_ttf, uint64_t doc_count);
  void AddPosting(TermEntry* entry, DocNum doc, uint32_t tf);
  void FinishTerm(const std::string& term, TermEntry entry);
  std::vector<LexicalHit> SearchExhaustive(const std::vector<QueryTerm>& q, size_t k,
                                           LexicalSearchStats* stats) const;
  std::vector<LexicalHit> SearchMaxScore(std::vector<QueryTerm> q, size_t k, LexicalSearchStats* stats) const;

  Bm25Params params_;
  Bm25Norms norms_;
  AnalyzerSettings analyzer_settings_;
  uint64_t doc_count_ = 0;
  std::unordered_map<std::string, TermEntry> terms_;
  std::vector<uint32_t> docs_, tfs_;
  std::vector<float> unit_scores_;        // per posting: its score for a query term of boost 1
  std::vector<uint8_t> doc_norms_;        // by doc number
  std::vector<uint64_t> id_offsets_;      // by doc number, into ids_; equal neighbours = not live
  std::string ids_;
};

}  // namespace quarry
