// The collection store: one RocksDB database per collection directory, with a column family per kind
// of record (docs/formats.md). Knows documents and bytes; nothing about analyzers or models.
//
// Thread safety: all methods are safe to call concurrently (RocksDB is); a Snapshot pins one
// consistent view for any number of reads. Only one process may open a collection read-write;
// any number may open it read-only (a RocksDB secondary instance, which keeps every table file it
// reads open, so the writer's compactions never pull a file from under it), each seeing the state as
// of its open (or of its last CatchUp).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quarry/document.h"
#include "quarry/status.h"

namespace quarry {

// Column family names (docs/formats.md).
inline constexpr char kCfMeta[] = "meta";  // settings and counters
inline constexpr char kCfDocs[] = "docs";  // BE32 doc number -> document record
inline constexpr char kCfIds[] = "ids";    // external id -> BE32 doc number

// Meta keys owned by the store.
inline constexpr char kMetaFormatVersion[] = "format_version";  // varint
inline constexpr char kMetaNextDocNum[] = "next_docnum";        // BE32: doc numbers are never reused
inline constexpr char kMetaNumDocs[] = "n_docs";                // BE64: live documents
inline constexpr uint32_t kFormatVersion = 2;  // 1: postings in RocksDB (upgraded on a writable open)

using DocNum = uint32_t;

struct StoreOptions {
  // Default: false. Create the directory and database when absent.
  bool create_if_missing = false;
  // Default: false. Open without taking the write lock; sees the state as of the open.
  bool read_only = false;
  // Default: none. Column families of index modules, created when missing.
  std::vector<std::string> extra_column_families;
  // Default: none. Merge operators of column families that use them (by family name).
  std::map<std::string, std::shared_ptr<rocksdb::MergeOperator>> merge_operators;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }
  // The format version found at open (kFormatVersion for a new collection).
  uint32_t format_version() const { return format_version_; }
  // Drops the families an older format used and records kFormatVersion (writable opens only).
  Status UpgradeFormat(const std::vector<std::string>& obsolete_families);
  // Read-only opens: moves the view to the writer's latest committed state.
  Status CatchUp();
  rocksdb::DB* db() const { return db_.get(); }
  // nullptr when the family was neither present nor requested.
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) const;

  // A consistent read view; released on destruction. Must not outlive the Store.
  class Snapshot {
   public:
    explicit Snapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
    ~Snapshot() { db_->ReleaseSnapshot(snap_); }
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    const rocksdb::Snapshot* get() const { return snap_; }

   private:
    rocksdb::DB* db_;
    const rocksdb::Snapshot* snap_;
  };
  // Null for read-only opens, whose view only moves on CatchUp (a secondary instance has no snapshots).
  std::unique_ptr<Snapshot> TakeSnapshot() const {
    return read_only_ ? nullptr : std::make_unique<Snapshot>(db_.get());
  }

  // Point reads; `snap` may be null (latest state). A missing key gives std::nullopt.
  Result<std::optional<std::string>> Get(const std::string& cf_name, std::string_view key,
                                         const Snapshot* snap = nullptr) const;
  Result<std::optional<DocNum>> LookupDocNum(std::string_view id, const Snapshot* snap = nullptr) const;
  Result<std::optional<Document>> GetDocument(DocNum docnum, const Snapshot* snap = nullptr) const;
  Result<uint64_t> GetCounter(std::string_view meta_key, const Snapshot* snap = nullptr) const;

  // Visits every live document in doc-number order; stops early when `fn` returns false.
  Status ForEachDocument(const std::function<bool(DocNum, const Document&)>& fn,
                         const Snapshot* snap = nullptr) const;

  // Applies a batch atomically. `sync` makes it durable against power loss, not only process death.
  // IOError "disk full" (and nothing written) when the disk has less than kDiskReserve free beyond
  // three times the batch.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  static constexpr uint64_t kDiskReserve = 8 << 20;

  // Bytes of all files in the collection directory.
  uint64_t DiskBytes() const;

 private:
  Store() = default;
  std::string dir_;
  std::string secondary_dir_;  // read-only opens: the secondary instance's own directory (removed at close)
  bool read_only_ = false;
  uint32_t format_version_ = kFormatVersion;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cfs_;
};

rocksdb::ReadOptions ReadOptionsAt(const Store::Snapshot* snap);
// Converts a RocksDB status, prefixing `context`.
Status FromRocks(const rocksdb::Status& s, const std::string& context);

}  // namespace quarry
