// `quarry check`: the column families must agree with each other and with the counters. This file checks
// the store's own families (docs, ids, counters) against the lexical index; every index module checks
// its own families (CheckDense, CheckRerankCaches, CheckResMem).
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "engine/collection_impl.h"
#include "storage/document_codec.h"

namespace quarry {

void AddProblem(CheckReport* report, std::string problem) {
  if (report->problems.size() < 100) report->problems.push_back(std::move(problem));
}

Result<CheckReport> Collection::Check(bool repair) const {
  Store& store = *impl_->store;
  CheckReport report;
  // The lexical index checks itself first (and repairs); the rest is read as of its snapshot.
  QUARRY_RETURN_IF_ERROR(impl_->lexical->Check(repair, &report.problems));
  if (repair) {
    // A missing, stale or corrupt dense index file (derived data, rebuilt in memory by every open that
    // needs it) is written again.
    QUARRY_RETURN_IF_ERROR(impl_->RequireWritable());
    std::lock_guard lock(impl_->write_mu);
    QUARRY_RETURN_IF_ERROR(impl_->RepairDenseBase());
  }
  const auto index = impl_->lexical->Snapshot();
  const Store::Snapshot* snap = index->store_snapshot();
  const auto ro = ReadOptionsAt(snap);
  auto problem = [&](std::string p) { AddProblem(&report, std::move(p)); };
  QUARRY_ASSIGN_OR_RETURN(const uint64_t next_docnum, store.GetCounter(kMetaNextDocNum, snap));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t n_docs, store.GetCounter(kMetaNumDocs, snap));

  // docs <-> ids
  std::unordered_map<DocNum, std::string> doc_ids;
  {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(kCfDocs)));
    Document doc;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++report.n_docs;
      if (it->key().size() != 4) {
        problem("docs: key of " + std::to_string(it->key().size()) + " bytes");
        continue;
      }
      const DocNum d = DecodeFixed32BE(it->key().data());
      if (d >= next_docnum) problem("docs: doc " + std::to_string(d) + " >= next_docnum");
      Status s = DecodeDocument(std::string_view(it->value().data(), it->value().size()), &doc);
      if (!s.ok()) {
        problem("docs: doc " + std::to_string(d) + ": " + s.message());
        continue;
      }
      doc_ids.emplace(d, doc.id);
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), dir() + ": scan docs"));
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(kCfIds)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++report.n_ids;
      const std::string id = it->key().ToString();
      if (it->value().size() != 4) {
        problem("ids: '" + id + "' has a value of wrong size");
        continue;
      }
      const DocNum d = DecodeFixed32BE(it->value().data());
      auto found = doc_ids.find(d);
      if (found == doc_ids.end()) problem("ids: '" + id + "' -> doc " + std::to_string(d) + " which is absent");
      else if (found->second != id) problem("ids: '" + id + "' -> doc " + std::to_string(d) + " whose id is '" + found->second + "'");
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), dir() + ": scan ids"));
  }
  if (report.n_ids != report.n_docs) {
    problem("ids has " + std::to_string(report.n_ids) + " entries, docs " + std::to_string(report.n_docs));
  }
  if (n_docs != report.n_docs) {
    problem("meta n_docs " + std::to_string(n_docs) + " but docs holds " + std::to_string(report.n_docs));
  }

  // The lexical index: every segment and dead record checks out, and the live documents of the
  // segments are exactly the documents, under the same ids.
  {
    for (const auto& part : index->parts()) {
      ++report.n_segments;
      report.n_postings += part.segment->n_postings();
      report.n_indexed += part.segment->n_docs() - (part.dead ? part.dead->Count() : 0);
    }
    for (const auto& [d, id] : doc_ids) {
      const std::string_view indexed = index->ExternalId(d);
      if (indexed.empty()) problem("docs: doc " + std::to_string(d) + " ('" + id + "') is not indexed");
      else if (indexed != id) problem("docs: doc " + std::to_string(d) + " ('" + id + "') is indexed as '" + std::string(indexed) + "'");
    }
    if (report.n_indexed != report.n_docs) {
      problem("lex: the segments hold " + std::to_string(report.n_indexed) + " live documents, docs " +
              std::to_string(report.n_docs));
    }
  }

  // Each index module's own families.
  QUARRY_RETURN_IF_ERROR(impl_->CheckDense(snap, doc_ids, &report));
  QUARRY_RETURN_IF_ERROR(CheckRerankCaches(store, snap, doc_ids, &report));
  QUARRY_RETURN_IF_ERROR(CheckResMem(store, snap, &report));
  return report;
}

}  // namespace quarry
