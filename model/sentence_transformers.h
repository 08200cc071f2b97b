// What a sentence-transformers model directory says about how it embeds text, read from the files
// that library writes (SentenceTransformer.save):
//   modules.json                         the pipeline: Transformer, then Pooling, then optionally Normalize
//   sentence_bert_config.json            max_seq_length (tokens, special tokens included), do_lower_case
//   <pooling path>/config.json           pooling_mode_cls_token / _mean_tokens / _lasttoken
//   config_sentence_transformers.json    prompts ("query", "document"/"passage"), prepended to the text
// A directory without modules.json is a plain Hugging Face checkpoint: every field stays unset and the
// caller's defaults apply.
#pragma once

#include <optional>
#include <string>

#include "quarry/status.h"

namespace quarry::model {

enum class PoolingMode { kCls, kMean, kLastToken };

struct SentenceTransformerConfig {
  bool present = false;          // modules.json exists
  std::string transformer_dir;   // where config.json and the weights are (the model dir, or e.g. 0_Transformer/)
  std::optional<PoolingMode> pooling;
  std::optional<bool> normalize;  // set when modules.json exists: whether a Normalize module follows pooling
  size_t max_seq_length = 0;      // 0: not given
  bool lower_case = false;        // sentence_bert_config.json do_lower_case
  std::optional<std::string> query_prompt, document_prompt;
};

// Reads `dir`. Unsupported modules (Dense projections, max or weighted-mean pooling, several pooling
// modes at once) are InvalidArgument naming the file and the module or field, never silently ignored.
Result<SentenceTransformerConfig> LoadSentenceTransformerConfig(const std::string& dir);

}  // namespace quarry::model
