// GGUF files (llama.cpp's checkpoint format, version 2 and 3), memory-mapped. Open() checks the whole
// header before anything is used: every metadata value's type and length, every tensor's type, shape
// and byte range (tensors laid out back to back at the file's alignment, as llama.cpp requires), so a
// truncated or lying file is an error naming the file and the key or tensor, never a crash.
// Tensor data stays in the mapping; ToF32 dequantizes one tensor (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) exactly as ggml's dequantize_row_* do.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quarry/status.h"

namespace quarry::model {

class MappedFile;

// ggml's type ids, as stored in the file.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kBF16 = 30,
};
// "Q4_K" etc.; "type N" for an id this reader does not know.
std::string GgmlTypeName(uint32_t type);

struct GgufValue {
  enum class Kind { kInt, kUint, kFloat, kBool, kString, kArray };
  Kind kind = Kind::kInt;
  uint32_t type = 0;  // the GGUF value type id (0..12); for arrays, the element type
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string s;
  // Arrays: strings, or numbers (integers in ints, floats in floats; booleans as 0/1 ints).
  std::vector<std::string> strings;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  size_t array_size = 0;
};

struct GgufTensor {
  std::string name;
  uint32_t type = 0;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous dimension
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  int64_t n_elements() const;
  // Outermost first, as safetensors and PyTorch write shapes: ne reversed.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  ~GgufFile();
  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }

  bool Has(const std::string& key) const { return metadata_.count(key) > 0; }
  const GgufValue* Find(const std::string& key) const;
  // Typed access; a missing key is NotFound, a value of another type InvalidArgument, both naming
  // the file and the key. Integers of any width convert when the value fits.
  Result<std::string> GetString(const std::string& key) const;
  Result<int64_t> GetInt(const std::string& key) const;
  Result<double> GetFloat(const std::string& key) const;  // float32/64, or an integer
  Result<bool> GetBool(const std::string& key) const;
  Result<const std::vector<std::string>*> GetStrings(const std::string& key) const;
  Result<const std::vector<int64_t>*> GetInts(const std::string& key) const;
  Result<const std::vector<double>*> GetFloats(const std::string& key) const;  // an array of float32/64
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }

  bool HasTensor(const std::string& name) const { return tensors_.count(name) > 0; }
  // The tensor `name` with exactly `shape` (outermost first); errors name the file and tensor.
  Result<const GgufTensor*> Get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Dequantizes into float32; types without a dequantizer here are InvalidArgument.
  Result<std::vector<float>> ToF32(const GgufTensor& t) const;
  const std::map<std::string, GgufTensor>& tensors() const { return tensors_; }
  uint64_t file_bytes() const;
  // Drops the resident pages of a part of the file read once and copied (MappedFile::ReleasePages).
  void ReleasePages(const void* p, size_t n) const;

 private:
  GgufFile() = default;
  Status Parse();
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::map<std::string, GgufTensor> tensors_;
};

// Dequantizes `n` values (a whole number of blocks) of ggml type `type` from `src` into `dst`.
// Returns false for a type without a dequantizer.
bool DequantizeRow(uint32_t type, const uint8_t* src, float* dst, int64_t n);
// Elements per block and bytes per block of a known type (0, 0 when unknown).
struct GgmlBlock {
  int64_t elements = 0;
  size_t bytes = 0;
};
GgmlBlock GgmlBlockOf(uint32_t type);
// A quantized ggml type read as 32-element blocks of unsigned quants (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1,
// and the K-quants' sub-blocks: Q4_K, Q5_K, Q6_K): bytes per ggml block (32 elements, or a
// 256-element super-block), the quants' offset, whether they fit 4 bits, whether blocks have a min,
// whether they have a scale per 16 elements (Q6_K).
struct QuantBlock {
  GgmlType type;
  int64_t elements;
  size_t bytes;
  int offset;
  bool four_bit, has_min, half_scales;
};
bool QuantBlockOf(uint32_t type, QuantBlock* block);  // false for another type
// The 32-element block `b` of a row stored as `f` (ggml's layouts) as unsigned quants u[32], the
// scales of its two halves of 16 (equal but for Q6_K) and a min: element k's value is
// scale[k / 16] * (u[k] - offset) + min, which is how DequantizeRow computes it.
void UnpackQuantBlock(const QuantBlock& f, const uint8_t* row, size_t b, uint8_t* u, float* scale, float* min);

// True when `path` names a regular file that starts with the GGUF magic.
bool IsGgufFile(const std::string& path);

}  // namespace quarry::model
