// Hierarchical retrieval's pipeline over collections (include/quarry/hierarchical.h): loading and
// splitting a hierarchy, training and measuring embeddings, storing them as a collection, searching one.
#include "quarry/hierarchical.h"

#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/fsync.h"
#include "common/utf8.h"
#include "index/hierarchical/hierarchy.h"
#include "index/hierarchical/trainer.h"

namespace quarry::hr {

struct Dataset::Impl {
  Hierarchy hierarchy;
  Closure closure;
  Split split;
  std::vector<Pair> all_pairs;  // every relevant pair, train and held out
};

Result<Dataset> Dataset::Load(const HierarchySource& source) {
  auto impl = std::make_shared<Impl>();
  if (!source.edges.empty()) {
    QUARRY_ASSIGN_OR_RETURN(impl->hierarchy, LoadEdgeList(source.edges));
  } else {
    QUARRY_ASSIGN_OR_RETURN(impl->hierarchy, LoadWordNetNouns(source.wordnet.empty() ? kDefaultWordNetNouns : source.wordnet));
  }
  QUARRY_ASSIGN_OR_RETURN(impl->closure, ComputeClosure(impl->hierarchy));
  impl->split = SplitPairs(impl->closure, source.validation_fraction, source.test_fraction, source.split_seed);
  for (NodeId q = 0; q < impl->closure.ancestors.size(); ++q) {
    for (const auto& [doc, d] : impl->closure.ancestors[q]) impl->all_pairs.push_back({q, doc, d});
  }
  return Dataset(std::move(impl));
}

size_t Dataset::n_nodes() const { return impl_->hierarchy.size(); }
size_t Dataset::n_pairs() const { return impl_->closure.n_pairs(); }
int Dataset::max_distance() const { return impl_->closure.max_distance(); }
size_t Dataset::n_train() const { return impl_->split.train.size(); }
size_t Dataset::n_validation() const { return impl_->split.validation.size(); }
size_t Dataset::n_test() const { return impl_->split.test.size(); }

Result<RecallReport> EvaluateEmbeddings(const Dataset& data, const Embeddings& e, const SearchIndex& index) {
  const auto& d = data.impl();
  if (e.n_nodes() != d.hierarchy.size() || e.queries.size() != e.docs.size()) {
    return Status::InvalidArgument("embeddings of " + std::to_string(e.n_nodes()) + " nodes for a hierarchy of " +
                                   std::to_string(d.hierarchy.size()));
  }
  RecallReport r;
  QUARRY_ASSIGN_OR_RETURN(r.test, EvaluateRecall(e, d.closure, d.split.test, index));
  QUARRY_ASSIGN_OR_RETURN(r.all, EvaluateRecall(e, d.closure, d.all_pairs, index));
  return r;
}

Result<TrainedEmbeddings> TrainEmbeddings(const Dataset& data, const TrainOptions& options,
                                          const std::function<void(const EpochReport&)>& on_epoch) {
  QUARRY_ASSIGN_OR_RETURN(auto trained, Train(data.impl().closure, data.impl().split, options, on_epoch));
  TrainedEmbeddings out;
  out.standard = std::move(trained.standard);
  out.finetuned = std::move(trained.finetuned);
  out.best_pretrain_epoch = trained.best_pretrain_epoch;
  out.best_finetune_epoch = trained.best_finetune_epoch;
  QUARRY_ASSIGN_OR_RETURN(out.standard_recall, EvaluateEmbeddings(data, out.standard));
  if (out.has_finetuned()) {
    QUARRY_ASSIGN_OR_RETURN(out.finetuned_recall, EvaluateEmbeddings(data, out.finetuned));
  }
  return out;
}

Status CheckStorable(const std::string& dir, const Dataset& data) {
  const Hierarchy& h = data.impl().hierarchy;
  for (size_t i = 0; i < h.size(); ++i) {
    std::string why;
    if (!IsValidUtf8(h.keys[i]) || !IsRunSafeId(h.keys[i], &why)) {
      return Status::InvalidArgument("node '" + h.keys[i] + "' cannot be a document id: " + (why.empty() ? "invalid UTF-8" : why));
    }
    if (!IsValidUtf8(h.labels[i]) || !IsValidUtf8(h.glosses[i])) {
      return Status::InvalidArgument("node '" + h.keys[i] + "': its name or gloss is not valid UTF-8");
    }
  }
  if (!std::filesystem::exists(dir + "/CURRENT")) return Status::Ok();
  QUARRY_ASSIGN_OR_RETURN(auto c, Collection::Open(dir, {.read_only = true}));
  QUARRY_ASSIGN_OR_RETURN(auto stats, c->Stats());
  uint64_t nodes = 0;
  for (const auto& key : h.keys) {
    QUARRY_ASSIGN_OR_RETURN(auto doc, c->Get(key));
    nodes += doc.has_value();
  }
  if (nodes != stats.n_docs) {
    return Status::FailedPrecondition(dir + " holds " + std::to_string(stats.n_docs - nodes) +
                                      " documents that are not nodes of this hierarchy; hr train replaces the "
                                      "collection it stores into, so give it a directory of its own");
  }
  return Status::Ok();
}

Status StoreHierarchy(const std::string& dir, const Dataset& data, const Embeddings& e) {
  namespace fs = std::filesystem;
  const Hierarchy& h = data.impl().hierarchy;
  if (e.n_nodes() != h.size() || e.queries.size() != e.docs.size()) {
    return Status::InvalidArgument("embeddings of " + std::to_string(e.n_nodes()) + " nodes for a hierarchy of " +
                                   std::to_string(h.size()));
  }
  QUARRY_RETURN_IF_ERROR(CheckStorable(dir, data));
  const std::string staging = fs::path(dir).lexically_normal().string() + ".hr-new";
  std::error_code ec;
  fs::remove_all(staging, ec);
  {
    QUARRY_ASSIGN_OR_RETURN(auto c, Collection::Open(staging, {.create_if_missing = true}));
    constexpr size_t kBatch = 5000;
    for (size_t begin = 0; begin < h.size(); begin += kBatch) {
      std::vector<Document> docs;
      std::vector<std::string> ids;
      const size_t end = std::min(h.size(), begin + kBatch);
      for (size_t i = begin; i < end; ++i) {
        docs.push_back({h.keys[i], h.labels[i], h.glosses[i], ""});
        ids.push_back(h.keys[i]);
      }
      QUARRY_RETURN_IF_ERROR(c->Upsert(docs));
      auto rows = [&](const std::vector<float>& table) {
        return std::vector<float>(table.begin() + static_cast<std::ptrdiff_t>(begin * e.dim),
                                  table.begin() + static_cast<std::ptrdiff_t>(end * e.dim));
      };
      QUARRY_RETURN_IF_ERROR(c->dense().PutVectors(ids, rows(e.docs), e.dim, VectorTable::kDocuments));
      QUARRY_RETURN_IF_ERROR(c->dense().PutVectors(ids, rows(e.queries), e.dim, VectorTable::kQueries));
    }
    QUARRY_RETURN_IF_ERROR(c->dense().Build({.factory = "Flat"}).status());
    QUARRY_RETURN_IF_ERROR(c->WaitForMerges());
  }
  QUARRY_RETURN_IF_ERROR(SyncDirectory(staging));
  if (!fs::exists(dir)) {
    if (std::rename(staging.c_str(), dir.c_str()) != 0) return Status::IOError(dir + ": " + std::strerror(errno));
  } else {
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
      return Status::IOError(dir + ": exchanging it with " + staging + ": " + std::strerror(errno));
    }
    fs::remove_all(staging, ec);  // now the old collection
  }
  const std::string parent = fs::path(dir).lexically_normal().parent_path().string();
  return SyncDirectory(parent.empty() ? "." : parent);
}

Result<Embeddings> LoadEmbeddings(const Collection& c, const Dataset& data) {
  const Hierarchy& h = data.impl().hierarchy;
  Embeddings e;
  for (size_t i = 0; i < h.size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(auto d, c.dense().GetVector(h.keys[i], VectorTable::kDocuments));
    QUARRY_ASSIGN_OR_RETURN(auto q, c.dense().GetVector(h.keys[i], VectorTable::kQueries));
    if (i == 0 && !q) {
      QUARRY_ASSIGN_OR_RETURN(auto doc, c.Get(h.keys[i]));
      if (!doc) {
        return Status::FailedPrecondition(c.dir() + " does not hold this hierarchy (no node '" + h.keys[i] +
                                          "'): write it with `quarry hr train " + c.dir() + "` and the same source");
      }
    }
    if (!d || !q) return Status::NotFound(c.dir() + ": node '" + h.keys[i] + "' has no stored embeddings (run `quarry hr train DIR`)");
    if (e.dim == 0) e.dim = d->size();
    if (d->size() != e.dim || q->size() != e.dim) return Status::Corruption(c.dir() + ": embeddings of differing dims");
    e.docs.insert(e.docs.end(), d->begin(), d->end());
    e.queries.insert(e.queries.end(), q->begin(), q->end());
  }
  return e;
}

Result<NodeNeighbours> SearchNode(const Collection& c, std::string_view node, size_t k) {
  if (k == 0) return Status::InvalidArgument("k must be at least 1");
  NodeNeighbours out;
  out.node = std::string(node);
  QUARRY_ASSIGN_OR_RETURN(auto q, c.dense().GetVector(node, VectorTable::kQueries));
  if (!q) {  // not a node name: the best BM25 match of the words is the node
    QUARRY_ASSIGN_OR_RETURN(auto hits, c.Search(node, {.k = 1, .hydrate = false}));
    if (hits.empty()) return Status::NotFound("no node matches '" + std::string(node) + "'");
    out.node = hits[0].id;
    QUARRY_ASSIGN_OR_RETURN(q, c.dense().GetVector(out.node, VectorTable::kQueries));
    // In a stored hierarchy every document is a node with a query embedding.
    if (!q) {
      return Status::FailedPrecondition(c.dir() + " holds no hierarchy (its documents have no query embeddings): "
                                        "write one with `quarry hr train " + c.dir() + "`");
    }
  }
  QUARRY_ASSIGN_OR_RETURN(auto doc, c.Get(out.node));
  if (doc) out.label = doc->title;
  QUARRY_ASSIGN_OR_RETURN(out.hits, c.SearchVector(*q, {.k = k}));
  return out;
}

}  // namespace quarry::hr
