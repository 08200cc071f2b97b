// The lexical index as stored (docs/formats.md, "Lexical index"): immutable segment files under
// DIR/lex, their manifest and the dead documents in RocksDB, and background merges.
//
// RocksDB stays the source of truth: a segment holds nothing that cannot be rebuilt from the stored
// documents, and every segment the manifest lists was written and fsynced before the batch that lists
// it, so an acknowledged batch survives SIGKILL and power loss. A write is three steps: Prepare (writes
// the batch's segment file and puts the manifest, dead records and counters into the caller's
// WriteBatch), the caller's atomic RocksDB write, then Commit (publishes the new snapshot) or Abort
// (removes the file). Searches see the new documents as soon as Commit returns; the cost of a write is
// proportional to its batch, never to the collection.
//
// Deletes and replacements never touch a segment: the doc number is recorded dead (`lex_dead`:
// 'd' + doc -> length, 'l' + doc -> its distinct terms, 't' + term -> dead postings of the term, the
// latter a counter merged by RocksDB), so searches skip it and subtract it from document frequencies.
// Merges (a background thread, one at a time) rewrite adjacent segments into one without their dead
// documents and forget those; Compact merges everything into one segment.
//
// Opening maps every listed segment (O(number of segments), not of documents) and loads the dead doc
// numbers (O(dead documents)). A segment that is missing or fails its header/footer checks is rebuilt
// from the stored documents of its range (in memory only when read-only).
//
// Thread safety: Snapshot may be called from any thread. Prepare/Commit/Abort and Compact are called
// by one writer at a time (the collection's write lock); merges commit between writes.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "index/lexical/analyzer.h"
#include "index/lexical/lexical_index.h"
#include "index/lexical/segment.h"
#include "quarry/document.h"
#include "quarry/status.h"
#include "storage/store.h"

namespace quarry {

inline constexpr char kCfLexDead[] = "lex_dead";             // 'd'|'l' + BE32 doc, 't' + term
inline constexpr char kMetaLexAnalyzer[] = "lex.analyzer";     // AnalyzerSettings JSON
inline constexpr char kMetaLexSumTtf[] = "lex.sum_ttf";        // BE64: sum of live document lengths
inline constexpr char kMetaLexDocCount[] = "lex.doc_count";    // BE64: live documents with >= 1 term
inline constexpr char kMetaLexSegments[] = "lex.segments";     // the segment manifest
inline constexpr char kMetaLexNextSegment[] = "lex.next_segment";  // BE64: next segment id
inline constexpr char kMetaLexDead[] = "lex.n_dead";           // BE64: dead doc numbers still in segments
inline constexpr char kLexDirName[] = "lex";

// A manifest entry: what the collection recorded about a segment file when it was written.
struct SegmentInfo {
  uint64_t id = 0;
  DocNum base = 0;
  uint32_t n_docnums = 0;
  uint64_t bytes = 0, checksum = 0;
};
std::string EncodeManifest(const std::vector<SegmentInfo>& segments);
bool DecodeManifest(std::string_view bytes, std::vector<SegmentInfo>* segments);
std::string SegmentFileName(uint64_t id);  // "000000000007.qseg"

// One document's analysis: its distinct terms in byte order with their frequencies, and its length.
struct AnalyzedDoc {
  std::vector<std::pair<std::string, uint32_t>> terms;
  uint32_t length = 0;
};
// The dead records a document leaves (lex_dead 'l'): its distinct terms.
std::string EncodeTermList(const AnalyzedDoc& doc);
bool DecodeTermList(std::string_view bytes, std::vector<std::string_view>* terms);

struct LexicalCompaction {
  uint64_t segments_before = 0, segments_after = 0;
  uint64_t dead_dropped = 0;  // dead documents whose postings were removed
};

class LexicalStore {
 public:
  // Column family options the store needs (its counter merge operator) for Store::Open.
  static void AddStoreOptions(StoreOptions* options);
  // `writable`: may write (rebuilds, merges); otherwise repairs stay in memory.
  static Result<std::unique_ptr<LexicalStore>> Open(Store* store, bool writable);
  ~LexicalStore();

  const AnalyzerSettings& settings() const { return settings_; }
  // The index as of the last commit.
  std::shared_ptr<const LexicalIndex> Snapshot() const;

  // Analyzes documents (LexicalText) in parallel (oneTBB).
  Result<std::vector<AnalyzedDoc>> Analyze(const std::vector<Document>& docs) const;

  // One write batch's change, staged by Prepare.
  struct Change {
    // New documents: doc numbers ascending, in [first, first + count) of the batch's range.
    std::vector<std::tuple<DocNum, std::string_view, const AnalyzedDoc*>> added;
    // Documents that stop being live: committed ones, or ones added by this same change.
    std::vector<std::pair<DocNum, const AnalyzedDoc*>> removed;
    DocNum first = 0;      // the batch's doc number range (may hold no added document)
    uint32_t count = 0;
  };
  // The segment of a change's doc number range, written and fsynced now; any thread, no lock, so that
  // an ingest builds the next batch's segment while the previous one commits. Destroyed unused, it
  // removes its file.
  class NewSegment;
  Result<std::unique_ptr<NewSegment>> WriteSegmentOf(const Change& change);
  // Puts into `batch` everything the change makes RocksDB record, with its segment (written by
  // WriteSegmentOf, or now when null and the change has a range). Must be followed by Commit or Abort;
  // holds the commit lock until then.
  Status Prepare(const Change& change, std::unique_ptr<NewSegment> segment, rocksdb::WriteBatch* batch);
  void Commit();  // `batch` was written: publish
  void Abort();   // it was not: forget the change

  // Merges every segment into one without dead documents (`quarry compact`). Waits for the
  // background merge first.
  Result<LexicalCompaction> Compact();
  // Blocks until no merge is running and the policy finds none to do; the error of a failed merge.
  Status WaitForMerges();

  // Full verification of every segment (checksums, every block) and of the dead records against the
  // segments. Problems are appended to `problems`; `repair` rebuilds damaged segments from the documents.
  Status Check(bool repair, std::vector<std::string>* problems);

  struct Stats {
    uint64_t segments = 0, segment_bytes = 0, terms = 0, postings = 0, dead = 0;
  };
  Stats GetStats() const;

 private:
  struct Live {  // one segment as the current state holds it
    SegmentInfo info;
    std::shared_ptr<const Segment> segment;
    std::shared_ptr<const DeadDocs> dead;
  };
  friend class NewSegment;
  struct Plan {  // a merge: adjacent segments [first, first + count) of segments_
    std::vector<Live> inputs;
  };
  LexicalStore(Store* store, bool writable);
  Status Load();
  std::string SegmentPath(uint64_t id) const;
  void Publish();  // commit_mu_ held
  // Writes the stored documents of [base, base + n) as segments of at most kRebuildChunk doc numbers
  // (commit_mu_ held).
  Status RebuildRange(DocNum base, uint64_t n, std::vector<Live>* out);
  Status RebuildAll();  // commit_mu_ held
  Status ReplaceWithRebuilt(size_t index);  // commit_mu_ held
  // Puts into `batch` the forgetting of dead docs (their postings are gone from every segment).
  Status ForgetDead(const std::vector<DocNum>& docs, rocksdb::WriteBatch* batch);
  std::optional<Plan> PickMerge() const;  // commit_mu_ held
  Status RunMerge(const Plan& plan, bool drop_all_dead);
  void MergeLoop();

  Store* store_;
  std::string lex_dir_;
  bool writable_;
  AnalyzerSettings settings_;

  // Committed state (guarded by commit_mu_).
  std::mutex commit_mu_;
  std::unique_lock<std::mutex> prepared_;  // held between Prepare and Commit/Abort
  std::vector<Live> segments_;
  uint64_t sum_ttf_ = 0, doc_count_ = 0, n_dead_ = 0;
  std::atomic<uint64_t> next_segment_{0};  // ids are reserved without the commit lock
  std::atomic<float> ref_avgdl_{1.0f};     // the avgdl new segments compute their bounds at
  bool merging_ = false;
  // What Prepare staged.
  struct Pending {
    bool active = false;
    std::unique_ptr<NewSegment> segment;
    std::vector<std::pair<DocNum, uint32_t>> removed;  // doc, length
    int64_t sum_ttf_delta = 0, doc_count_delta = 0;
  } pending_;

  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const LexicalIndex> snapshot_;

  std::thread merger_;
  std::condition_variable merge_cv_;  // with commit_mu_
  bool stop_ = false, merge_wanted_ = false;
  std::atomic<bool> cancel_{false};
  Status merge_error_;
};

class LexicalStore::NewSegment {
 public:
  NewSegment(std::string path, Live live) : path_(std::move(path)), live_(std::move(live)) {}
  ~NewSegment();
  NewSegment(const NewSegment&) = delete;
  NewSegment& operator=(const NewSegment&) = delete;

 private:
  friend class LexicalStore;
  std::string path_;
  Live live_;
  bool kept_ = false;  // committed: the file stays
};

}  // namespace quarry
