// Byte encodings shared by every on-disk format (docs/formats.md): LEB128 varints and big-endian
// fixed-width integers (big-endian so that RocksDB's bytewise key order is numeric order).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace quarry {

void PutVarint32(std::string* dst, uint32_t v);
void PutVarint64(std::string* dst, uint64_t v);
// Appends varint(len) followed by the bytes.
void PutLengthPrefixed(std::string* dst, std::string_view bytes);
void PutFixed32BE(std::string* dst, uint32_t v);
void PutFixed64BE(std::string* dst, uint64_t v);
std::string EncodeFixed32BE(uint32_t v);

// Decoders consume from the front of `in`; they return false (leaving `in` unspecified) when the
// input ends early or a varint is over-long.
bool GetVarint32(std::string_view* in, uint32_t* v);
bool GetVarint64(std::string_view* in, uint64_t* v);
bool GetLengthPrefixed(std::string_view* in, std::string_view* bytes);
bool GetFixed32BE(std::string_view* in, uint32_t* v);
bool GetFixed64BE(std::string_view* in, uint64_t* v);
uint32_t DecodeFixed32BE(const char* p);

// CRC-32C is left to RocksDB (block checksums); this is FNV-1a 64 for small self-checks.
uint64_t Fnv1a64(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace quarry
