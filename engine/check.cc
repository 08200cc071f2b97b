// `quarry check`: the column families must agree with each other and with the counters.
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "engine/collection_impl.h"
#include "storage/document_codec.h"

namespace quarry {

Result<CheckReport> Collection::Check() const {
  Store& store = *impl_->store;
  auto snap = store.TakeSnapshot();
  const auto ro = ReadOptionsAt(snap.get());
  CheckReport report;
  auto problem = [&](std::string p) {
    if (report.problems.size() < 100) report.problems.push_back(std::move(p));
  };
  QUARRY_ASSIGN_OR_RETURN(const uint64_t next_docnum, store.GetCounter(kMetaNextDocNum, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t n_docs, store.GetCounter(kMetaNumDocs, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t sum_ttf, store.GetCounter(kMetaLexSumTtf, snap.get()));
  QUARRY_ASSIGN_OR_RETURN(const uint64_t doc_count, store.GetCounter(kMetaLexDocCount, snap.get()));

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

  // lex_docs <-> docs, and the lexical counters.
  std::unordered_set<DocNum> lex_live;
  uint64_t lex_sum = 0, lex_nonempty = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(kCfLexDocs)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++report.n_lex_docs;
      std::string_view in(it->value().data(), it->value().size());
      uint32_t length;
      if (it->key().size() != 4 || !GetVarint32(&in, &length)) {
        problem("lex_docs: malformed entry");
        continue;
      }
      const DocNum d = DecodeFixed32BE(it->key().data());
      lex_live.insert(d);
      lex_sum += length;
      if (length > 0) ++lex_nonempty;
      auto found = doc_ids.find(d);
      if (found == doc_ids.end()) problem("lex_docs: doc " + std::to_string(d) + " is not in docs");
      else if (found->second != in) problem("lex_docs: doc " + std::to_string(d) + " id disagrees with docs");
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), dir() + ": scan lex_docs"));
  }
  for (const auto& [d, id] : doc_ids) {
    if (!lex_live.count(d)) problem("docs: doc " + std::to_string(d) + " ('" + id + "') is not indexed");
  }
  if (lex_sum != sum_ttf) problem("meta lex.sum_ttf " + std::to_string(sum_ttf) + " but lex_docs sums to " + std::to_string(lex_sum));
  if (lex_nonempty != doc_count) problem("meta lex.doc_count " + std::to_string(doc_count) + " but lex_docs has " + std::to_string(lex_nonempty));

  // Postings blocks decode, and live postings add up to the live lengths.
  uint64_t live_tf = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(kCfLexPostings)));
    Postings block;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++report.n_postings_blocks;
      std::string_view term;
      DocNum first;
      if (!ParsePostingsKey(std::string_view(it->key().data(), it->key().size()), &term, &first)) {
        problem("lex_postings: malformed key");
        continue;
      }
      block.clear();
      if (!DecodePostingsBlock(first, std::string_view(it->value().data(), it->value().size()), &block)) {
        problem("lex_postings: bad block for term '" + std::string(term) + "'");
      }
      for (auto [doc, tf] : block) {
        if (lex_live.count(doc)) live_tf += tf;
      }
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), dir() + ": scan lex_postings"));
  }
  if (live_tf != lex_sum) {
    problem("lex_postings: live postings hold " + std::to_string(live_tf) + " terms, lex_docs lengths " + std::to_string(lex_sum));
  }

  // Dense vectors belong to live documents and have the configured dim.
  QUARRY_ASSIGN_OR_RETURN(auto dense_config, store.Get(kCfMeta, kMetaDenseConfig, snap.get()));
  if (dense_config) {
    auto config = nlohmann::json::parse(*dense_config, nullptr, false);
    const size_t dim = config.is_discarded() ? 0 : config.value("dim", size_t{0});
    if (dim == 0) problem("meta dense.config: not valid JSON with a dim");
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(kCfDense)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++report.n_vectors;
      const auto key = it->key();
      if (key.size() != 5 || (key[0] != 'd' && key[0] != 'q')) {
        problem("dense: malformed key");
        continue;
      }
      const DocNum d = DecodeFixed32BE(key.data() + 1);
      if (!doc_ids.count(d)) problem("dense: vector of doc " + std::to_string(d) + ", which is not in docs");
      if (dim && it->value().size() != dim * sizeof(float)) {
        problem("dense: vector of doc " + std::to_string(d) + " has " + std::to_string(it->value().size()) +
                " bytes, dim " + std::to_string(dim) + " needs " + std::to_string(dim * sizeof(float)));
      }
    }
    QUARRY_RETURN_IF_ERROR(FromRocks(it->status(), dir() + ": scan dense"));
  }
  return report;
}

}  // namespace quarry
