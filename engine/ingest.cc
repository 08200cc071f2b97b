// The write path: every change to documents and to the indexes that mirror them goes into one
// RocksDB WriteBatch, with the counters it changes, so a batch is applied whole or not at all.
#include <chrono>
#include <fstream>

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

Status Collection::Impl::ApplyUpserts(const std::vector<Document>& docs, uint64_t* n_replaced, bool sync) {
  if (!lexical_writer) return Status::FailedPrecondition(store->dir() + ": opened read-only");
  rocksdb::WriteBatch batch;
  uint64_t next = next_docnum, live = n_docs, replaced = 0;
  std::unordered_map<std::string_view, DocNum> in_batch;  // ids added earlier in this batch
  auto fail = [&](Status s) {
    lexical_writer->Discard();
    return s;
  };
  auto analyzed = lexical_writer->AnalyzeBatch(docs);
  if (!analyzed.ok()) return fail(analyzed.status());
  std::vector<std::vector<std::string>>& terms = *analyzed;
  std::vector<DocNum> removed;
  std::vector<std::pair<DocNum, const Document*>> added;
  for (size_t n = 0; n < docs.size(); ++n) {
    const Document& doc = docs[n];
    if (doc.id.empty()) return fail(Status::InvalidArgument("document with an empty id"));
    for (const std::string* field : {&doc.id, &doc.title, &doc.text, &doc.metadata}) {
      if (!IsValidUtf8(*field)) return fail(Status::InvalidArgument("document '" + doc.id + "': invalid UTF-8"));
    }
    std::optional<DocNum> old;
    if (auto it = in_batch.find(doc.id); it != in_batch.end()) {
      old = it->second;
    } else {
      auto found = store->LookupDocNum(doc.id);
      if (!found.ok()) return fail(found.status());
      old = *found;
    }
    if (old) {
      batch.Delete(store->cf(kCfDocs), EncodeFixed32BE(*old));
      batch.Delete(store->cf(kCfRerankCache), EncodeFixed32BE(*old));
      if (Status s = lexical_writer->Remove(*old); !s.ok()) return fail(s);
      removed.push_back(*old);
      ++replaced;
    } else {
      ++live;
    }
    if (next > UINT32_MAX) return fail(Status::FailedPrecondition(store->dir() + ": doc numbers exhausted"));
    const auto docnum = static_cast<DocNum>(next++);
    batch.Put(store->cf(kCfDocs), EncodeFixed32BE(docnum), EncodeDocument(doc));
    batch.Put(store->cf(kCfIds), doc.id, EncodeFixed32BE(docnum));
    lexical_writer->AddAnalyzed(docnum, doc.id, std::move(terms[n]));
    in_batch[doc.id] = docnum;
    added.emplace_back(docnum, &doc);
  }
  if (Status s = DenseUpdates(removed, added, &batch); !s.ok()) return fail(s);
  lexical_writer->Flush(&batch);
  PutCounter(&batch, store->cf(kCfMeta), kMetaNextDocNum, next);
  PutCounter(&batch, store->cf(kCfMeta), kMetaNumDocs, live);
  if (Status s = store->Write(&batch, sync); !s.ok()) {
    // The lexical writer's counters moved on with Flush; reload them so the next batch starts
    // from what is really committed.
    rocksdb::WriteBatch unused;
    auto reopened = LexicalWriter::Open(store.get(), &unused);
    if (reopened.ok()) lexical_writer = std::move(*reopened);
    return s;
  }
  next_docnum = next;
  n_docs = live;
  if (n_replaced) *n_replaced += replaced;
  generation.fetch_add(1);
  return Status::Ok();
}

Status Collection::Upsert(const std::vector<Document>& docs) {
  std::lock_guard lock(impl_->write_mu);
  return impl_->ApplyUpserts(docs, nullptr, /*sync=*/true);
}

Result<bool> Collection::Delete(std::string_view id) {
  std::lock_guard lock(impl_->write_mu);
  if (!impl_->lexical_writer) return Status::FailedPrecondition(dir() + ": opened read-only");
  QUARRY_ASSIGN_OR_RETURN(auto docnum, impl_->store->LookupDocNum(id));
  if (!docnum) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->store->cf(kCfDocs), EncodeFixed32BE(*docnum));
  batch.Delete(impl_->store->cf(kCfRerankCache), EncodeFixed32BE(*docnum));
  batch.Delete(impl_->store->cf(kCfIds), rocksdb::Slice(id.data(), id.size()));
  if (Status s = impl_->lexical_writer->Remove(*docnum); !s.ok()) {
    impl_->lexical_writer->Discard();
    return s;
  }
  if (Status s = impl_->DenseUpdates({*docnum}, {}, &batch); !s.ok()) {
    impl_->lexical_writer->Discard();
    return s;
  }
  impl_->lexical_writer->Flush(&batch);
  PutCounter(&batch, impl_->store->cf(kCfMeta), kMetaNumDocs, impl_->n_docs - 1);
  QUARRY_RETURN_IF_ERROR(impl_->store->Write(&batch, /*sync=*/true));
  --impl_->n_docs;
  impl_->generation.fetch_add(1);
  return true;
}

Result<IngestReport> Collection::IngestFile(const std::string& path, const ReaderOptions& reader_options,
                                            const IngestOptions& options) {
  std::lock_guard lock(impl_->write_mu);
  if (!impl_->lexical_writer) return Status::FailedPrecondition(dir() + ": opened read-only");
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
  std::vector<Document> batch;
  const uint64_t batch_docs = std::max<uint64_t>(1, options.batch_docs);
  auto commit = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    QUARRY_RETURN_IF_ERROR(impl_->ApplyUpserts(batch, &report.n_replaced, options.sync));
    const uint64_t n = batch.size();
    report.n_added += n;
    ++report.n_batches;
    batch.clear();
    if (options.on_batch) {
      options.on_batch({report.n_batches - 1, n, report.n_added, reader->line_number()});
    }
    if (options.progress) progress.Update(report.n_added, reader->bytes_read());
    return Status::Ok();
  };
  for (;;) {
    Document doc;
    auto next = reader->Next(&doc);
    if (!next.ok()) {
      if (!options.skip_invalid || next.status().code() == StatusCode::kIOError) {
        report.n_lines = reader->line_number();
        return next.status();
      }
      ++report.n_skipped;
      if (report_file) report_file << next.status().message() << '\n';
      continue;
    }
    if (!*next) break;
    ++report.n_read;
    batch.push_back(std::move(doc));
    if (batch.size() >= batch_docs) QUARRY_RETURN_IF_ERROR(commit());
  }
  QUARRY_RETURN_IF_ERROR(commit());
  progress.Finish();
  // With a dense index, bring DIR/dense.faiss up to date once now, rather than have every later
  // (read-only) search rebuild it in memory.
  QUARRY_ASSIGN_OR_RETURN(auto dense_config, impl_->store->Get(kCfMeta, kMetaDenseConfig));
  if (dense_config) QUARRY_RETURN_IF_ERROR(impl_->CurrentDenseIndex().status());
  report.n_added -= report.n_replaced;
  report.n_lines = reader->line_number();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace quarry

namespace quarry {

Result<uint64_t> Collection::Compact() {
  std::lock_guard lock(impl_->write_mu);
  if (!impl_->lexical_writer) return Status::FailedPrecondition(dir() + ": opened read-only");
  QUARRY_ASSIGN_OR_RETURN(auto report, CompactLexicalIndex(impl_->store.get()));
  impl_->generation.fetch_add(1);
  return report.postings_dropped;
}

}  // namespace quarry
