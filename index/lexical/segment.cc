#include "index/lexical/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/thread_scratch.h"

namespace quarry {

static_assert(std::endian::native == std::endian::little, "segments are little-endian");

namespace {

constexpr char kHeaderMagic[4] = {'Q', 'S', 'E', 'G'};
constexpr uint32_t kFooterMagic = 0x46475351;  // "QSGF"
constexpr size_t kHeaderSize = 8;
constexpr size_t kEntrySize = 24;
constexpr size_t kSkipSize = 12;
constexpr uint64_t kWriteChunk = 4 << 20;

// The fixed-size record at the end of every segment file.
struct Footer {
  uint32_t magic, version;
  uint32_t base, n_docnums;
  uint64_t n_terms, n_postings, n_docs, n_nonempty, sum_ttf;
  float k1, b, ref_avgdl;
  uint32_t reserved;
  uint64_t postings_offset, postings_size, entries_offset, term_bytes_offset, term_bytes_size, norms_offset,
      id_offsets_offset, id_bytes_offset, id_bytes_size;
  uint64_t checksum;  // XXH64 of every byte of the file before this field
};
static_assert(sizeof(Footer) == 152);

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void Append(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PadTo8(std::string* out, uint64_t already_written = 0) {
  while ((already_written + out->size()) % 8) out->push_back('\0');
}

uint32_t BitsFor(uint64_t max_value) { return max_value == 0 ? 0 : 64 - std::countl_zero(max_value); }

// Appends n values of `bits` bits each, little-endian bit order, padded to a whole byte.
void Pack(const uint32_t* values, uint32_t n, uint32_t bits, std::string* out) {
  if (bits == 0) return;
  uint64_t acc = 0;
  uint32_t filled = 0;
  for (uint32_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(values[i]) << filled;
    filled += bits;
    while (filled >= 8) {
      out->push_back(static_cast<char>(acc & 0xff));
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled) out->push_back(static_cast<char>(acc & 0xff));
}

// Reads n values of `bits` (<= 32) bits; may read up to 7 bytes past the packed bytes.
inline void Unpack(const uint8_t* p, uint32_t n, uint32_t bits, uint32_t* out) {
  if (bits == 0) {
    std::fill(out, out + n, 0u);
    return;
  }
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < n; ++i, pos += bits) {
    out[i] = static_cast<uint32_t>((Load<uint64_t>(p + (pos >> 3)) >> (pos & 7)) & mask);
  }
}

// A term's check value covers its data and its entry's df and bound, so that a damaged entry is caught too.
uint32_t TermHash(const uint8_t* p, uint64_t n, uint32_t df, float max_saturation) {
  uint32_t bound_bits;
  std::memcpy(&bound_bits, &max_saturation, 4);
  return static_cast<uint32_t>(XXH3_64bits_withSeed(p, n, (uint64_t{df} << 32) | bound_bits));
}

Status WriteAll(int fd, const std::string& path, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(path + ": write: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

uint64_t TermPrefix(std::string_view term) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | (i < term.size() ? static_cast<uint8_t>(term[i]) : 0);
  return v;
}

size_t EncodeBlock(const DocNum* docs, const uint32_t* tfs, uint32_t n, int64_t prev, std::string* out) {
  const size_t start = out->size();
  uint32_t deltas[kBlockSize], tf_minus_1[kBlockSize];
  uint64_t max_delta = 0, max_tf = 0;
  for (uint32_t i = 0; i < n; ++i) {
    deltas[i] = static_cast<uint32_t>(static_cast<int64_t>(docs[i]) - prev - 1);
    prev = docs[i];
    tf_minus_1[i] = tfs[i] - 1;
    max_delta = std::max<uint64_t>(max_delta, deltas[i]);
    max_tf = std::max<uint64_t>(max_tf, tf_minus_1[i]);
  }
  const uint32_t doc_bits = BitsFor(max_delta), tf_bits = BitsFor(max_tf);
  out->push_back(static_cast<char>(n - 1));
  out->push_back(static_cast<char>(doc_bits));
  out->push_back(static_cast<char>(tf_bits));
  Pack(deltas, n, doc_bits, out);
  Pack(tf_minus_1, n, tf_bits, out);
  return out->size() - start;
}

bool DecodeBlock(const uint8_t* p, uint64_t size, int64_t prev, DocNum end, PostingsBlock* out) {
  if (size < 3) return false;
  const uint32_t n = uint32_t{p[0]} + 1, doc_bits = p[1], tf_bits = p[2];
  if (doc_bits > 32 || tf_bits > 32) return false;
  const uint64_t doc_bytes = (uint64_t{n} * doc_bits + 7) / 8, tf_bytes = (uint64_t{n} * tf_bits + 7) / 8;
  if (3 + doc_bytes + tf_bytes > size) return false;
  Unpack(p + 3, n, doc_bits, out->docs);
  int64_t doc = prev;
  for (uint32_t i = 0; i < n; ++i) {
    doc += int64_t{out->docs[i]} + 1;
    out->docs[i] = static_cast<DocNum>(doc);
  }
  if (doc >= static_cast<int64_t>(end)) return false;
  Unpack(p + 3 + doc_bytes, n, tf_bits, out->tfs);
  for (uint32_t i = 0; i < n; ++i) ++out->tfs[i];
  out->n = n;
  return true;
}

// ---------------------------------------------------------------------------------------------------

SegmentWriter::SegmentWriter(DocNum base, uint32_t n_docnums, const Bm25Params& params, float ref_avgdl)
    : base_(base),
      n_docnums_(n_docnums),
      params_(params),
      ref_norms_(params, ref_avgdl > 0 ? ref_avgdl : 1.0f),
      norms_(n_docnums, 0),
      id_ends_(n_docnums, 0) {
  buffer_.append(kHeaderMagic, 4);
  Append<uint32_t>(&buffer_, kSegmentVersion);
  auto* state = XXH64_createState();
  XXH64_reset(state, 0);
  hash_state_ = state;
}

SegmentWriter::~SegmentWriter() {
  XXH64_freeState(static_cast<XXH64_state_t*>(hash_state_));
  if (fd_ >= 0) {  // not finished: leave no partial file behind
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

Status SegmentWriter::StreamTo(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return error_ = Status::IOError(path + ": " + std::strerror(errno));
  return Status::Ok();
}

Status SegmentWriter::Flush() {
  if (fd_ < 0 || !error_.ok()) return error_;
  XXH64_update(static_cast<XXH64_state_t*>(hash_state_), buffer_.data(), buffer_.size());
  error_ = WriteAll(fd_, path_, buffer_.data(), buffer_.size());
  flushed_ += buffer_.size();
  buffer_.clear();
  return error_;
}

void SegmentWriter::SetDocument(DocNum doc, std::string_view id, uint8_t norm) {
  const uint32_t i = doc - base_;
  norms_[i] = norm;
  ids_.append(id);
  // Documents come in ascending order: every doc number up to this one ends where this id starts.
  const uint32_t start = static_cast<uint32_t>(ids_.size() - id.size());
  for (uint32_t j = i; j-- > 0 && id_ends_[j] == 0;) id_ends_[j] = start;
  id_ends_[i] = static_cast<uint32_t>(ids_.size());
  ++n_docs_;
  if (norm > 0) ++n_nonempty_;
}

Status SegmentWriter::AddTerm(std::string_view term, std::span<const std::pair<DocNum, uint32_t>> postings) {
  if (!error_.ok()) return error_;
  const auto df = static_cast<uint32_t>(postings.size());
  const uint32_t n_blocks = (df + kBlockSize - 1) / kBlockSize;
  const uint64_t data_offset = flushed_ + buffer_.size() - kHeaderSize;
  Entry e{data_offset, static_cast<uint32_t>(term_bytes_.size()), df, 0.0f, 0};
  struct Scratch {
    std::string blocks, skips;
  };
  Scratch& scratch = ThreadScratch<Scratch>();
  std::string& blocks = scratch.blocks;
  std::string& skips = scratch.skips;
  blocks.clear();
  skips.clear();
  DocNum docs[kBlockSize];
  uint32_t tfs[kBlockSize];
  int64_t prev = int64_t{base_} - 1;
  for (uint32_t b = 0; b < n_blocks; ++b) {
    const uint32_t first = b * kBlockSize, n = std::min(kBlockSize, df - first);
    float max_sat = 0;
    for (uint32_t i = 0; i < n; ++i) {
      docs[i] = postings[first + i].first;
      tfs[i] = postings[first + i].second;
      sum_ttf_ += tfs[i];
      max_sat = std::max(max_sat, ref_norms_.Saturation(tfs[i], norms_[docs[i] - base_]));
    }
    EncodeBlock(docs, tfs, n, prev, &blocks);
    prev = docs[n - 1];
    e.max_saturation = std::max(e.max_saturation, max_sat);
    if (n_blocks > 1) {
      Append<uint32_t>(&skips, docs[n - 1]);
      Append<uint32_t>(&skips, static_cast<uint32_t>(blocks.size()));
      Append<float>(&skips, max_sat);
    }
  }
  const size_t data_start = buffer_.size();
  buffer_ += skips;
  buffer_ += blocks;
  e.data_hash = TermHash(reinterpret_cast<const uint8_t*>(buffer_.data()) + data_start, buffer_.size() - data_start,
                         df, e.max_saturation);
  entries_.push_back(e);
  term_bytes_.append(term);
  n_postings_ += df;
  if (fd_ >= 0 && buffer_.size() >= kWriteChunk) return Flush();
  return Status::Ok();
}

std::string SegmentWriter::Tail(uint64_t postings_end) {
  std::string rest;
  PadTo8(&rest, postings_end);
  Footer f{};
  f.magic = kFooterMagic;
  f.version = kSegmentVersion;
  f.base = base_;
  f.n_docnums = n_docnums_;
  f.n_terms = entries_.size();
  f.n_postings = n_postings_;
  f.n_docs = n_docs_;
  f.n_nonempty = n_nonempty_;
  f.sum_ttf = sum_ttf_;
  f.k1 = params_.k1;
  f.b = params_.b;
  f.ref_avgdl = ref_norms_.avgdl();
  f.postings_offset = kHeaderSize;
  f.postings_size = postings_end - kHeaderSize;
  f.entries_offset = postings_end + rest.size();
  for (const Entry& e : entries_) {
    Append<uint64_t>(&rest, e.data_offset);
    Append<uint32_t>(&rest, e.term_offset);
    Append<uint32_t>(&rest, e.df);
    Append<float>(&rest, e.max_saturation);
    Append<uint32_t>(&rest, e.data_hash);
  }
  f.term_bytes_offset = postings_end + rest.size();
  f.term_bytes_size = term_bytes_.size();
  rest += term_bytes_;
  PadTo8(&rest, postings_end);
  f.norms_offset = postings_end + rest.size();
  rest.append(reinterpret_cast<const char*>(norms_.data()), norms_.size());
  PadTo8(&rest, postings_end);
  f.id_offsets_offset = postings_end + rest.size();
  const uint32_t total = static_cast<uint32_t>(ids_.size());
  for (uint32_t j = n_docnums_; j-- > 0 && id_ends_[j] == 0;) id_ends_[j] = total;  // trailing holes
  Append<uint32_t>(&rest, 0);
  for (uint32_t end : id_ends_) Append<uint32_t>(&rest, end);
  PadTo8(&rest, postings_end);
  f.id_bytes_offset = postings_end + rest.size();
  f.id_bytes_size = total;
  rest += ids_;
  PadTo8(&rest, postings_end);
  Append(&rest, f);  // the checksum, its last field, is set by the caller
  return rest;
}

std::string SegmentWriter::FinishBuffer() {
  std::string out = std::move(buffer_);
  out += Tail(out.size());
  const uint64_t checksum = XXH64(out.data(), out.size() - 8, 0);
  std::memcpy(out.data() + out.size() - 8, &checksum, 8);
  return out;
}

Result<SegmentWriter::Written> SegmentWriter::Finish() {
  if (fd_ < 0) return Status::Internal("segment writer: Finish without StreamTo");
  const uint64_t postings_end = flushed_ + buffer_.size();
  buffer_ += Tail(postings_end);
  auto* state = static_cast<XXH64_state_t*>(hash_state_);
  XXH64_update(state, buffer_.data(), buffer_.size() - 8);
  const uint64_t checksum = XXH64_digest(state);
  std::memcpy(buffer_.data() + buffer_.size() - 8, &checksum, 8);
  if (error_.ok()) error_ = WriteAll(fd_, path_, buffer_.data(), buffer_.size());
  const uint64_t bytes = flushed_ + buffer_.size();
  if (error_.ok() && ::fsync(fd_) != 0) error_ = Status::IOError(path_ + ": fsync: " + std::strerror(errno));
  if (::close(fd_) != 0 && error_.ok()) error_ = Status::IOError(path_ + ": close: " + std::strerror(errno));
  fd_ = -1;
  if (!error_.ok()) {
    ::unlink(path_.c_str());
    return error_;
  }
  return Written{bytes, checksum};
}

// ---------------------------------------------------------------------------------------------------

Result<std::shared_ptr<const Segment>> Segment::Open(const std::string& path, uint64_t expected_bytes,
                                                     uint64_t expected_checksum) {
  std::shared_ptr<Segment> s(new Segment());
  s->name_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? Status::NotFound(path + ": segment file missing")
                           : Status::IOError(path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Status::IOError(path + ": " + std::strerror(e));
  }
  s->size_ = static_cast<uint64_t>(st.st_size);
  if (expected_bytes && s->size_ != expected_bytes) {
    ::close(fd);
    return Status::Corruption(path + ": segment has " + std::to_string(s->size_) + " bytes, the collection recorded " +
                              std::to_string(expected_bytes));
  }
  if (s->size_ < kHeaderSize + sizeof(Footer)) {
    ::close(fd);
    return Status::Corruption(path + ": segment file truncated (" + std::to_string(s->size_) + " bytes)");
  }
  void* p = ::mmap(nullptr, s->size_, PROT_READ, MAP_SHARED, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return Status::IOError(path + ": mmap: " + std::strerror(e));
  s->data_ = static_cast<const uint8_t*>(p);
  s->mapped_ = true;
  QUARRY_RETURN_IF_ERROR(s->Parse());
  if (expected_checksum && s->checksum_ != expected_checksum) {
    return Status::Corruption(path + ": segment checksum differs from the one the collection recorded");
  }
  return std::shared_ptr<const Segment>(std::move(s));
}

Result<std::shared_ptr<const Segment>> Segment::FromBuffer(std::string bytes, std::string name) {
  std::shared_ptr<Segment> s(new Segment());
  s->name_ = std::move(name);
  s->buffer_ = std::move(bytes);
  s->data_ = reinterpret_cast<const uint8_t*>(s->buffer_.data());
  s->size_ = s->buffer_.size();
  if (s->size_ < kHeaderSize + sizeof(Footer)) return Status::Corruption(s->name_ + ": segment truncated");
  QUARRY_RETURN_IF_ERROR(s->Parse());
  return std::shared_ptr<const Segment>(std::move(s));
}

Segment::~Segment() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Status Segment::Parse() {
  auto bad = [&](const std::string& what) { return Status::Corruption(name_ + ": segment " + what); };
  if (std::memcmp(data_, kHeaderMagic, 4) != 0) return bad("has no QSEG header");
  if (Load<uint32_t>(data_ + 4) != kSegmentVersion) {
    return bad("version " + std::to_string(Load<uint32_t>(data_ + 4)) + ", this build reads " +
               std::to_string(kSegmentVersion));
  }
  const Footer f = Load<Footer>(data_ + size_ - sizeof(Footer));
  if (f.magic != kFooterMagic || f.version != kSegmentVersion) return bad("footer is damaged");
  const uint64_t footer_at = size_ - sizeof(Footer);
  // Sections in file order, each within the file and before the next.
  auto within = [&](uint64_t offset, uint64_t size, uint64_t limit) {
    return offset <= limit && size <= limit - offset;
  };
  const bool ok = f.postings_offset == kHeaderSize && within(f.postings_offset, f.postings_size, f.entries_offset) &&
                  f.n_terms <= (footer_at / kEntrySize) &&
                  within(f.entries_offset, f.n_terms * kEntrySize, f.term_bytes_offset) &&
                  within(f.term_bytes_offset, f.term_bytes_size, f.norms_offset) &&
                  within(f.norms_offset, f.n_docnums, f.id_offsets_offset) &&
                  within(f.id_offsets_offset, (uint64_t{f.n_docnums} + 1) * 4, f.id_bytes_offset) &&
                  within(f.id_bytes_offset, f.id_bytes_size, footer_at) && f.id_offsets_offset % 4 == 0 &&
                  f.n_terms <= UINT32_MAX && uint64_t{f.base} + f.n_docnums <= uint64_t{UINT32_MAX} + 1;
  if (!ok) return bad("section table is inconsistent with the file size");
  base_ = f.base;
  n_docnums_ = f.n_docnums;
  n_terms_ = f.n_terms;
  n_postings_ = f.n_postings;
  n_docs_ = f.n_docs;
  n_nonempty_ = f.n_nonempty;
  sum_ttf_ = f.sum_ttf;
  k1_ = f.k1;
  b_ = f.b;
  ref_avgdl_ = f.ref_avgdl;
  checksum_ = f.checksum;
  postings_ = data_ + f.postings_offset;
  postings_size_ = f.postings_size;
  entries_ = data_ + f.entries_offset;
  term_bytes_ = data_ + f.term_bytes_offset;
  term_bytes_size_ = f.term_bytes_size;
  norms_ = data_ + f.norms_offset;
  id_offsets_ = data_ + f.id_offsets_offset;
  id_bytes_ = data_ + f.id_bytes_offset;
  id_bytes_size_ = f.id_bytes_size;
  verified_.reset(new std::atomic<uint64_t>[(n_terms_ + 63) / 64]());
  return Status::Ok();
}

float Segment::BoundScale(const Bm25Params& params, float avgdl) const {
  if (params.k1 != k1_ || params.b != b_ || !(ref_avgdl_ > 0) || !(avgdl > 0)) {
    return std::numeric_limits<float>::infinity();
  }
  // A saturation tf / (k1 ((1 - b) + b L / avgdl)) grows with avgdl, at most in proportion to it; the
  // margin covers the float roundings of both computations (a few ulps each).
  return std::max(1.0f, avgdl / ref_avgdl_) * (1.0f + 1e-5f);
}

std::string_view Segment::TermAt(uint32_t i) const {
  const uint32_t begin = Load<uint32_t>(entries_ + uint64_t{i} * kEntrySize + 8);
  const uint64_t end = i + 1 < n_terms_ ? Load<uint32_t>(entries_ + uint64_t{i + 1} * kEntrySize + 8) : term_bytes_size_;
  if (begin > end || end > term_bytes_size_) return {};
  return std::string_view(reinterpret_cast<const char*>(term_bytes_) + begin, end - begin);
}

Segment::Term Segment::EntryAt(uint32_t i) const {
  const uint8_t* e = entries_ + uint64_t{i} * kEntrySize;
  return Term{i, Load<uint32_t>(e + 12), Load<float>(e + 16)};
}

std::optional<Segment::Term> Segment::Find(std::string_view term) const {
  uint32_t lo = 0, hi = static_cast<uint32_t>(n_terms_);
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const int c = TermAt(mid).compare(term);
    if (c == 0) return EntryAt(mid);
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return std::nullopt;
}

bool Segment::TermData(uint32_t index, const uint8_t** data, uint64_t* size) const {
  const uint64_t begin = Load<uint64_t>(entries_ + uint64_t{index} * kEntrySize);
  const uint64_t end = index + 1 < n_terms_ ? Load<uint64_t>(entries_ + uint64_t{index + 1} * kEntrySize) : postings_size_;
  if (begin > end || end > postings_size_) return false;
  *data = postings_ + begin;
  *size = end - begin;
  return true;
}

Status Segment::VerifyTerm(uint32_t index) const {
  const uint64_t bit = uint64_t{1} << (index % 64);
  std::atomic<uint64_t>& word = verified_[index / 64];
  if (word.load(std::memory_order_acquire) & bit) return Status::Ok();
  const uint8_t* data;
  uint64_t size;
  const Term entry = EntryAt(index);
  if (!TermData(index, &data, &size) ||
      TermHash(data, size, entry.df, entry.max_saturation) != Load<uint32_t>(entries_ + uint64_t{index} * kEntrySize + 20)) {
    return Status::Corruption(name_ + ": postings of term '" + std::string(TermAt(index)) +
                              "' fail their checksum (run `quarry check --repair`)");
  }
  word.fetch_or(bit, std::memory_order_release);
  return Status::Ok();
}

Result<Segment::Cursor> Segment::Cursor::Open(const Segment& segment, const Term& term) {
  QUARRY_RETURN_IF_ERROR(segment.VerifyTerm(term.index));
  Cursor c;
  const uint8_t* data;
  uint64_t size;
  segment.TermData(term.index, &data, &size);  // checked by VerifyTerm
  c.df_ = term.df;
  c.max_saturation_ = term.max_saturation;
  c.n_blocks_ = (term.df + kBlockSize - 1) / kBlockSize;
  c.base_ = segment.base_;
  c.end_ = segment.end();
  if (c.n_blocks_ == 0) return Status::Corruption(segment.name_ + ": term '" + std::string(segment.TermAt(term.index)) + "' has no postings");
  if (c.n_blocks_ > 1) {
    if (size < uint64_t{c.n_blocks_} * kSkipSize) {
      return Status::Corruption(segment.name_ + ": skip data of term '" + std::string(segment.TermAt(term.index)) + "' truncated");
    }
    c.skips_ = data;
    data += uint64_t{c.n_blocks_} * kSkipSize;
    size -= uint64_t{c.n_blocks_} * kSkipSize;
  }
  c.blocks_ = data;
  c.blocks_size_ = size;
  return c;
}

DocNum Segment::Cursor::BlockLastDoc(uint32_t b) const {
  // A one-block term's bound covers the segment's whole range.
  if (!skips_) return end_ - 1;
  return std::min<DocNum>(Load<uint32_t>(skips_ + uint64_t{b} * kSkipSize), end_ - 1);
}

float Segment::Cursor::BlockMaxSaturation(uint32_t b) const {
  return skips_ ? Load<float>(skips_ + uint64_t{b} * kSkipSize + 8) : max_saturation_;
}

bool Segment::Cursor::Decode(uint32_t b, PostingsBlock* out) const {
  if (b >= n_blocks_) return false;
  uint64_t begin = 0, end = blocks_size_;
  int64_t prev = int64_t{base_} - 1;
  if (skips_) {
    begin = b ? Load<uint32_t>(skips_ + uint64_t{b - 1} * kSkipSize + 4) : 0;
    end = Load<uint32_t>(skips_ + uint64_t{b} * kSkipSize + 4);
    if (begin > end || end > blocks_size_) return false;
    if (b) prev = Load<uint32_t>(skips_ + uint64_t{b - 1} * kSkipSize);
    // Docs ascend from prev + 1, so prev below the range would let them fall outside it.
    if (prev < int64_t{base_} - 1) return false;
  }
  if (!DecodeBlock(blocks_ + begin, end - begin, prev, end_, out)) return false;
  const uint32_t expected = b + 1 < n_blocks_ ? kBlockSize : df_ - b * kBlockSize;
  if (out->n != expected) return false;
  return !skips_ || out->docs[out->n - 1] == Load<uint32_t>(skips_ + uint64_t{b} * kSkipSize);
}

std::string_view Segment::ExternalId(DocNum doc) const {
  if (doc < base_ || doc - base_ >= n_docnums_) return {};
  const uint64_t i = doc - base_;
  const uint32_t a = Load<uint32_t>(id_offsets_ + i * 4), b = Load<uint32_t>(id_offsets_ + i * 4 + 4);
  if (a > b || b > id_bytes_size_) return {};
  return std::string_view(reinterpret_cast<const char*>(id_bytes_) + a, b - a);
}

Status Segment::VerifyChecksum() const {
  if (XXH64(data_, size_ - 8, 0) != checksum_) return Status::Corruption(name_ + ": segment checksum mismatch");
  return Status::Ok();
}

Status Segment::VerifyAll() const {
  QUARRY_RETURN_IF_ERROR(VerifyChecksum());
  uint64_t postings = 0, sum_tf = 0;
  PostingsBlock block;
  std::string_view previous;
  for (uint32_t t = 0; t < n_terms_; ++t) {
    const std::string_view term = TermAt(t);
    if (t > 0 && !(previous < term)) return Status::Corruption(name_ + ": terms out of order at '" + std::string(term) + "'");
    previous = term;
    QUARRY_ASSIGN_OR_RETURN(auto cursor, Cursor::Open(*this, EntryAt(t)));
    for (uint32_t b = 0; b < cursor.n_blocks(); ++b) {
      if (!cursor.Decode(b, &block)) {
        return Status::Corruption(name_ + ": block " + std::to_string(b) + " of term '" + std::string(term) + "' is damaged");
      }
      for (uint32_t i = 0; i < block.n; ++i) {
        if (ExternalId(block.docs[i]).empty()) {
          return Status::Corruption(name_ + ": term '" + std::string(term) + "' has a posting of doc " +
                                    std::to_string(block.docs[i]) + ", which the segment does not hold");
        }
      }
      for (uint32_t i = 0; i < block.n; ++i) sum_tf += block.tfs[i];
      postings += block.n;
    }
  }
  if (postings != n_postings_) return Status::Corruption(name_ + ": postings count disagrees with the footer");
  if (sum_tf != sum_ttf_) return Status::Corruption(name_ + ": term frequencies disagree with the document lengths");
  uint64_t present = 0;
  for (uint32_t i = 0; i < n_docnums_; ++i) present += !ExternalId(base_ + i).empty();
  if (present != n_docs_) return Status::Corruption(name_ + ": id table disagrees with the footer's document count");
  return Status::Ok();
}

}  // namespace quarry
