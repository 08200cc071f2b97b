// A weight tensor as the forward reads it: float32 (a view into the mapped checkpoint when stored as
// F32, otherwise converted once, F16 and BF16 widening exactly, and owned); or, for matrices, used in
// place from the mapping: bfloat16 (`keep_bf16`), or a GGUF matrix in its own ggml blocks (F16 and
// quantized types). Linear widens panels of those as it goes, so results equal the float32 path's on
// the widened (dequantized) weights, for the memory of the stored form. A matrix of 32-element blocks
// (Q8_0, Q5_0, Q5_1, Q4_0, Q4_1; the sub-blocks of Q4_K, Q5_K and Q6_K) may instead be repacked for
// int8 dot products with quantized activations (`int8`: LinearInt8, llama.cpp's arithmetic).
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/int8_gemm.h"
#include "model/kernels.h"
#include "model/safetensors.h"

namespace quarry::model {

struct Weight {
  std::vector<float> owned;
  std::vector<uint16_t> owned_bf16;  // a bf16 tensor that had to be copied (misaligned, or rows permuted)
  const float* data = nullptr;       // float32 elements; null when the weight is bf16
  const uint16_t* bf16 = nullptr;    // bfloat16 elements; null when the weight is float32
  // A GGUF matrix kept in its ggml blocks (DequantizeRow's types): rows of row_bytes each.
  const uint8_t* blocks = nullptr;
  uint32_t ggml_type = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> owned_blocks;  // blocks that had to be copied (rows permuted)
  size_t size = 0;
  // A bf16 matrix multiplied by bf16-rounded activations (LinearBf16Dot); by default, by float32
  // activations with exact float32 results.
  bool bf16_activations = false;
  // A matrix repacked for LinearInt8 (LoadOptions::quantized_activations); `blocks` is then null (the
  // forward never reads the GGUF blocks again), and so is every other form.
  std::shared_ptr<const Int8Panels> int8;

  // `keep_bf16`: a BF16 tensor stays BF16 (only Linear, RowToF32 and bytes() may read it then).
  static Result<Weight> Load(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape,
                             bool keep_bf16 = false);
  bool empty() const { return data == nullptr && bf16 == nullptr && blocks == nullptr && !int8; }
  // The same tensor without ownership (a tied head reads the embeddings' storage; embeddings are never
  // repacked, so `int8` is not carried).
  Weight View() const {
    Weight w;
    w.data = data, w.bf16 = bf16, w.blocks = blocks, w.ggml_type = ggml_type, w.row_bytes = row_bytes;
    w.size = size, w.bf16_activations = bf16_activations;
    return w;
  }
  bool SameStorage(const Weight& o) const {
    return data == o.data && bf16 == o.bf16 && blocks == o.blocks && int8 == o.int8;
  }
  // Bytes of the elements as the forward reads them (ggml blocks, 2 per bf16 element, 4 per float32).
  size_t bytes() const {
    if (int8) return int8->bytes();
    if (blocks) {
      const GgmlBlock block = GgmlBlockOf(ggml_type);
      return size / block.elements * block.bytes;
    }
    return size * (bf16 ? sizeof(uint16_t) : sizeof(float));
  }
  // Bytes this weight holds beyond the mapping (0 for a view).
  size_t owned_bytes() const {
    return owned.size() * sizeof(float) + owned_bf16.size() * sizeof(uint16_t) + owned_blocks.size() +
           (int8 ? int8->bytes() : 0);
  }
  // Row `row` of a [rows, cols] matrix as float32 (not for a repacked `int8` matrix).
  void RowToF32(size_t row, size_t cols, float* out) const {
    if (blocks) {
      DequantizeRow(ggml_type, blocks + row * row_bytes, out, static_cast<int64_t>(cols));
    } else if (bf16) {
      Bf16RowsToF32(bf16 + row * cols, cols, out);
    } else {
      std::memcpy(out, data + row * cols, cols * sizeof(float));
    }
  }
};

// Y[n, out] = X[n, in] * W[out, in]^T (+ bias[out]) for either storage of W (kernels.h).
inline void Linear(const float* x, size_t n, size_t in, const Weight& w, size_t out, const float* bias, float* y) {
  if (w.int8) {
    LinearInt8(x, n, in, *w.int8, out, bias, y);
  } else if (w.bf16 && w.bf16_activations) {
    LinearBf16Dot(x, n, in, w.bf16, out, bias, y);
  } else if (w.bf16) {
    LinearBf16(x, n, in, w.bf16, out, bias, y);
  } else if (w.blocks) {
    LinearWidened(x, n, in, out, bias, y, [&](size_t first, size_t rows, float* dst) {
      for (size_t r = 0; r < rows; ++r) w.RowToF32(first + r, in, dst + r * in);
    });
  } else {
    Linear(x, n, in, w.data, out, bias, y);
  }
}

inline Result<Weight> Weight::Load(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape,
                                   bool keep_bf16) {
  QUARRY_ASSIGN_OR_RETURN(const TensorView* t, ckpt.Get(name, shape));
  Weight w;
  w.size = t->n_elements();
  if (t->dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
    w.data = static_cast<const float*>(t->data);
  } else if (t->dtype == DType::kBF16 && keep_bf16) {
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(uint16_t) == 0) {
      w.bf16 = static_cast<const uint16_t*>(t->data);
    } else {
      w.owned_bf16.resize(w.size);
      std::memcpy(w.owned_bf16.data(), t->data, w.size * sizeof(uint16_t));
      w.bf16 = w.owned_bf16.data();
    }
  } else {
    QUARRY_ASSIGN_OR_RETURN(w.owned, ckpt.GetF32(name, shape));
    w.data = w.owned.data();
  }
  return w;
}

}  // namespace quarry::model
