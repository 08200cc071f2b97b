#include "storage/store.h"

#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>

#include <filesystem>

#include "common/coding.h"
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
  if (!exists && !options.create_if_missing) {
    return Status::NotFound(dir + ": not a Quarry collection (run `quarry init " + dir + "`)");
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
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions(db_options));

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
    s = rocksdb::DB::OpenForReadOnly(db_options, dir, present, &handles, &raw);
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

  // Format version: written at creation, checked on every open.
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
    if (found != kFormatVersion) {
      return Status::FailedPrecondition(dir + ": collection format version " + std::to_string(found) +
                                        ", this build reads version " + std::to_string(kFormatVersion));
    }
  }
  return store;
}

Store::~Store() {
  if (!db_) return;
  for (auto& [name, h] : cfs_) db_->DestroyColumnFamilyHandle(h);
  if (!read_only_) db_->Close().PermitUncheckedError();
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
