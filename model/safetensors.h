// Memory-mapped safetensors checkpoints (one file, or shards listed by model.safetensors.index.json).
// Every tensor's name, dtype, shape and byte range is checked against its file before use; errors name
// the file and the tensor. Tensors stay in the mapping: nothing is read until it is used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quarry/status.h"

namespace quarry::model {

// The float dtypes weights are read from, and the others real checkpoints also carry (buffers such as
// BERT's int64 position_ids): those are checked like any tensor but cannot be read as weights.
enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };
const char* DTypeName(DType d);
size_t DTypeSize(DType d);

struct TensorView {
  std::string name;
  std::string file;  // where it lives, for error messages
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // inside the mapping; valid while the Checkpoint lives
  size_t n_elements() const;
};

class MappedFile;  // model/mapped_file.h

class Checkpoint {
 public:
  // `dir` holds model.safetensors, or model.safetensors.index.json and its shards.
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& dir);
  ~Checkpoint();

  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  // The tensor `name` with exactly `shape`; NotFound / InvalidArgument name the file and tensor.
  Result<const TensorView*> Get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Converts to float32 (bf16 and f16 widened exactly); another dtype is InvalidArgument.
  Result<std::vector<float>> GetF32(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  uint64_t mapped_bytes() const;

 private:
  Checkpoint() = default;
  Status AddFile(const std::string& path);
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

float Bf16ToF32(uint16_t v);
float F16ToF32(uint16_t v);
uint16_t F32ToBf16(float f);  // round to nearest even (for writing checkpoints in benchmarks)
uint16_t F32ToF16(float f);   // round to nearest even; overflow to infinity

// Writes a safetensors file (benchmarks make random-weight checkpoints with it).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace quarry::model
