// Engine: the query side of a collection, for applications that search.
//
//   auto engine = quarry::Engine::Open("scifact");            // read-only: no write lock taken
//   auto result = (*engine)->Search("statins and heart disease", {.k = 10});
//   for (const auto& hit : result->hits) std::cout << hit.id << ' ' << hit.score << '\n';
//
// Thread safety: Search may be called from any number of threads at once. A read-only engine sees the
// collection as it was when opened (RocksDB read-only open); open with read_only = false to share the
// collection with a writer in the same process and see each committed batch.
// Errors: Status/Result; no exception escapes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quarry/collection.h"

namespace quarry {

struct EngineOptions {
  // Default: true. Open without the write lock (any number of processes may search).
  bool read_only = true;
};

struct SearchResult {
  std::vector<SearchHit> hits;
  SearchTimings timings;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const std::string& dir, const EngineOptions& options = {});
  // Takes over an open collection (e.g. one the application also writes to).
  explicit Engine(std::unique_ptr<Collection> collection) : collection_(std::move(collection)) {}

  Result<SearchResult> Search(std::string_view query, const SearchOptions& options = {}) const;

  // The collection searched; owned by the engine, valid for its lifetime.
  Collection& collection() { return *collection_; }
  const Collection& collection() const { return *collection_; }

 private:
  std::unique_ptr<Collection> collection_;
};

}  // namespace quarry
