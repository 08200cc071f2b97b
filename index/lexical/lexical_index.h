// The lexical index as searches see it: an immutable snapshot of segments (index/lexical/segment.h),
// the dead documents of each, and the live collection statistics BM25 needs.
//
// Scores are exactly those of a fresh index of the live documents in doc-number order (and so equal
// Lucene 8.7's): idf counts live documents only (dead postings are subtracted through DeadTermCount),
// avgdl is the live average, ties rank by doc number ascending.
//
// Thread safety: immutable; any number of threads may search one snapshot. A writer publishes a new
// snapshot after each commit (index/lexical/lexical_writer.h); searches in flight keep theirs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "index/lexical/analyzer.h"
#include "index/lexical/bm25.h"
#include "index/lexical/segment.h"
#include "quarry/document.h"
#include "quarry/status.h"
#include "storage/store.h"

namespace quarry {

// The text a document is indexed under: title + " " + text (Pyserini's "flat" field).
std::string LexicalText(const Document& doc);

// The doc numbers of one segment's range that are no longer live (deleted or replaced).
class DeadDocs {
 public:
  DeadDocs(DocNum base, uint32_t n_docnums) : base_(base), bits_((uint64_t{n_docnums} + 63) / 64, 0) {}
  bool Contains(DocNum doc) const {
    const uint64_t i = doc - base_;
    return i / 64 < bits_.size() && (bits_[i / 64] >> (i % 64)) & 1;
  }
  void Add(DocNum doc) {
    const uint64_t i = doc - base_;
    if (i / 64 < bits_.size()) bits_[i / 64] |= uint64_t{1} << (i % 64);
  }
  uint64_t Count() const;

 private:
  DocNum base_;
  std::vector<uint64_t> bits_;
};

struct LexicalHit {
  DocNum doc;
  float score;
};

// Work counters of one search (for benchmarks and tests of pruning).
struct LexicalSearchStats {
  uint64_t postings_scored = 0;
  uint64_t docs_scored = 0;
  uint64_t blocks_decoded = 0;
};

class LexicalIndex {
 public:
  struct Part {
    std::shared_ptr<const Segment> segment;
    std::shared_ptr<const DeadDocs> dead;  // null: none of its documents is dead
  };
  // Postings of dead documents that contain `term` (so that idf counts live documents only).
  using DeadTermCount = std::function<Result<uint64_t>(std::string_view term)>;

  // `parts` in ascending base order, non-overlapping. `doc_count` and `sum_ttf` are the live
  // statistics (documents with at least one term; their total length). `dead_term_count` may be empty
  // when no document is dead.
  // `store_snapshot` pins the RocksDB state this index was published with (null: none), so that a
  // search reads its documents as of the same moment.
  LexicalIndex(std::vector<Part> parts, uint64_t doc_count, uint64_t sum_ttf, const AnalyzerSettings& settings,
               DeadTermCount dead_term_count, Bm25Params params = {},
               std::shared_ptr<Store::Snapshot> store_snapshot = nullptr);

  // An index of in-memory texts, doc number = position (e.g. ResMem's training queries).
  static Result<std::shared_ptr<const LexicalIndex>> Build(const std::vector<std::string>& ids,
                                                           const std::vector<std::string>& texts,
                                                           const AnalyzerSettings& settings = {},
                                                           Bm25Params params = {});

  const AnalyzerSettings& analyzer_settings() const { return analyzer_settings_; }
  const std::vector<Part>& parts() const { return parts_; }
  const Store::Snapshot* store_snapshot() const { return store_snapshot_.get(); }
  uint64_t doc_count() const { return doc_count_; }
  uint64_t sum_ttf() const { return sum_ttf_; }
  float avgdl() const { return norms_.avgdl(); }
  // External id of a live document; empty for a doc number that is not live.
  std::string_view ExternalId(DocNum doc) const;
  bool IsLive(DocNum doc) const { return !ExternalId(doc).empty(); }

  // Top k by score descending, ties by doc number ascending (insertion order, as Lucene). `terms` are
  // analyzed query terms; a repeated term counts that many times (Lucene's summed clause boosts).
  // Block-max MaxScore pruning; `exhaustive` scores every posting instead (same results, for tests).
  // Corruption when a segment's data fails its checks.
  Result<std::vector<LexicalHit>> Search(const std::vector<std::string>& terms, size_t k, bool exhaustive = false,
                                         LexicalSearchStats* stats = nullptr) const;

 private:
  const Part* PartOf(DocNum doc) const;

  std::vector<Part> parts_;
  uint64_t doc_count_ = 0, sum_ttf_ = 0;
  AnalyzerSettings analyzer_settings_;
  DeadTermCount dead_term_count_;
  Bm25Params params_;
  Bm25Norms norms_;
  std::shared_ptr<Store::Snapshot> store_snapshot_;
};

}  // namespace quarry
