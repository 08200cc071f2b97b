// A RocksDB merge operator for counters: every value is an 8-byte little-endian uint64, and merging
// adds them (mod 2^64, so a delta of -n is written as 2^64 - n). Lets a write batch change a counter
// without reading it first.
#pragma once

#include <rocksdb/merge_operator.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace quarry {

std::shared_ptr<rocksdb::MergeOperator> NewCounterMergeOperator();
// The merge operand that adds `delta` (negative deltas wrap).
std::string CounterDelta(int64_t delta);
// A counter's value; nullopt when the bytes are not a counter.
std::optional<uint64_t> DecodeCounter(std::string_view value);

}  // namespace quarry
