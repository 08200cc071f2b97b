// BlockRank in the pipeline: the top `depth` BM25 candidates are reordered by their in-context scores.
#include <algorithm>
#include <cmath>

#include "engine/collection_impl.h"

namespace quarry {

Status ApplyRerank(const Store& store, const BlockRanker& ranker, std::string_view query, std::vector<SearchHit>* hits) {
  const size_t depth = std::min(ranker.options().depth, hits->size());
  if (depth == 0) return Status::Ok();
  std::vector<BlockRankDocument> docs;
  for (size_t i = 0; i < depth; ++i) {
    QUARRY_ASSIGN_OR_RETURN(auto doc, store.GetDocument((*hits)[i].doc));
    if (!doc) docs.push_back({"", ""});  // deleted since the index was loaded: scored as empty
    else docs.push_back({doc->title, doc->text});
  }
  QUARRY_ASSIGN_OR_RETURN(auto scores, ranker.Score(std::string(query), docs));
  for (size_t i = 0; i < depth; ++i) {
    (*hits)[i].stages.rerank = scores[i];
    (*hits)[i].score = static_cast<float>(scores[i]);
  }
  std::stable_sort(hits->begin(), hits->begin() + depth,
                   [](const SearchHit& a, const SearchHit& b) { return a.stages.rerank > b.stages.rerank; });
  // The unreranked tail keeps its order, scored below the reranked head.
  float below = (*hits)[depth - 1].score;
  for (size_t i = depth; i < hits->size(); ++i) (*hits)[i].score = below -= 1e-3f;
  return Status::Ok();
}

}  // namespace quarry
