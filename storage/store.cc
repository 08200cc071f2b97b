#include "storage/store.h"

#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>

#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>

#include <filesystem>

#include "common/coding.h"
#include "common/strings.h"
#include "storage/document_codec.h"

namespace quarry {

namespace fs = std::filesystem;

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::Ok();
  const std::string msg = context + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

rocksdb::ReadOptions ReadOptionsAt(const Store::Snapshot* snap) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap ? snap->get() : nullptr;
  ro.verify_checksums = true;
  return ro;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->read_only_ = options.read_only;

  const bool exists = fs::exists(fs::path(dir) / "CURRENT");
  if (!exists) {
    // A database whose CURRENT file was lost must not be replaced by a new, empty one.
    std::error_code ec;
    uint64_t db_files = 0;
    std::string example;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("MANIFEST-") || name.ends_with(".sst") || name.ends_with(".log") ||
          name.starts_with("OPTIONS-")) {
        ++db_files;
        if (example.empty() || name.starts_with("MANIFEST-")) example = name;
      }
    }
    if (db_files > 0) {
      return Status::Corruption(dir + ": the RocksDB CURRENT file is missing but the directory holds " +
                                std::to_string(db_files) + " database files (e.g. " + example +
                                "); refusing to create a new collection over them. Restore CURRENT: it holds the "
                                "name of the newest MANIFEST-* file and a newline");
    }
  }
  if (!exists && !options.create_if_missing) {
    if (!fs::is_directory(dir)) {
      // Most often a typo: name a sibling collection that is close, rather than suggest creating one.
      const fs::path path = fs::path(dir).lexically_normal();
      const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
      std::vector<std::string> siblings;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(parent, ec)) {
        if (fs::exists(entry.path() / "CURRENT", ec)) siblings.push_back(entry.path().filename().string());
      }
      if (const std::string near = ClosestMatch(path.filename().string(), siblings); !near.empty()) {
        return Status::NotFound(dir + ": no such collection directory (did you mean " + (parent / near).string() + "?)");
      }
      return Status::NotFound(dir + ": no such collection directory (create one with `quarry init " + dir +
                              "` or `quarry ingest " + dir + " ...`)");
    }
    return Status::NotFound(dir + ": not a Quarry collection (create one with `quarry init " + dir +
                            "` or `quarry ingest " + dir + " ...`)");
  }
  if (!exists && options.read_only) return Status::NotFound(dir + ": collection does not exist");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError(dir + ": " + ec.message());

  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.compression = rocksdb::kLZ4Compression;
  db_options.bottommost_compression = rocksdb::kZSTD;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 3;
  // The small families (meta, counters) are written by every batch but rarely fill a memtable; without
  // a cap on the WAL they would pin every log file written since they were last flushed.
  db_options.max_total_wal_size = 64 << 20;
  // A record damaged in the middle of the WAL is an error at open, never a silent truncation; an
  // incomplete last record (a crash during a write, never acknowledged) is dropped.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName, kCfMeta, kCfDocs, kCfIds};
  for (const auto& n : options.extra_column_families) names.push_back(n);
  if (exists) {  // every existing family must be opened too
    std::vector<std::string> existing;
    auto s = rocksdb::DB::ListColumnFamilies(db_options, dir, &existing);
    if (!s.ok()) return FromRocks(s, dir);
    for (const auto& n : existing) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) {
    rocksdb::ColumnFamilyOptions cf_options(db_options);
    if (auto it = options.merge_operators.find(n); it != options.merge_operators.end()) cf_options.merge_operator = it->second;
    descriptors.emplace_back(n, cf_options);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.read_only) {
    std::vector<rocksdb::ColumnFamilyDescriptor> present;
    std::vector<std::string> existing;
    s = rocksdb::DB::ListColumnFamilies(db_options, dir, &existing);
    if (!s.ok()) return FromRocks(s, dir);
    for (const auto& d : descriptors) {
      if (std::find(existing.begin(), existing.end(), d.name) != existing.end()) present.push_back(d);
    }
    // A secondary instance opens every table file up front (max_open_files -1) and keeps it open, so a
    // concurrent writer's compactions cannot remove a file it has yet to read.
    db_options.max_open_files = -1;
    // Its directory is named by this process's id, so that those of killed readers can be removed.
    std::error_code tmp_ec;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), tmp_ec)) {
      const std::string name = e.path().filename().string();
      unsigned long pid = 0;
      if (std::sscanf(name.c_str(), "quarry-reader-%lu-", &pid) == 1 && pid > 0 &&
          !fs::exists("/proc/" + std::to_string(pid), tmp_ec)) {
        fs::remove_all(e.path(), tmp_ec);
      }
    }
    std::string tmpl = (fs::temp_directory_path() / ("quarry-reader-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) return Status::IOError("cannot create a reader directory under " + fs::temp_directory_path().string());
    store->secondary_dir_ = tmpl;
    s = rocksdb::DB::OpenAsSecondary(db_options, dir, store->secondary_dir_, present, &handles, &raw);
  } else {
    s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw);
  }
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::FailedPrecondition(dir + ": collection is open for writing by another process (" +
                                        s.ToString() + ")");
    }
    return FromRocks(s, dir);
  }
  store->db_.reset(raw);
  for (auto* h : handles) store->cfs_[h->GetName()] = h;

  // Format version: written at creation, checked on every open. Version 1 is upgraded by a writable open.
  auto version = store->Get(kCfMeta, kMetaFormatVersion);
  if (!version.ok()) return version.status();
  if (!version->has_value()) {
    if (options.read_only) return Status::Corruption(dir + ": meta has no format_version");
    std::string v;
    PutVarint32(&v, kFormatVersion);
    rocksdb::WriteBatch batch;
    batch.Put(store->cf(kCfMeta), kMetaFormatVersion, v);
    QUARRY_RETURN_IF_ERROR(store->Write(&batch, /*sync=*/true));
  } else {
    std::string_view in = **version;
    uint32_t found;
    if (!GetVarint32(&in, &found)) return Status::Corruption(dir + ": bad format_version");
    if (found == 1 && options.read_only) {
      return Status::FailedPrecondition(dir + ": collection format version 1; open it for writing once (e.g. `quarry "
                                        "check " + dir + " --repair`) to upgrade it to version " +
                                        std::to_string(kFormatVersion));
    }
    if (found != kFormatVersion && found != 1) {
      return Status::FailedPrecondition(dir + ": collection format version " + std::to_string(found) +
                                        ", this build reads version " + std::to_string(kFormatVersion));
    }
    store->format_version_ = found;
  }
  return store;
}

Store::~Store() {
  if (db_) {
    if (!read_only_) {
      // Readers opened later then start from table files instead of replaying the WAL.
      std::vector<rocksdb::ColumnFamilyHandle*> all;
      for (auto& [name, h] : cfs_) all.push_back(h);
      db_->Flush(rocksdb::FlushOptions(), all).PermitUncheckedError();
    }
    for (auto& [name, h] : cfs_) db_->DestroyColumnFamilyHandle(h);
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
  if (!secondary_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(secondary_dir_, ec);
  }
}

Status Store::UpgradeFormat(const std::vector<std::string>& obsolete_families) {
  if (read_only_) return Status::FailedPrecondition(dir_ + ": opened read-only");
  for (const auto& name : obsolete_families) {
    auto it = cfs_.find(name);
    if (it == cfs_.end()) continue;
    QUARRY_RETURN_IF_ERROR(FromRocks(db_->DropColumnFamily(it->second), dir_ + ": drop " + name));
    db_->DestroyColumnFamilyHandle(it->second);
    cfs_.erase(it);
  }
  std::string v;
  PutVarint32(&v, kFormatVersion);
  rocksdb::WriteBatch batch;
  batch.Put(cf(kCfMeta), kMetaFormatVersion, v);
  QUARRY_RETURN_IF_ERROR(Write(&batch, /*sync=*/true));
  format_version_ = kFormatVersion;
  return Status::Ok();
}

Status Store::CatchUp() {
  if (!read_only_) return Status::Ok();
  return FromRocks(db_->TryCatchUpWithPrimary(), dir_ + ": catch up with the writer");
}

rocksdb::ColumnFamilyHandle* Store::cf(const std::string& name) const {
  auto it = cfs_.find(name);
  return it == cfs_.end() ? nullptr : it->second;
}

Result<std::optional<std::string>> Store::Get(const std::string& cf_name, std::string_view key,
                                              const Snapshot* snap) const {
  auto* h = cf(cf_name);
  if (!h) return std::optional<std::string>();  // family absent in a read-only open: nothing stored
  std::string value;
  auto s = db_->Get(ReadOptionsAt(snap), h, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, dir_ + ": read " + cf_name);
  return std::optional<std::string>(std::move(value));
}

Result<std::optional<DocNum>> Store::LookupDocNum(std::string_view id, const Snapshot* snap) const {
  QUARRY_ASSIGN_OR_RETURN(auto value, Get(kCfIds, id, snap));
  if (!value) return std::optional<DocNum>();
  if (value->size() != 4) return Status::Corruption(dir_ + ": ids entry for '" + std::string(id) + "'");
  return std::optional<DocNum>(DecodeFixed32BE(value->data()));
}

Result<std::optional<Document>> Store::GetDocument(DocNum docnum, const Snapshot* snap) const {
  QUARRY_ASSIGN_OR_RETURN(auto value, Get(kCfDocs, EncodeFixed32BE(docnum), snap));
  if (!value) return std::optional<Document>();
  Document doc;
  QUARRY_RETURN_IF_ERROR(DecodeDocument(*value, &doc).WithContext(dir_ + ": doc " + std::to_string(docnum)));
  return std::optional<Document>(std::move(doc));
}

Result<uint64_t> Store::GetCounter(std::string_view meta_key, const Snapshot* snap) const {
  QUARRY_ASSIGN_OR_RETURN(auto value, Get(kCfMeta, meta_key, snap));
  if (!value) return uint64_t{0};
  std::string_view in = *value;
  uint64_t v;
  if (!GetFixed64BE(&in, &v)) return Status::Corruption(dir_ + ": meta " + std::string(meta_key));
  return v;
}

Status Store::ForEachDocument(const std::function<bool(DocNum, const Document&)>& fn,
                              const Snapshot* snap) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadOptionsAt(snap), cf(kCfDocs)));
  Document doc;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 4) return Status::Corruption(dir_ + ": docs key of wrong size");
    const DocNum docnum = DecodeFixed32BE(it->key().data());
    QUARRY_RETURN_IF_ERROR(DecodeDocument(std::string_view(it->value().data(), it->value().size()), &doc)
                               .WithContext(dir_ + ": doc " + std::to_string(docnum)));
    if (!fn(docnum, doc)) break;
  }
  return FromRocks(it->status(), dir_ + ": scan docs");
}

Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  if (read_only_) return Status::FailedPrecondition(dir_ + ": opened read-only");
  // Debian's RocksDB is built with assertions, and a WAL append that hits a full disk aborts the process
  // in one of them; so a write is refused while it still fits, leaving room for the flushes after it.
  struct statvfs fs_stats;
  if (::statvfs(dir_.c_str(), &fs_stats) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(fs_stats.f_bavail) * fs_stats.f_frsize;
    const uint64_t needed = kDiskReserve + 3 * static_cast<uint64_t>(batch->GetDataSize());
    if (free_bytes < needed) {
      return Status::IOError(dir_ + ": disk full: " + std::to_string(free_bytes >> 20) + " MiB free, a write of " +
                             std::to_string(batch->GetDataSize() >> 10) + " KiB needs " + std::to_string(needed >> 20) +
                             " MiB (nothing was written)");
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), dir_ + ": write");
}

uint64_t Store::DiskBytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

}  // namespace quarry
