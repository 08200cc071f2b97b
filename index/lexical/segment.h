// Lexical index segments: immutable files of block-compressed postings, memory-mapped for search
// (docs/formats.md, "Lexical segment"). A segment covers a contiguous range of doc numbers
// [base, base + n_docnums) and holds, for the documents of that range it was written with: every
// term's postings in blocks of up to 128 (doc, tf) pairs with a per-block score bound, one norm byte
// per document, and the documents' external ids. Deletes never touch a segment: the collection
// records dead doc numbers elsewhere, and merges write new segments without them.
//
// Integrity: opening checks the header, the footer and every section's bounds against the file size
// (O(1)); every read of a term's data is bounds-checked and its checksum verified the first time a
// process touches it, so a damaged file gives a Corruption error, never a crash or a silent wrong
// answer. VerifyAll() checks the whole file's checksum and decodes every block (quarry check, merges).
//
// Thread safety: a Segment is immutable after Open; any number of threads may search it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "index/lexical/bm25.h"
#include "quarry/status.h"

namespace quarry {

using DocNum = uint32_t;

inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr uint32_t kBlockSize = 128;  // postings per block

// One block's postings, decoded.
struct PostingsBlock {
  uint32_t n = 0;
  DocNum docs[kBlockSize];
  uint32_t tfs[kBlockSize];
};

// Builds a segment, streamed to a file (postings are flushed as they are added) or held in memory.
// Call SetDocument for the documents in ascending doc order, then AddTerm for every term in strictly
// ascending byte order, then Finish.
class SegmentWriter {
 public:
  // `ref_avgdl` and `params` are the BM25 norms the per-block score bounds are computed with (the
  // collection's current statistics); search rescales them to its own avgdl (Segment::BoundScale).
  SegmentWriter(DocNum base, uint32_t n_docnums, const Bm25Params& params, float ref_avgdl);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Streams the segment into `path` (created or truncated) instead of memory. Call before AddTerm.
  Status StreamTo(const std::string& path);

  // The document `doc` in [base, base + n_docnums), after every document set before it, with its
  // norm byte (IntToByte4 of its analyzed length) and a non-empty id.
  void SetDocument(DocNum doc, std::string_view id, uint8_t norm);
  // `postings`: (doc, tf) with strictly ascending docs, each set by SetDocument, tf >= 1; not empty.
  Status AddTerm(std::string_view term, std::span<const std::pair<DocNum, uint32_t>> postings);
  uint64_t n_terms() const { return entries_.size(); }
  uint64_t n_docs() const { return n_docs_; }

  struct Written {
    uint64_t bytes = 0, checksum = 0;
  };
  // StreamTo mode: completes and fsyncs the file. Returns its size and checksum.
  Result<Written> Finish();
  // Memory mode: the segment image.
  std::string FinishBuffer();

 private:
  Status Flush();  // StreamTo mode: writes the buffered postings
  std::string Tail(uint64_t postings_end);  // everything after the postings, footer included
  struct Entry {
    uint64_t data_offset;
    uint32_t term_offset, df;
    float max_saturation;
    uint32_t data_hash;
  };
  DocNum base_;
  uint32_t n_docnums_;
  Bm25Params params_;
  Bm25Norms ref_norms_;
  std::string buffer_;            // the file so far (memory mode), or its unflushed part
  uint64_t flushed_ = 0;          // bytes already written to the file
  int fd_ = -1;
  std::string path_;
  void* hash_state_ = nullptr;    // XXH64 over every byte written
  Status error_;
  std::vector<Entry> entries_;
  std::string term_bytes_;
  std::vector<uint8_t> norms_;
  std::vector<uint32_t> id_ends_;  // by doc - base: end offset of its id in ids_
  std::string ids_;
  uint64_t n_postings_ = 0, sum_ttf_ = 0, n_docs_ = 0, n_nonempty_ = 0;
};

// A read-only segment: a mapped file, or a buffer it owns.
class Segment {
 public:
  // Maps `path`; checks that its size is `expected_bytes` and its footer's checksum `expected_checksum`
  // (the values the collection recorded when it was written; 0 skips either check).
  static Result<std::shared_ptr<const Segment>> Open(const std::string& path, uint64_t expected_bytes = 0,
                                                     uint64_t expected_checksum = 0);
  static Result<std::shared_ptr<const Segment>> FromBuffer(std::string bytes, std::string name = "<memory>");
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string& name() const { return name_; }
  DocNum base() const { return base_; }
  uint32_t n_docnums() const { return n_docnums_; }
  DocNum end() const { return base_ + n_docnums_; }  // one past the last doc number covered
  uint64_t n_terms() const { return n_terms_; }
  uint64_t n_postings() const { return n_postings_; }
  uint64_t n_docs() const { return n_docs_; }          // documents present (with an id)
  uint64_t n_nonempty() const { return n_nonempty_; }  // of which with at least one term
  uint64_t sum_ttf() const { return sum_ttf_; }
  uint64_t file_bytes() const { return size_; }
  uint64_t checksum() const { return checksum_; }

  // The factor that turns a stored saturation bound into one valid for `norms` (>= 1; +inf when the
  // BM25 parameters differ from those the bounds were computed with).
  float BoundScale(const Bm25Params& params, float avgdl) const;

  // A term's entry; nullptr when the segment does not hold the term.
  struct Term {
    uint32_t index;
    uint32_t df;
    float max_saturation;  // over every posting of the term, at the reference norms
  };
  std::optional<Term> Find(std::string_view term) const;
  // The i-th term in byte order (i < n_terms), for merges.
  std::string_view TermAt(uint32_t i) const;
  Term EntryAt(uint32_t i) const;

  // Reads one term's postings block by block. Invalid after the segment is destroyed.
  class Cursor {
   public:
    // Corruption when the term's data fails its checksum or bounds.
    static Result<Cursor> Open(const Segment& segment, const Term& term);
    uint32_t n_blocks() const { return n_blocks_; }
    // Last doc and saturation bound of block b (b < n_blocks).
    DocNum BlockLastDoc(uint32_t b) const;
    float BlockMaxSaturation(uint32_t b) const;
    // Decodes block b into `out`; false when its bytes are inconsistent (a damaged file).
    bool Decode(uint32_t b, PostingsBlock* out) const;

   private:
    const uint8_t* blocks_ = nullptr;  // the term's first block
    const uint8_t* skips_ = nullptr;   // n_blocks x {u32 last doc, u32 end offset, f32 bound}; null for one block
    uint64_t blocks_size_ = 0;
    uint32_t n_blocks_ = 0, df_ = 0;
    float max_saturation_ = 0;
    DocNum base_ = 0, end_ = 0;
    mutable DocNum single_last_ = 0;  // one-block terms: the last doc, known after decoding
  };

  uint8_t Norm(DocNum doc) const { return norms_[doc - base_]; }  // doc in [base, end)
  const uint8_t* norms() const { return norms_; }
  // External id of `doc`; empty when the segment holds no such document.
  std::string_view ExternalId(DocNum doc) const;

  // The whole file against its checksum.
  Status VerifyChecksum() const;
  // Full verification: the file checksum and every term's blocks. Corruption names the file and term.
  Status VerifyAll() const;

 private:
  Segment() = default;
  Status Parse();
  Status VerifyTerm(uint32_t index) const;  // the term's data checksum, once per process
  bool TermData(uint32_t index, const uint8_t** data, uint64_t* size) const;

  std::string name_;
  std::string buffer_;               // FromBuffer
  const uint8_t* data_ = nullptr;    // the whole file
  uint64_t size_ = 0;
  bool mapped_ = false;
  DocNum base_ = 0;
  uint32_t n_docnums_ = 0;
  uint64_t n_terms_ = 0, n_postings_ = 0, n_docs_ = 0, n_nonempty_ = 0, sum_ttf_ = 0, checksum_ = 0;
  float k1_ = 0, b_ = 0, ref_avgdl_ = 0;
  const uint8_t* postings_ = nullptr;
  uint64_t postings_size_ = 0;
  const uint8_t* entries_ = nullptr;  // n_terms x 24 bytes
  const uint8_t* term_bytes_ = nullptr;
  uint64_t term_bytes_size_ = 0;
  const uint8_t* norms_ = nullptr;
  const uint8_t* id_offsets_ = nullptr;  // (n_docnums + 1) x u32
  const uint8_t* id_bytes_ = nullptr;
  uint64_t id_bytes_size_ = 0;
  // One bit per term: its data checksum has been verified by this process.
  std::unique_ptr<std::atomic<uint64_t>[]> verified_;
};

// The first 8 bytes of a term as a big-endian integer (zero-padded): comparing these orders terms as
// their bytes do, except among terms that share them, so sorts and merges compare integers first.
uint64_t TermPrefix(std::string_view term);

// Bit-packing of a block (exposed for tests and fuzzing).
// `prev` is the doc before the block's first (base - 1 for a term's first block).
size_t EncodeBlock(const DocNum* docs, const uint32_t* tfs, uint32_t n, int64_t prev, std::string* out);
// Decodes a block from [p, p + size) given the previous doc (base - 1 for a term's first block, as a
// signed 64-bit value); false when the bytes are inconsistent. Reads up to 8 bytes past the packed
// data, which the caller guarantees are readable (segments end with a footer).
bool DecodeBlock(const uint8_t* p, uint64_t size, int64_t prev, DocNum end, PostingsBlock* out);

}  // namespace quarry
