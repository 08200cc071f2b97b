// Random-weight Llama checkpoints of a given shape, written by the benchmarks themselves.
#pragma once

#include <string>

#include "model/safetensors.h"

namespace quarry::bench {

struct Shape {
  int hidden = 896, layers = 24, heads = 14, kv_heads = 2, ffn = 4864, vocab = 32768;  // 0.42B llama
  // Default: -1 (all). Write only the embeddings and the first `written_layers` layers (no final norm,
  // no head): enough for a partial load (LoadOptions::n_layers), as BlockRank's.
  int written_layers = -1;
};

// Writes DIR/config.json and DIR/model.safetensors (normal(0, 0.02) weights, unit norms), seeded.
Status WriteRandomCheckpoint(const std::string& dir, const Shape& shape, model::DType dtype);
// The same unless DIR/model.safetensors exists, in a child process, so that the writer's buffers
// (the whole checkpoint) do not count in the caller's peak RSS.
Status WriteRandomCheckpointIfAbsent(const std::string& dir, const Shape& shape, model::DType dtype);

}  // namespace quarry::bench
