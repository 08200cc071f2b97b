// Random-weight Llama checkpoints of a given shape, written by the benchmarks themselves.
#pragma once

#include <string>

#include "model/safetensors.h"

namespace quarry::bench {

struct Shape {
  int hidden = 896, layers = 24, heads = 14, kv_heads = 2, ffn = 4864, vocab = 32768;  // 0.42B llama
};

// Writes DIR/config.json and DIR/model.safetensors (normal(0, 0.02) weights, unit norms), seeded.
Status WriteRandomCheckpoint(const std::string& dir, const Shape& shape, model::DType dtype);

}  // namespace quarry::bench
