// The write path: every change to documents and to the indexes that mirror them goes into one
// RocksDB WriteBatch, with the counters it changes, so a batch is applied whole or not at all.
#include <tbb/parallel_pipeline.h>

#include <chrono>
#include <fstream>
#include <mutex>

#include "common/coding.h"
#include "common/progress.h"
#include "common/utf8.h"
#include "engine/collection_impl.h"
#include "storage/document_codec.h"
#include "storage/document_reader.h"

namespace quarry {

namespace {

void PutCounter(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* meta, const char* key, uint64_t v) {
  std::string value;
  PutFixed64BE(&value, v);
  batch->Put(meta, key, value);
}

}  // namespace

LexicalStore::Change NewDocumentsChange(DocNum first, const std::vector<Document>& docs,
                                        const std::vector<AnalyzedDoc>& analyzed) {
  LexicalStore::Change change;
  change.first = first;
  change.count = static_cast<uint32_t>(docs.size());
  for (size_t n = 0; n < docs.size(); ++n) {
    change.added.emplace_back(static_cast<DocNum>(first + n), docs[n].id, &analyzed[n]);
  }
  return change;
}

Status Collection::Impl::ApplyUpserts(const std::vector<Document>& docs, std::vector<AnalyzedDoc> analyzed,
                                      std::unique_ptr<LexicalStore::NewSegment> segment, uint64_t* n_replaced,
                                      bool sync) {
  QUARRY_RETURN_IF_ERROR(RequireWritable());
  for (const Document& doc : docs) {
    if (doc.id.empty()) return Status::InvalidArgument("document with an empty id");
    for (const std::string* field : {&doc.id, &doc.title, &doc.text, &doc.metadata}) {
      if (!IsValidUtf8(*field)) return Status::InvalidArgument("document '" + doc.id + "': invalid UTF-8");
    }
  }
  if (next_docnum + docs.size() > uint64_t{UINT32_MAX} + 1) {
    return Status::FailedPrecondition(store->dir() + ": doc numbers exhausted");
  }
  rocksdb::WriteBatch batch;
  LexicalStore::Change change = NewDocumentsChange(static_cast<DocNum>(next_docnum), docs, analyzed);
  uint64_t live = n_docs, replaced = 0;
  std::unordered_map<std::string_view, size_t> in_batch;  // id -> position of its latest version here
  std::vector<DocNum> old_nums;                           // committed documents this batch replaces
  for (size_t n = 0; n < docs.size(); ++n) {
    const Document& doc = docs[n];
    const auto docnum = static_cast<DocNum>(next_docnum + n);
    if (auto it = in_batch.find(doc.id); it != in_batch.end()) {
      // An earlier line of this batch had the id: its version is indexed, then dead.
      const auto earlier = static_cast<DocNum>(next_docnum + it->second);
      batch.Delete(store->cf(kCfDocs), EncodeFixed32BE(earlier));
      change.removed.emplace_back(earlier, &analyzed[it->second]);
      ++replaced;
    } else {
      QUARRY_ASSIGN_OR_RETURN(auto old, store->LookupDocNum(doc.id));
      if (old) {
        batch.Delete(store->cf(kCfDocs), EncodeFixed32BE(*old));
        batch.Delete(store->cf(kCfRerankCache), EncodeFixed32BE(*old));
        old_nums.push_back(*old);
        ++replaced;
      } else {
        ++live;
      }
    }
    batch.Put(store->cf(kCfDocs), EncodeFixed32BE(docnum), EncodeDocument(doc));
    batch.Put(store->cf(kCfIds), doc.id, EncodeFixed32BE(docnum));
    in_batch[doc.id] = n;
  }
  // A replaced document's dead record lists its terms, so its old version is analyzed again.
  std::vector<Document> old_docs;
  for (DocNum old : old_nums) {
    QUARRY_ASSIGN_OR_RETURN(auto d, store->GetDocument(old));
    if (!d) return Status::Corruption(store->dir() + ": ids names doc " + std::to_string(old) + ", which is missing");
    old_docs.push_back(std::move(*d));
  }
  QUARRY_ASSIGN_OR_RETURN(auto old_analyzed, lexical->Analyze(old_docs));
  for (size_t i = 0; i < old_nums.size(); ++i) change.removed.emplace_back(old_nums[i], &old_analyzed[i]);
  std::vector<DocNum> removed;
  for (const auto& [doc, a] : change.removed) removed.push_back(doc);
  std::vector<std::pair<DocNum, const Document*>> added;
  for (size_t n = 0; n < docs.size(); ++n) {
    if (in_batch[docs[n].id] == n) added.emplace_back(static_cast<DocNum>(next_docnum + n), &docs[n]);
  }
  QUARRY_RETURN_IF_ERROR(DenseUpdates(removed, added, &batch));
  QUARRY_RETURN_IF_ERROR(lexical->Prepare(change, std::move(segment), &batch));
  const uint64_t next = next_docnum + docs.size();
  PutCounter(&batch, store->cf(kCfMeta), kMetaNextDocNum, next);
  PutCounter(&batch, store->cf(kCfMeta), kMetaNumDocs, live);
  if (Status s = store->Write(&batch, sync); !s.ok()) {
    lexical->Abort();
    dense_pending = DensePending{};
    return s;
  }
  lexical->Commit();
  next_docnum = next;
  n_docs = live;
  if (n_replaced) *n_replaced += replaced;
  return CommitDense();
}

Status Collection::Upsert(const std::vector<Document>& docs) {
  QUARRY_ASSIGN_OR_RETURN(auto analyzed, impl_->lexical->Analyze(docs));
  std::lock_guard lock(impl_->write_mu);
  return impl_->ApplyUpserts(docs, std::move(analyzed), nullptr, nullptr, /*sync=*/true);
}

Result<bool> Collection::Delete(std::string_view id) {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  Store& store = *impl_->store;
  QUARRY_ASSIGN_OR_RETURN(auto docnum, store.LookupDocNum(id));
  if (!docnum) return false;
  QUARRY_ASSIGN_OR_RETURN(auto doc, store.GetDocument(*docnum));
  if (!doc) return Status::Corruption(dir() + ": ids names doc " + std::to_string(*docnum) + ", which is missing");
  QUARRY_ASSIGN_OR_RETURN(auto analyzed, impl_->lexical->Analyze({*doc}));
  rocksdb::WriteBatch batch;
  batch.Delete(store.cf(kCfDocs), EncodeFixed32BE(*docnum));
  batch.Delete(store.cf(kCfRerankCache), EncodeFixed32BE(*docnum));
  batch.Delete(store.cf(kCfIds), rocksdb::Slice(id.data(), id.size()));
  QUARRY_RETURN_IF_ERROR(impl_->DenseUpdates({*docnum}, {}, &batch));
  LexicalStore::Change change;
  change.first = static_cast<DocNum>(impl_->next_docnum);
  change.removed.emplace_back(*docnum, &analyzed[0]);
  QUARRY_RETURN_IF_ERROR(impl_->lexical->Prepare(change, nullptr, &batch));
  PutCounter(&batch, store.cf(kCfMeta), kMetaNumDocs, impl_->n_docs - 1);
  if (Status s = store.Write(&batch, /*sync=*/true); !s.ok()) {
    impl_->lexical->Abort();
    impl_->dense_pending = Impl::DensePending{};
    return s;
  }
  impl_->lexical->Commit();
  --impl_->n_docs;
  QUARRY_RETURN_IF_ERROR(impl_->CommitDense());
  return true;
}

Result<IngestReport> Collection::IngestFile(const std::string& path, const ReaderOptions& reader_options,
                                            const IngestOptions& options) {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  QUARRY_ASSIGN_OR_RETURN(auto reader, DocumentReader::Open(path, reader_options));
  std::ofstream report_file;
  if (!options.report_path.empty()) {
    report_file.open(options.report_path, std::ios::app);
    if (!report_file) return Status::IOError(options.report_path + ": cannot open skip report");
  }
  const auto start = std::chrono::steady_clock::now();
  IngestReport report;
  Progress progress("ingest", reader->total_bytes(), "docs");
  if (!options.progress) progress.Finish();  // never draws
  const uint64_t batch_docs = std::max<uint64_t>(1, options.batch_docs);

  // Three stages, so that every core works: reading (in order), analysis and the batch's segment
  // (batches in parallel), and the commit (in order). Doc numbers are planned as batches are read;
  // they are exactly those the commits assign, because nothing else writes meanwhile (write_mu).
  struct Batch {
    std::vector<Document> docs;
    DocNum first = 0;
    uint64_t last_line = 0;  // the input line through which this batch reads
    std::vector<AnalyzedDoc> analyzed;
    std::unique_ptr<LexicalStore::NewSegment> segment;
    Status status;
  };
  using BatchPtr = std::shared_ptr<Batch>;
  Status failure;          // the first analysis or commit error; later batches are dropped
  Status read_error;       // a bad line: batches read before it still commit
  bool stopped = false;    // read stage: input ended or failed
  uint64_t planned = impl_->next_docnum, last_line = 0;
  std::mutex failure_mu;
  auto failed = [&] {
    std::lock_guard l(failure_mu);
    return !failure.ok();
  };
  auto fail = [&](Status s) {
    std::lock_guard l(failure_mu);
    if (failure.ok()) failure = std::move(s);
  };
  tbb::parallel_pipeline(
      /*max_number_of_live_tokens=*/3,
      tbb::make_filter<void, BatchPtr>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> BatchPtr {
                                         if (stopped || failed()) {
                                           fc.stop();
                                           return nullptr;
                                         }
                                         auto b = std::make_shared<Batch>();
                                         b->first = static_cast<DocNum>(planned);
                                         while (b->docs.size() < batch_docs) {
                                           Document doc;
                                           auto next = reader->Next(&doc);
                                           if (!next.ok()) {
                                             if (!options.skip_invalid || next.status().code() == StatusCode::kIOError) {
                                               read_error = next.status();  // the partial batch is not applied
                                               last_line = reader->line_number();
                                               stopped = true;
                                               fc.stop();
                                               return nullptr;
                                             }
                                             ++report.n_skipped;
                                             if (report_file) report_file << next.status().message() << '\n';
                                             continue;
                                           }
                                           if (!*next) {
                                             stopped = true;
                                             break;
                                           }
                                           ++report.n_read;
                                           b->docs.push_back(std::move(doc));
                                         }
                                         b->last_line = last_line = reader->line_number();
                                         if (b->docs.empty()) {
                                           fc.stop();
                                           return nullptr;
                                         }
                                         planned += b->docs.size();
                                         return b;
                                       }) &
          tbb::make_filter<BatchPtr, BatchPtr>(tbb::filter_mode::parallel,
                                               [&](BatchPtr b) {
                                                 if (failed()) return b;
                                                 auto analyzed = impl_->lexical->Analyze(b->docs);
                                                 if (!analyzed.ok()) {
                                                   b->status = analyzed.status();
                                                   return b;
                                                 }
                                                 b->analyzed = std::move(*analyzed);
                                                 LexicalStore::Change change = NewDocumentsChange(b->first, b->docs, b->analyzed);
                                                 auto segment = impl_->lexical->WriteSegmentOf(change);
                                                 if (segment.ok()) b->segment = std::move(*segment);
                                                 else b->status = segment.status();
                                                 return b;
                                               }) &
          tbb::make_filter<BatchPtr, void>(tbb::filter_mode::serial_in_order, [&](BatchPtr b) {
            if (failed()) return;
            if (!b->status.ok()) return fail(b->status);
            if (b->first != impl_->next_docnum) b->segment.reset();  // cannot happen; rebuilt by Prepare then
            Status s = impl_->ApplyUpserts(b->docs, std::move(b->analyzed), std::move(b->segment), &report.n_replaced,
                                           options.sync);
            if (!s.ok()) return fail(s);
            const uint64_t n = b->docs.size();
            report.n_added += n;
            ++report.n_batches;
            if (options.on_batch) options.on_batch({report.n_batches - 1, n, report.n_added, b->last_line});
            if (options.progress) progress.Update(report.n_added, reader->bytes_read());
          }));
  if (!failure.ok()) return failure;
  if (!read_error.ok()) return read_error;
  progress.Finish();
  // Like Lucene's IndexWriter.close(): leave the segments merged as the policy wants them.
  QUARRY_RETURN_IF_ERROR(impl_->lexical->WaitForMerges());
  // With a dense index, fold the vectors written since its base file into a new one now, so that later
  // (read-only) searches load it instead of holding them in memory.
  QUARRY_ASSIGN_OR_RETURN(auto dense_config, impl_->store->Get(kCfMeta, kMetaDenseConfig));
  if (dense_config) QUARRY_RETURN_IF_ERROR(impl_->RefreshDenseBase());
  report.n_added -= report.n_replaced;
  report.n_lines = last_line;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace quarry

namespace quarry {

Status Collection::WaitForMerges() { return impl_->lexical->WaitForMerges(); }

Result<uint64_t> Collection::Compact() {
  std::lock_guard lock(impl_->write_mu);
  QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
  QUARRY_ASSIGN_OR_RETURN(auto report, impl_->lexical->Compact());
  return report.dead_dropped;
}

}  // namespace quarry
