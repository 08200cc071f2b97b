// The reranker options shared by `quarry rerank`, `search`, `eval` and `shell`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "quarry/options.h"

namespace quarry::cli {

struct RerankFlags {
  std::string model;  // empty: no reranking
  RerankOptions options;
};

// --rerank-model, --rerank-depth, --scoring-layer, --max-block-length, --rerank-window,
// --query-in-instruction, --calibrate, --bf16-activations, --quantized-activations; `model_flag` names the model option
// (`quarry index` calls it "--rerank-cache").
inline void AddRerankFlags(CLI::App* cmd, RerankFlags* f, const std::string& model_flag = "--rerank-model") {
  cmd->add_option(model_flag, f->model, "BlockRank model: a Mistral/Llama checkpoint directory with tokenizer.model, or a GGUF file (llama, qwen2, gemma3)");
  cmd->add_option("--rerank-depth", f->options.depth, "candidates reranked per query")->capture_default_str();
  cmd->add_option("--scoring-layer", f->options.scoring_layer, "0-based layer whose attention gives the scores")
      ->capture_default_str();
  cmd->add_option("--max-block-length", f->options.max_block_length, "tokens kept per block (rounded up to 16)")
      ->capture_default_str();
  cmd->add_option("--rerank-window", f->options.window, "score at most this many candidates per pass (0: all)")
      ->capture_default_str();
  cmd->add_option("--query-in-instruction", f->options.query_in_instruction,
                  "put the query in the instruction block (true, as the released checkpoint was trained)")
      ->capture_default_str();
  cmd->add_flag("--calibrate", f->options.calibrate,
                "subtract the scores a content-free query (\"N/A\") gives each document (Chen et al. 2024)");
  cmd->add_flag("--bf16-activations", f->options.bf16_activations,
                "multiply bf16 weights by bf16-rounded activations (~1.7x faster on AVX512-BF16, not the float32 scores)");
  cmd->add_flag("--quantized-activations", f->options.quantized_activations,
                "multiply a GGUF file's Q8_0/Q5_0/Q5_1/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K weights by 8-bit activations (int8 dot "
                "products, as llama.cpp; ~3x faster on AVX512-VNNI, not the float32 scores)");
}

}  // namespace quarry::cli
