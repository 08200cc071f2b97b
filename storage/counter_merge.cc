#include "storage/counter_merge.h"

#include <cstring>

namespace quarry {

namespace {

class CounterMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* out,
             rocksdb::Logger*) const override {
    const auto delta = DecodeCounter(std::string_view(value.data(), value.size()));
    if (!delta) return false;  // RocksDB then reports Corruption for the key
    uint64_t total = *delta;
    if (existing) {
      const auto base = DecodeCounter(std::string_view(existing->data(), existing->size()));
      if (!base) return false;
      total += *base;
    }
    *out = CounterDelta(static_cast<int64_t>(total));
    return true;
  }
  const char* Name() const override { return "quarry.counter_add"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewCounterMergeOperator() { return std::make_shared<CounterMergeOperator>(); }

std::string CounterDelta(int64_t delta) {
  const auto v = static_cast<uint64_t>(delta);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::optional<uint64_t> DecodeCounter(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(value[i]);
  return v;
}

}  // namespace quarry
