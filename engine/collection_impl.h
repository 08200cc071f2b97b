// Collection::Impl: the state behind the public Collection (engine-internal).
#pragma once

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "index/lexical/lexical_index.h"
#include "quarry/collection.h"
#include "storage/store.h"

namespace quarry {

class Collection::Impl {
 public:
  std::unique_ptr<Store> store;

  // --- writer state (guarded by write_mu) ---
  std::mutex write_mu;
  std::unique_ptr<LexicalWriter> lexical_writer;  // null when read-only
  uint64_t next_docnum = 0, n_docs = 0;           // committed values

  // Applies `docs` as one atomic batch. `on_replace` counts replaced ids.
  Status ApplyUpserts(const std::vector<Document>& docs, uint64_t* n_replaced, bool sync);

  // --- reader state ---
  std::atomic<uint64_t> generation{0};  // bumped after every committed write
  mutable std::mutex index_mu;
  mutable std::shared_ptr<const LexicalIndex> lexical;  // guarded by index_mu
  mutable uint64_t lexical_generation = UINT64_MAX;     // guarded by index_mu
  // The lexical index of the latest committed state (reloaded after writes).
  Result<std::shared_ptr<const LexicalIndex>> CurrentLexicalIndex() const;
};

// Column families every collection opens besides the store's own.
std::vector<std::string> IndexColumnFamilies();

}  // namespace quarry
