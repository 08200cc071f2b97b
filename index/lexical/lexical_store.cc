#include "index/lexical/lexical_store.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <queue>
#include <set>
#include <unordered_map>

#include <xxhash.h>

#include "common/coding.h"
#include "common/fsync.h"
#include "storage/counter_merge.h"
#include "storage/document_codec.h"

namespace quarry {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kRebuildChunk = 65536;  // doc numbers per segment a rebuild writes
constexpr size_t kMergeFactor = 10;        // adjacent segments of one size level merged at once
constexpr size_t kMaxSegments = 40;        // beyond it the cheapest run merges whatever the levels
constexpr double kDeadRatio = 0.3;         // a segment with more dead documents is rewritten

std::string DeadKey(char kind, DocNum doc) { return std::string(1, kind) + EncodeFixed32BE(doc); }
std::string TermCountKey(std::string_view term) { return "t" + std::string(term); }

void PutCounter(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* meta, const char* key, uint64_t v) {
  std::string value;
  PutFixed64BE(&value, v);
  batch->Put(meta, key, value);
}

// Inverts analyzed documents (ascending doc numbers) into a segment file at `path`: every posting's
// term is numbered through an open-addressing table, postings are grouped by term number with a
// counting sort (stable, so docs stay ascending), and the terms are written in byte order.
Result<std::shared_ptr<const Segment>> WriteSegment(
    const std::string& path, DocNum first, uint32_t count,
    const std::vector<std::tuple<DocNum, std::string_view, const AnalyzedDoc*>>& docs, float ref_avgdl,
    SegmentInfo* info) {
  SegmentWriter writer(first, count, Bm25Params{}, ref_avgdl);
  QUARRY_RETURN_IF_ERROR(writer.StreamTo(path));
  size_t n_postings = 0;
  for (const auto& [doc, id, analyzed] : docs) n_postings += analyzed->terms.size();
  size_t capacity = 1024;
  while (capacity < 2 * n_postings) capacity <<= 1;
  std::vector<uint32_t> slots(capacity, UINT32_MAX);
  std::vector<std::string_view> terms;
  std::vector<uint32_t> term_of(n_postings), counts;
  std::vector<std::pair<DocNum, uint32_t>> postings(n_postings);
  size_t p = 0;
  for (const auto& [doc, id, analyzed] : docs) {
    writer.SetDocument(doc, id, IntToByte4(analyzed->length));
    for (const auto& [term, tf] : analyzed->terms) {
      size_t slot = XXH3_64bits(term.data(), term.size()) & (capacity - 1);
      while (slots[slot] != UINT32_MAX && terms[slots[slot]] != term) slot = (slot + 1) & (capacity - 1);
      if (slots[slot] == UINT32_MAX) {
        slots[slot] = static_cast<uint32_t>(terms.size());
        terms.push_back(term);
        counts.push_back(0);
      }
      term_of[p] = slots[slot];
      ++counts[slots[slot]];
      postings[p++] = {doc, tf};
    }
  }
  std::vector<uint32_t> start(terms.size() + 1, 0);
  for (size_t t = 0; t < terms.size(); ++t) start[t + 1] = start[t] + counts[t];
  std::vector<std::pair<DocNum, uint32_t>> grouped(n_postings);
  std::vector<uint32_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < n_postings; ++i) grouped[fill[term_of[i]]++] = postings[i];
  std::vector<std::pair<uint64_t, uint32_t>> order(terms.size());  // (prefix, term number)
  for (size_t t = 0; t < terms.size(); ++t) order[t] = {TermPrefix(terms[t]), static_cast<uint32_t>(t)};
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : terms[a.second] < terms[b.second];
  });
  for (const auto& [prefix, t] : order) {
    QUARRY_RETURN_IF_ERROR(writer.AddTerm(terms[t], std::span(grouped.data() + start[t], counts[t])));
  }
  QUARRY_ASSIGN_OR_RETURN(auto written, writer.Finish());
  info->base = first;
  info->n_docnums = count;
  info->bytes = written.bytes;
  info->checksum = written.checksum;
  return Segment::Open(path, written.bytes, written.checksum);
}

}  // namespace

std::string EncodeManifest(const std::vector<SegmentInfo>& segments) {
  std::string out;
  PutVarint64(&out, segments.size());
  for (const auto& s : segments) {
    PutVarint64(&out, s.id);
    PutVarint32(&out, s.base);
    PutVarint32(&out, s.n_docnums);
    PutVarint64(&out, s.bytes);
    PutFixed64BE(&out, s.checksum);
  }
  return out;
}

bool DecodeManifest(std::string_view in, std::vector<SegmentInfo>* segments) {
  uint64_t n;
  if (!GetVarint64(&in, &n) || n > in.size()) return false;
  segments->clear();
  for (uint64_t i = 0; i < n; ++i) {
    SegmentInfo s;
    if (!GetVarint64(&in, &s.id) || !GetVarint32(&in, &s.base) || !GetVarint32(&in, &s.n_docnums) ||
        !GetVarint64(&in, &s.bytes) || !GetFixed64BE(&in, &s.checksum)) {
      return false;
    }
    // Ranges ascend and never overlap.
    if (uint64_t{s.base} + s.n_docnums > uint64_t{UINT32_MAX} + 1) return false;
    if (!segments->empty() && uint64_t{segments->back().base} + segments->back().n_docnums > s.base) return false;
    segments->push_back(s);
  }
  return in.empty();
}

std::string SegmentFileName(uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012llu.qseg", static_cast<unsigned long long>(id));
  return buf;
}

std::string EncodeTermList(const AnalyzedDoc& doc) {
  std::string out;
  PutVarint64(&out, doc.terms.size());
  for (const auto& [term, tf] : doc.terms) PutLengthPrefixed(&out, term);
  return out;
}

bool DecodeTermList(std::string_view in, std::vector<std::string_view>* terms) {
  uint64_t n;
  if (!GetVarint64(&in, &n) || n > in.size()) return false;
  terms->clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view t;
    if (!GetLengthPrefixed(&in, &t)) return false;
    terms->push_back(t);
  }
  return in.empty();
}

// ---------------------------------------------------------------------------------------------------

void LexicalStore::AddStoreOptions(StoreOptions* options) {
  options->extra_column_families.push_back(kCfLexDead);
  options->merge_operators[kCfLexDead] = NewCounterMergeOperator();
}

LexicalStore::LexicalStore(Store* store, bool writable)
    : store_(store), lex_dir_(store->dir() + "/" + kLexDirName), writable_(writable) {}

LexicalStore::~LexicalStore() {
  {
    std::lock_guard lock(commit_mu_);
    stop_ = true;
    cancel_ = true;
  }
  merge_cv_.notify_all();
  if (merger_.joinable()) merger_.join();
}

std::string LexicalStore::SegmentPath(uint64_t id) const { return lex_dir_ + "/" + SegmentFileName(id); }

Result<std::unique_ptr<LexicalStore>> LexicalStore::Open(Store* store, bool writable) {
  std::unique_ptr<LexicalStore> s(new LexicalStore(store, writable));
  QUARRY_ASSIGN_OR_RETURN(auto settings_json, store->Get(kCfMeta, kMetaLexAnalyzer));
  if (settings_json) {
    QUARRY_ASSIGN_OR_RETURN(s->settings_, AnalyzerSettings::FromJson(*settings_json));
  } else if (writable) {
    rocksdb::WriteBatch batch;
    batch.Put(store->cf(kCfMeta), kMetaLexAnalyzer, s->settings_.ToJson());
    QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  }
  // A reader's view of the manifest may name a segment a merge has just replaced and removed: it then
  // catches up with the writer (whose newer manifest names files that exist) and loads again.
  for (int attempt = 0;; ++attempt) {
    Status loaded = s->Load();
    if (loaded.ok()) break;
    if (writable || loaded.code() != StatusCode::kNotFound) return loaded;
    if (attempt == 8) {
      return Status::Corruption(loaded.message() + "; `quarry check " + store->dir() +
                                " --repair` rebuilds it from the stored documents");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(attempt, 4)));
    QUARRY_RETURN_IF_ERROR(store->CatchUp());
  }
  if (writable) {
    s->merger_ = std::thread([p = s.get()] { p->MergeLoop(); });
    std::lock_guard lock(s->commit_mu_);
    s->merge_wanted_ = true;
    s->merge_cv_.notify_one();
  }
  return s;
}

Status LexicalStore::Load() {
  std::lock_guard lock(commit_mu_);
  const std::string& dir = store_->dir();
  QUARRY_ASSIGN_OR_RETURN(sum_ttf_, store_->GetCounter(kMetaLexSumTtf));
  QUARRY_ASSIGN_OR_RETURN(doc_count_, store_->GetCounter(kMetaLexDocCount));
  QUARRY_ASSIGN_OR_RETURN(n_dead_, store_->GetCounter(kMetaLexDead));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t next_segment, store_->GetCounter(kMetaLexNextSegment));
  next_segment_ = next_segment;
  QUARRY_ASSIGN_OR_RETURN(auto manifest, store_->Get(kCfMeta, kMetaLexSegments));
  std::vector<SegmentInfo> infos;
  if (manifest && !DecodeManifest(*manifest, &infos)) return Status::Corruption(dir + ": meta lex.segments is damaged");
  if (writable_) {
    std::error_code ec;
    fs::create_directories(lex_dir_, ec);
    if (ec) return Status::IOError(lex_dir_ + ": " + ec.message());
  }
  QUARRY_ASSIGN_OR_RETURN(const uint64_t n_docs, store_->GetCounter(kMetaNumDocs));
  if (!manifest && n_docs > 0) return RebuildAll();
  std::vector<size_t> broken;
  std::vector<std::shared_ptr<DeadDocs>> dead(infos.size());
  segments_.clear();
  for (size_t i = 0; i < infos.size(); ++i) {
    const auto& info = infos[i];
    auto opened = Segment::Open(SegmentPath(info.id), info.bytes, info.checksum);
    Live live{info, nullptr, nullptr};
    if (opened.ok() && (*opened)->base() == info.base && (*opened)->n_docnums() == info.n_docnums) {
      live.segment = std::move(*opened);
    } else if (!opened.ok() && opened.status().code() == StatusCode::kIOError) {
      return opened.status();
    } else if (!writable_ && !opened.ok() && opened.status().code() == StatusCode::kNotFound) {
      return opened.status();  // maybe merged away since this reader's view: Open catches up and retries
    } else if (!writable_) {
      return Status::Corruption((opened.ok() ? SegmentPath(info.id) + ": segment covers other doc numbers than recorded"
                                             : opened.status().message()) +
                                "; `quarry check " + dir + " --repair` rebuilds it from the stored documents");
    } else {
      broken.push_back(i);
    }
    segments_.push_back(std::move(live));
  }
  // Dead doc numbers, each into the segment whose range holds it.
  {
    std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator(ReadOptionsAt(nullptr), store_->cf(kCfLexDead)));
    for (it->Seek("d"); it->Valid() && it->key().starts_with("d"); it->Next()) {
      if (it->key().size() != 5) return Status::Corruption(dir + ": lex_dead key of wrong size");
      const DocNum doc = DecodeFixed32BE(it->key().data() + 1);
      auto seg = std::upper_bound(infos.begin(), infos.end(), doc, [](DocNum d, const SegmentInfo& si) { return d < si.base; });
      if (seg == infos.begin()) continue;  // not in any segment: `quarry check` reports it
      const size_t i = static_cast<size_t>(seg - infos.begin()) - 1;
      if (doc - infos[i].base >= infos[i].n_docnums) continue;
      if (!dead[i]) dead[i] = std::make_shared<DeadDocs>(infos[i].base, infos[i].n_docnums);
      dead[i]->Add(doc);
    }
    if (!it->status().ok()) return FromRocks(it->status(), dir + ": scan lex_dead");
  }
  for (size_t i = 0; i < segments_.size(); ++i) {
    segments_[i].dead = dead[i];
  }
  for (size_t j = broken.size(); j-- > 0;) QUARRY_RETURN_IF_ERROR(ReplaceWithRebuilt(broken[j]));
  if (writable_) {  // files no manifest lists: a crash between a segment's write and its batch, or merges
    std::set<std::string> listed;
    for (const auto& s : segments_) listed.insert(SegmentFileName(s.info.id));
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(lex_dir_, ec)) {
      if (!listed.count(entry.path().filename().string())) fs::remove(entry.path(), ec);
    }
  }
  Publish();
  return Status::Ok();
}

void LexicalStore::Publish() {
  std::vector<LexicalIndex::Part> parts;
  parts.reserve(segments_.size());
  for (const auto& s : segments_) parts.push_back({s.segment, s.dead});
  std::shared_ptr<Store::Snapshot> snap;
  if (writable_) snap = store_->TakeSnapshot();
  LexicalIndex::DeadTermCount dead_count;
  if (n_dead_ > 0) {
    dead_count = [store = store_, snap](std::string_view term) -> Result<uint64_t> {
      QUARRY_ASSIGN_OR_RETURN(auto v, store->Get(kCfLexDead, TermCountKey(term), snap.get()));
      if (!v) return uint64_t{0};
      auto n = DecodeCounter(*v);
      if (!n) return Status::Corruption(store->dir() + ": lex_dead count of term '" + std::string(term) + "' is damaged");
      return *n;
    };
  }
  auto index = std::make_shared<const LexicalIndex>(std::move(parts), doc_count_, sum_ttf_, settings_, std::move(dead_count),
                                                    Bm25Params{}, std::move(snap));
  ref_avgdl_ = index->avgdl();
  std::lock_guard lock(snapshot_mu_);
  snapshot_ = std::move(index);
}

std::shared_ptr<const LexicalIndex> LexicalStore::Snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

Result<std::vector<AnalyzedDoc>> LexicalStore::Analyze(const std::vector<Document>& docs) const {
  // Creating this thread's analyzer first surfaces an ICU failure here rather than in a worker.
  QUARRY_RETURN_IF_ERROR(Analyzer::ForThisThread(settings_).status());
  std::vector<AnalyzedDoc> out(docs.size());
  std::atomic<bool> failed{false};
  tbb::parallel_for(tbb::blocked_range<size_t>(0, docs.size(), 16), [&](const tbb::blocked_range<size_t>& r) {
    auto analyzer = Analyzer::ForThisThread(settings_);
    if (!analyzer.ok()) {
      failed = true;
      return;
    }
    std::vector<std::string> terms;
    for (size_t i = r.begin(); i < r.end(); ++i) {
      (*analyzer)->Analyze(LexicalText(docs[i]), &terms);
      std::sort(terms.begin(), terms.end());
      AnalyzedDoc& a = out[i];
      a.length = static_cast<uint32_t>(terms.size());
      for (size_t j = 0; j < terms.size();) {
        size_t k = j;
        while (k < terms.size() && terms[k] == terms[j]) ++k;
        a.terms.emplace_back(std::move(terms[j]), static_cast<uint32_t>(k - j));
        j = k;
      }
    }
  });
  if (failed) return Status::Internal("lexical index: could not create an analyzer on a worker thread");
  return out;
}

// --- writes --------------------------------------------------------------------------------------

LexicalStore::NewSegment::~NewSegment() {
  if (kept_) return;
  live_.segment.reset();
  std::error_code ec;
  fs::remove(path_, ec);
}

Result<std::unique_ptr<LexicalStore::NewSegment>> LexicalStore::WriteSegmentOf(const Change& change) {
  if (!writable_) return Status::FailedPrecondition(store_->dir() + ": opened read-only");
  Live live;
  live.info.id = next_segment_.fetch_add(1);
  const std::string path = SegmentPath(live.info.id);
  auto segment = WriteSegment(path, change.first, change.count, change.added, ref_avgdl_.load(), &live.info);
  if (!segment.ok()) return segment.status();
  live.segment = std::move(*segment);
  // The directory entry must be durable before the batch that lists the file.
  auto out = std::make_unique<NewSegment>(path, std::move(live));
  QUARRY_RETURN_IF_ERROR(SyncDirectory(lex_dir_));
  return out;
}

Status LexicalStore::Prepare(const Change& change, std::unique_ptr<NewSegment> segment, rocksdb::WriteBatch* batch) {
  if (!writable_) return Status::FailedPrecondition(store_->dir() + ": opened read-only");
  if (change.count > 0 && !segment) {
    QUARRY_ASSIGN_OR_RETURN(segment, WriteSegmentOf(change));
  }
  prepared_ = std::unique_lock(commit_mu_);
  pending_ = Pending{};
  pending_.active = true;
  auto* dead_cf = store_->cf(kCfLexDead);
  for (const auto& [doc, id, a] : change.added) {
    pending_.sum_ttf_delta += a->length;
    pending_.doc_count_delta += a->length > 0;
  }
  for (const auto& [doc, a] : change.removed) {
    pending_.removed.emplace_back(doc, a->length);
    pending_.sum_ttf_delta -= a->length;
    pending_.doc_count_delta -= a->length > 0;
    std::string length;
    PutVarint32(&length, a->length);
    batch->Put(dead_cf, DeadKey('d', doc), length);
    batch->Put(dead_cf, DeadKey('l', doc), EncodeTermList(*a));
    for (const auto& [term, tf] : a->terms) batch->Merge(dead_cf, TermCountKey(term), CounterDelta(1));
  }
  if (segment) {
    std::vector<SegmentInfo> infos;
    for (const auto& s : segments_) infos.push_back(s.info);
    infos.push_back(segment->live_.info);
    batch->Put(store_->cf(kCfMeta), kMetaLexSegments, EncodeManifest(infos));
    PutCounter(batch, store_->cf(kCfMeta), kMetaLexNextSegment, next_segment_.load());
    pending_.segment = std::move(segment);
  }
  PutCounter(batch, store_->cf(kCfMeta), kMetaLexSumTtf, sum_ttf_ + pending_.sum_ttf_delta);
  PutCounter(batch, store_->cf(kCfMeta), kMetaLexDocCount, doc_count_ + pending_.doc_count_delta);
  PutCounter(batch, store_->cf(kCfMeta), kMetaLexDead, n_dead_ + change.removed.size());
  return Status::Ok();
}

void LexicalStore::Commit() {
  if (pending_.segment) {
    pending_.segment->kept_ = true;
    segments_.push_back(pending_.segment->live_);
  }
  // Each touched segment gets a new dead set (searches in flight keep the old one).
  std::map<size_t, std::shared_ptr<DeadDocs>> touched;
  for (const auto& [doc, length] : pending_.removed) {
    auto seg = std::upper_bound(segments_.begin(), segments_.end(), doc,
                                [](DocNum d, const Live& s) { return d < s.info.base; });
    if (seg == segments_.begin()) continue;
    const size_t i = static_cast<size_t>(seg - segments_.begin()) - 1;
    auto& set = touched[i];
    if (!set) {
      set = segments_[i].dead ? std::make_shared<DeadDocs>(*segments_[i].dead)
                              : std::make_shared<DeadDocs>(segments_[i].info.base, segments_[i].info.n_docnums);
    }
    set->Add(doc);
  }
  for (auto& [i, set] : touched) segments_[i].dead = std::move(set);
  sum_ttf_ += pending_.sum_ttf_delta;
  doc_count_ += pending_.doc_count_delta;
  n_dead_ += pending_.removed.size();
  pending_ = Pending{};
  Publish();
  merge_wanted_ = true;
  prepared_.unlock();
  merge_cv_.notify_one();
}

void LexicalStore::Abort() {
  pending_ = Pending{};  // an uncommitted segment removes its file
  if (prepared_.owns_lock()) prepared_.unlock();
}

// --- rebuilds ------------------------------------------------------------------------------------

Status LexicalStore::RebuildAll() {
  // No manifest but documents (a format 1 collection, or a lost manifest): index every document, and
  // take the counters from what was indexed.
  if (!writable_) {
    return Status::Corruption(store_->dir() + ": the collection has documents but no lexical index; open it for "
                              "writing once (e.g. `quarry check " + store_->dir() + " --repair`) to build it");
  }
  QUARRY_ASSIGN_OR_RETURN(const uint64_t next_doc, store_->GetCounter(kMetaNextDocNum));
  std::vector<Live> fresh;
  QUARRY_RETURN_IF_ERROR(RebuildRange(0, next_doc, &fresh));
  rocksdb::WriteBatch batch;
  std::vector<SegmentInfo> infos;
  uint64_t sum_ttf = 0, doc_count = 0;
  for (const auto& f : fresh) {
    infos.push_back(f.info);
    sum_ttf += f.segment->sum_ttf();
    doc_count += f.segment->n_nonempty();
  }
  batch.DeleteRange(store_->cf(kCfLexDead), "", "\xff");
  batch.Put(store_->cf(kCfMeta), kMetaLexSegments, EncodeManifest(infos));
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexNextSegment, next_segment_.load());
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexDead, 0);
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexSumTtf, sum_ttf);
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexDocCount, doc_count);
  QUARRY_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  segments_ = std::move(fresh);
  sum_ttf_ = sum_ttf;
  doc_count_ = doc_count;
  n_dead_ = 0;
  Publish();
  return Status::Ok();
}

Status LexicalStore::RebuildRange(DocNum base, uint64_t n, std::vector<Live>* out) {
  const uint64_t end = uint64_t{base} + n;
  const float avgdl = doc_count_ ? static_cast<float>(static_cast<double>(sum_ttf_) / doc_count_) : 1.0f;
  for (uint64_t chunk = base; chunk < end; chunk += kRebuildChunk) {
    const uint64_t chunk_end = std::min<uint64_t>(end, chunk + kRebuildChunk);
    std::vector<DocNum> nums;
    std::vector<Document> docs;
    const std::string lo = EncodeFixed32BE(static_cast<DocNum>(chunk));
    std::string hi;
    rocksdb::Slice hi_slice;
    rocksdb::ReadOptions ro = ReadOptionsAt(nullptr);
    if (chunk_end <= UINT32_MAX) {
      hi = EncodeFixed32BE(static_cast<DocNum>(chunk_end));
      hi_slice = hi;
      ro.iterate_upper_bound = &hi_slice;
    }
    std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator(ro, store_->cf(kCfDocs)));
    for (it->Seek(lo); it->Valid(); it->Next()) {
      if (it->key().size() != 4) return Status::Corruption(store_->dir() + ": docs key of wrong size");
      Document doc;
      const DocNum d = DecodeFixed32BE(it->key().data());
      QUARRY_RETURN_IF_ERROR(DecodeDocument(std::string_view(it->value().data(), it->value().size()), &doc)
                                 .WithContext(store_->dir() + ": doc " + std::to_string(d)));
      nums.push_back(d);
      docs.push_back(std::move(doc));
    }
    if (!it->status().ok()) return FromRocks(it->status(), store_->dir() + ": scan docs");
    QUARRY_ASSIGN_OR_RETURN(auto analyzed, Analyze(docs));
    std::vector<std::tuple<DocNum, std::string_view, const AnalyzedDoc*>> added;
    for (size_t i = 0; i < docs.size(); ++i) added.emplace_back(nums[i], docs[i].id, &analyzed[i]);
    Live live;
    live.info.id = next_segment_++;
    QUARRY_ASSIGN_OR_RETURN(live.segment, WriteSegment(SegmentPath(live.info.id), static_cast<DocNum>(chunk),
                                                       static_cast<uint32_t>(chunk_end - chunk), added, avgdl, &live.info));
    out->push_back(std::move(live));
  }
  return SyncDirectory(lex_dir_);
}

Status LexicalStore::ForgetDead(const std::vector<DocNum>& docs, rocksdb::WriteBatch* batch) {
  auto* cf = store_->cf(kCfLexDead);
  std::unordered_map<std::string, int64_t> decrements;
  std::vector<std::string_view> terms;
  for (DocNum doc : docs) {
    QUARRY_ASSIGN_OR_RETURN(auto list, store_->Get(kCfLexDead, DeadKey('l', doc)));
    if (list) {
      if (!DecodeTermList(*list, &terms)) {
        return Status::Corruption(store_->dir() + ": lex_dead term list of doc " + std::to_string(doc) + " is damaged");
      }
      for (auto t : terms) --decrements[std::string(t)];
    }
    batch->Delete(cf, DeadKey('d', doc));
    batch->Delete(cf, DeadKey('l', doc));
  }
  for (const auto& [term, delta] : decrements) batch->Merge(cf, TermCountKey(term), CounterDelta(delta));
  return Status::Ok();
}

Status LexicalStore::ReplaceWithRebuilt(size_t index) {
  if (!writable_) return Status::FailedPrecondition(store_->dir() + ": opened read-only");
  const Live old = segments_[index];
  std::vector<DocNum> dead;
  if (old.dead) {
    for (uint64_t d = old.info.base; d < uint64_t{old.info.base} + old.info.n_docnums; ++d) {
      if (old.dead->Contains(static_cast<DocNum>(d))) dead.push_back(static_cast<DocNum>(d));
    }
  }
  std::vector<Live> fresh;
  QUARRY_RETURN_IF_ERROR(RebuildRange(old.info.base, old.info.n_docnums, &fresh));
  rocksdb::WriteBatch batch;
  QUARRY_RETURN_IF_ERROR(ForgetDead(dead, &batch));
  std::vector<SegmentInfo> infos;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (i == index) {
      for (const auto& f : fresh) infos.push_back(f.info);
    } else {
      infos.push_back(segments_[i].info);
    }
  }
  batch.Put(store_->cf(kCfMeta), kMetaLexSegments, EncodeManifest(infos));
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexNextSegment, next_segment_.load());
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexDead, n_dead_ - dead.size());
  QUARRY_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  n_dead_ -= dead.size();
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(index));
  segments_.insert(segments_.begin() + static_cast<std::ptrdiff_t>(index), fresh.begin(), fresh.end());
  std::error_code ec;
  fs::remove(SegmentPath(old.info.id), ec);
  return Status::Ok();
}

// --- merges --------------------------------------------------------------------------------------

std::optional<LexicalStore::Plan> LexicalStore::PickMerge() const {
  const size_t n = segments_.size();
  auto dead_of = [&](size_t i) { return segments_[i].dead ? segments_[i].dead->Count() : 0; };
  std::vector<uint64_t> live(n);
  std::vector<int> level(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t docs = segments_[i].segment->n_docs(), dead = dead_of(i);
    live[i] = docs - std::min(docs, dead);
    level[i] = live[i] <= 1 ? 0 : static_cast<int>(std::log10(static_cast<double>(live[i])));
    if (docs > 0 && dead >= kDeadRatio * static_cast<double>(docs)) {
      return Plan{{segments_[i]}};
    }
  }
  auto run = [&](size_t first, size_t count) {
    Plan p;
    p.inputs.assign(segments_.begin() + static_cast<std::ptrdiff_t>(first),
                    segments_.begin() + static_cast<std::ptrdiff_t>(first + count));
    return p;
  };
  for (size_t i = 0; i + kMergeFactor <= n; ++i) {
    bool same = true;
    for (size_t j = i + 1; j < i + kMergeFactor && same; ++j) same = level[j] == level[i];
    if (same) return run(i, kMergeFactor);
  }
  if (n > kMaxSegments) {
    size_t best = 0;
    uint64_t best_sum = UINT64_MAX;
    for (size_t i = 0; i + kMergeFactor <= n; ++i) {
      uint64_t sum = 0;
      for (size_t j = i; j < i + kMergeFactor; ++j) sum += live[j];
      if (sum < best_sum) best_sum = sum, best = i;
    }
    return run(best, kMergeFactor);
  }
  return std::nullopt;
}

Status LexicalStore::RunMerge(const Plan& plan, bool drop_all_dead) {
  const DocNum base = plan.inputs.front().info.base;
  const Live& last = plan.inputs.back();
  const uint64_t end = uint64_t{last.info.base} + last.info.n_docnums;
  // The merge decodes (and so checks) every block; the checksum catches what decoding cannot.
  for (const auto& in : plan.inputs) {
    if (Status s = in.segment->VerifyChecksum(); !s.ok()) {
      // A damaged input is rebuilt from the documents instead; the policy then plans again.
      std::lock_guard lock(commit_mu_);
      for (size_t i = 0; i < segments_.size(); ++i) {
        if (segments_[i].info.id == in.info.id) return ReplaceWithRebuilt(i);
      }
      return Status::Ok();
    }
  }
  uint64_t id;
  float avgdl;
  {
    std::lock_guard lock(commit_mu_);
    id = next_segment_.fetch_add(1);
    avgdl = ref_avgdl_.load();
  }
  const std::string path = SegmentPath(id);
  SegmentWriter writer(base, static_cast<uint32_t>(end - base), Bm25Params{}, avgdl);
  QUARRY_RETURN_IF_ERROR(writer.StreamTo(path));
  auto is_dead = [&](size_t input, DocNum doc) {
    return plan.inputs[input].dead && plan.inputs[input].dead->Contains(doc);
  };
  std::vector<DocNum> dropped;
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const Segment& s = *plan.inputs[i].segment;
    for (uint64_t d = s.base(); d < s.end(); ++d) {
      const auto id_view = s.ExternalId(static_cast<DocNum>(d));
      if (id_view.empty()) continue;
      if (is_dead(i, static_cast<DocNum>(d))) dropped.push_back(static_cast<DocNum>(d));
      else writer.SetDocument(static_cast<DocNum>(d), id_view, s.Norm(static_cast<DocNum>(d)));
    }
  }
  // k-way merge of the inputs' term dictionaries; a term's postings are the inputs' in input order,
  // which is doc order (the ranges ascend).
  struct Head {
    uint64_t prefix;
    std::string_view term;
    size_t input;
  };
  auto later = [](const Head& a, const Head& b) {
    if (a.prefix != b.prefix) return a.prefix > b.prefix;
    if (a.term != b.term) return a.term > b.term;
    return a.input > b.input;
  };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  auto push = [&](size_t i, uint32_t t) {
    const std::string_view term = plan.inputs[i].segment->TermAt(t);
    heads.push({TermPrefix(term), term, i});
  };
  std::vector<uint32_t> next(plan.inputs.size(), 0);
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    if (plan.inputs[i].segment->n_terms() > 0) push(i, 0);
  }
  std::vector<std::pair<DocNum, uint32_t>> postings;
  PostingsBlock block;
  uint64_t n_terms = 0;
  while (!heads.empty()) {
    const std::string_view term = heads.top().term;
    postings.clear();
    while (!heads.empty() && heads.top().term == term) {
      const size_t i = heads.top().input;
      heads.pop();
      const Segment& s = *plan.inputs[i].segment;
      QUARRY_ASSIGN_OR_RETURN(auto cursor, Segment::Cursor::Open(s, s.EntryAt(next[i])));
      for (uint32_t b = 0; b < cursor.n_blocks(); ++b) {
        if (!cursor.Decode(b, &block)) return Status::Corruption(s.name() + ": damaged block of term '" + std::string(term) + "'");
        for (uint32_t j = 0; j < block.n; ++j) {
          if (!is_dead(i, block.docs[j])) postings.emplace_back(block.docs[j], block.tfs[j]);
        }
      }
      if (++next[i] < s.n_terms()) push(i, next[i]);
    }
    if (!postings.empty()) QUARRY_RETURN_IF_ERROR(writer.AddTerm(term, postings));
    if (++n_terms % 4096 == 0 && cancel_) return Status::FailedPrecondition("merge cancelled");
  }
  const bool empty = writer.n_docs() == 0;
  std::shared_ptr<const Segment> output;
  SegmentInfo info{id, base, static_cast<uint32_t>(end - base), 0, 0};
  if (!empty) {
    QUARRY_ASSIGN_OR_RETURN(auto written, writer.Finish());
    info.bytes = written.bytes;
    info.checksum = written.checksum;
    QUARRY_ASSIGN_OR_RETURN(output, Segment::Open(path, written.bytes, written.checksum));
    QUARRY_RETURN_IF_ERROR(SyncDirectory(lex_dir_));
  }

  std::lock_guard lock(commit_mu_);
  size_t first = 0;
  while (first < segments_.size() && segments_[first].info.id != plan.inputs.front().info.id) ++first;
  if (first + plan.inputs.size() > segments_.size()) return Status::Internal("merge inputs vanished");
  // Documents deleted while the merge ran stay dead in the output.
  std::shared_ptr<DeadDocs> still_dead;
  uint64_t n_still_dead = 0;
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const Live& now = segments_[first + i];
    if (!now.dead) continue;
    const Segment& s = *now.segment;
    for (uint64_t d = s.base(); d < s.end(); ++d) {
      if (now.dead->Contains(static_cast<DocNum>(d)) && !is_dead(i, static_cast<DocNum>(d))) {
        if (!still_dead) still_dead = std::make_shared<DeadDocs>(base, static_cast<uint32_t>(end - base));
        still_dead->Add(static_cast<DocNum>(d));
        ++n_still_dead;
      }
    }
  }
  rocksdb::WriteBatch batch;
  QUARRY_RETURN_IF_ERROR(ForgetDead(dropped, &batch));
  std::vector<SegmentInfo> infos;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (i == first && !empty) infos.push_back(info);
    if (i < first || i >= first + plan.inputs.size()) infos.push_back(segments_[i].info);
  }
  batch.Put(store_->cf(kCfMeta), kMetaLexSegments, EncodeManifest(infos));
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexNextSegment, next_segment_.load());
  PutCounter(&batch, store_->cf(kCfMeta), kMetaLexDead, n_dead_ - dropped.size());
  if (drop_all_dead && n_dead_ == dropped.size() && n_still_dead == 0) {
    batch.DeleteRange(store_->cf(kCfLexDead), "t", "u");  // no dead document left: every term count is 0
  }
  QUARRY_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  n_dead_ -= dropped.size();
  std::vector<Live> replacement;
  if (!empty) replacement.push_back(Live{info, output, still_dead});
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(first),
                  segments_.begin() + static_cast<std::ptrdiff_t>(first + plan.inputs.size()));
  segments_.insert(segments_.begin() + static_cast<std::ptrdiff_t>(first), replacement.begin(), replacement.end());
  Publish();
  std::error_code ec;
  for (const auto& in : plan.inputs) fs::remove(SegmentPath(in.info.id), ec);
  return Status::Ok();
}

void LexicalStore::MergeLoop() {
  std::unique_lock lock(commit_mu_);
  for (;;) {
    merge_cv_.wait(lock, [&] { return stop_ || (merge_wanted_ && !merging_); });
    if (stop_) return;
    merge_wanted_ = false;
    while (!stop_ && merge_error_.ok()) {
      auto plan = PickMerge();
      if (!plan) break;
      merging_ = true;
      lock.unlock();
      Status s = RunMerge(*plan, /*drop_all_dead=*/false);
      lock.lock();
      merging_ = false;
      if (!s.ok() && !stop_) merge_error_ = s;
      merge_cv_.notify_all();
    }
    merge_cv_.notify_all();
  }
}

Status LexicalStore::WaitForMerges() {
  if (!writable_) return Status::Ok();
  std::unique_lock lock(commit_mu_);
  merge_wanted_ = true;
  merge_cv_.notify_all();
  merge_cv_.wait(lock, [&] { return stop_ || !merge_error_.ok() || (!merging_ && !merge_wanted_ && !PickMerge()); });
  return merge_error_;
}

Result<LexicalCompaction> LexicalStore::Compact() {
  if (!writable_) return Status::FailedPrecondition(store_->dir() + ": opened read-only");
  QUARRY_RETURN_IF_ERROR(WaitForMerges());
  Plan plan;
  LexicalCompaction report;
  {
    std::unique_lock lock(commit_mu_);
    QUARRY_RETURN_IF_ERROR(merge_error_);
    merge_cv_.wait(lock, [&] { return !merging_; });
    report.segments_before = segments_.size();
    report.dead_dropped = n_dead_;
    if (segments_.empty() || (segments_.size() == 1 && n_dead_ == 0)) {
      report.segments_after = segments_.size();
      report.dead_dropped = 0;
      return report;
    }
    plan.inputs = segments_;
    merging_ = true;
  }
  Status s = RunMerge(plan, /*drop_all_dead=*/true);
  std::lock_guard lock(commit_mu_);
  merging_ = false;
  merge_cv_.notify_all();
  QUARRY_RETURN_IF_ERROR(s);
  report.segments_after = segments_.size();
  report.dead_dropped -= n_dead_;
  return report;
}

// --- verification --------------------------------------------------------------------------------

Status LexicalStore::Check(bool repair, std::vector<std::string>* problems) {
  if (repair && !writable_) return Status::FailedPrecondition(store_->dir() + ": --repair needs a writable open");
  if (repair) QUARRY_RETURN_IF_ERROR(WaitForMerges());
  std::unique_lock lock(commit_mu_);
  if (repair) merge_cv_.wait(lock, [&] { return !merging_; });
  for (size_t i = segments_.size(); i-- > 0;) {
    if (Status s = segments_[i].segment->VerifyAll(); !s.ok()) {
      problems->push_back("lex: " + s.message());
      if (repair) {
        QUARRY_RETURN_IF_ERROR(ReplaceWithRebuilt(i));
        problems->back() += " (rebuilt from the stored documents)";
      }
    }
  }
  if (repair) Publish();
  // Dead records: every 'd' has its 'l' and lies in a segment that holds the document; 't' counts are
  // the sums of the term lists; the live counters are the segments' totals minus the dead.
  std::map<std::string, uint64_t> expected_counts;
  uint64_t dead = 0, dead_length = 0, dead_nonempty = 0;
  std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator(ReadOptionsAt(nullptr), store_->cf(kCfLexDead)));
  std::vector<std::string_view> terms;
  for (it->Seek("d"); it->Valid() && it->key().starts_with("d"); it->Next()) {
    if (it->key().size() != 5) {
      problems->push_back("lex_dead: malformed key");
      continue;
    }
    const DocNum doc = DecodeFixed32BE(it->key().data() + 1);
    ++dead;
    std::string_view value(it->value().data(), it->value().size());
    uint32_t length = 0;
    if (!GetVarint32(&value, &length)) problems->push_back("lex_dead: damaged length of doc " + std::to_string(doc));
    dead_length += length;
    dead_nonempty += length > 0;
    auto seg = std::upper_bound(segments_.begin(), segments_.end(), doc, [](DocNum d, const Live& s) { return d < s.info.base; });
    if (seg == segments_.begin() || doc - (seg - 1)->info.base >= (seg - 1)->info.n_docnums ||
        (seg - 1)->segment->ExternalId(doc).empty()) {
      problems->push_back("lex_dead: dead doc " + std::to_string(doc) + " is in no segment");
    }
    auto list = store_->Get(kCfLexDead, DeadKey('l', doc));
    if (!list.ok()) return list.status();
    if (!*list || !DecodeTermList(**list, &terms)) {
      problems->push_back("lex_dead: dead doc " + std::to_string(doc) + " has no valid term list");
      continue;
    }
    for (auto t : terms) ++expected_counts[std::string(t)];
  }
  if (!it->status().ok()) return FromRocks(it->status(), store_->dir() + ": scan lex_dead");
  if (dead != n_dead_) {
    problems->push_back("meta lex.n_dead " + std::to_string(n_dead_) + " but lex_dead holds " + std::to_string(dead));
  }
  uint64_t n_lists = 0;
  for (it->Seek("l"); it->Valid() && it->key().starts_with("l"); it->Next()) ++n_lists;
  if (n_lists != dead) problems->push_back("lex_dead: " + std::to_string(n_lists) + " term lists for " + std::to_string(dead) + " dead docs");
  for (it->Seek("t"); it->Valid() && it->key().starts_with("t"); it->Next()) {
    const std::string term(it->key().data() + 1, it->key().size() - 1);
    const auto n = DecodeCounter(std::string_view(it->value().data(), it->value().size()));
    const uint64_t want = expected_counts.count(term) ? expected_counts[term] : 0;
    if (!n || *n != want) {
      problems->push_back("lex_dead: count of term '" + term + "' is " + (n ? std::to_string(*n) : "damaged") +
                          ", the dead documents hold " + std::to_string(want));
    }
    expected_counts.erase(term);
  }
  for (const auto& [term, n] : expected_counts) {
    problems->push_back("lex_dead: term '" + term + "' of " + std::to_string(n) + " dead documents has no count");
  }
  uint64_t seg_ttf = 0, seg_nonempty = 0;
  for (const auto& s : segments_) seg_ttf += s.segment->sum_ttf(), seg_nonempty += s.segment->n_nonempty();
  if (seg_ttf - dead_length != sum_ttf_) {
    problems->push_back("meta lex.sum_ttf " + std::to_string(sum_ttf_) + " but the segments' live documents hold " +
                        std::to_string(seg_ttf - dead_length) + " terms");
  }
  if (seg_nonempty - dead_nonempty != doc_count_) {
    problems->push_back("meta lex.doc_count " + std::to_string(doc_count_) + " but the segments hold " +
                        std::to_string(seg_nonempty - dead_nonempty) + " live documents with terms");
  }
  return Status::Ok();
}

LexicalStore::Stats LexicalStore::GetStats() const {
  const auto snapshot = Snapshot();
  Stats s;
  s.segments = snapshot->parts().size();
  for (const auto& part : snapshot->parts()) {
    s.segment_bytes += part.segment->file_bytes();
    s.terms += part.segment->n_terms();
    s.postings += part.segment->n_postings();
    if (part.dead) s.dead += part.dead->Count();
  }
  return s;
}

}  // namespace quarry
