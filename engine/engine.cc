#include "quarry/engine.h"

namespace quarry {

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& dir, const EngineOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(auto collection, Collection::Open(dir, {.read_only = options.read_only}));
  QUARRY_RETURN_IF_ERROR(collection->Preload());
  return std::make_unique<Engine>(std::move(collection));
}

Result<SearchResult> Engine::Search(std::string_view query, const SearchOptions& options) const {
  SearchResult result;
  QUARRY_ASSIGN_OR_RETURN(result.hits, collection_->Search(query, options, &result.timings));
  return result;
}

}  // namespace quarry
