// BlockRank ("Scalable In-context Ranking with Generative Models", Gupta et al. 2025): rank N
// candidates with one forward pass of an LLM whose attention is block-sparse, reading relevance from
// the attention of the last query tokens at a middle layer. No decoding.
//
// Prompt (the authors' evaluation pipeline, Mistral v3 chat rendering), one block per piece, each piece
// tokenized on its own and cut to its first H tokens (max_block_length rounded up to a multiple of 16):
//   block 0     "<s>[INST] You will be given a query ... answer the query.\nQuery: {q}\n\nDocuments:"
//   block 1+k   "\nID: {k} | CONTENT: {title text} | END ID: {k}"
//   last block  "\n\n====== Now let's start! ======\n...Query: {q}\nThe following document(s) can help
//                answer the query:[/INST] Final Answer: " followed by the ids of "["
// Models whose vocabulary has <|im_start|> (ChatML: SmolLM2, Qwen2) get the same text as one ChatML
// user turn: "<|im_start|>user\n" in place of "<s>[INST] " and "<|im_end|>\n<|im_start|>assistant\n"
// in place of "[/INST] "; Gemma's (<start_of_turn>) as "<bos><start_of_turn>user\n" ...
// "<end_of_turn>\n<start_of_turn>model\n".
// Positions: block 0 at 0..L0-1; every document block starts at L0; the query block at 16384 (with a
// sliding-window model, e.g. Gemma 3, right after the longest document block, and the whole prompt must
// lie within the window, so that the window never hides a key the attention below lets a row see).
// Attention: block 0 causal; a document block sees block 0 and itself causally; the query block sees
// everything before it and itself causally. Cost is linear in the number of documents.
// Calibration (options.calibrate): a last block, the query block's text with the query "N/A", at the
// query block's positions, seeing every block but the query block; each document's score is the real
// query's minus the content-free one's (for windows, the difference of the anchored log scores).
// Scores: at the scoring layer (0-based) take the pre-softmax logits of the last `n_signal` query-block
// tokens over the document tokens, softmax over all document tokens together, average over heads and
// signal tokens, sum per document. The forward stops there, computing queries for the signal tokens only.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "quarry/options.h"
#include "quarry/status.h"

namespace quarry {

using BlockRankOptions = RerankOptions;  // include/quarry/options.h

struct BlockRankDocument {
  std::string title, text;
  // The document's stable id. Decoupled mode labels the block with it ("ID: <id>") instead of the
  // candidate's rank, so that the block, and its cache, do not depend on the query.
  std::string id;
};

// Query-independent keys and values of one block (decoupled mode): for layers 0..L-1 the keys (after
// RoPE) and values of its tokens, and at the scoring layer L the keys only. [n_tokens, kv_heads * d].
struct BlockCache {
  size_t n_tokens = 0;
  std::vector<std::vector<float>> k;  // L + 1 layers
  std::vector<std::vector<float>> v;  // L layers
};
// Storage encoding of a cache: f32 (exact) or f16 (half the bytes; error measured in tests).
enum class CacheDType : uint8_t { kF32 = 0, kF16 = 1 };
std::string EncodeBlockCache(const BlockCache& cache, CacheDType dtype);
Result<BlockCache> DecodeBlockCache(std::string_view bytes);

struct BlockRankPrompt {
  // Texts: instruction, documents, query, "[" (merged into the query block), and when calibrated the
  // content-free query (its own "[" merged).
  std::vector<std::string> pieces;
  std::vector<std::vector<int32_t>> piece_ids;  // each piece tokenized on its own
  std::vector<std::vector<int32_t>> blocks;     // ids per block after truncation
  std::vector<std::vector<int32_t>> positions;  // position ids per block
  bool calibrated = false;                      // the last block is the content-free query
  size_t n_docs() const { return blocks.size() - 2 - (calibrated ? 1 : 0); }
  size_t query_block() const { return blocks.size() - 1 - (calibrated ? 1 : 0); }
};

BlockRankPrompt BuildBlockRankPrompt(const model::Tokenizer& tokenizer, const std::string& query,
                                     const std::vector<BlockRankDocument>& docs, const BlockRankOptions& options);

// The block structure of `prompt` as an attention mask over the concatenated blocks.
model::AttentionMask BlockRankMask(const BlockRankPrompt& prompt);

struct BlockRankScores {
  std::vector<double> doc_scores;                      // per document, summing to 1 within a pass
  // Per document, comparable across passes: log of the mean over heads and signal tokens of the
  // document's attention mass relative to the instruction block's (docs/design.md, "Windows").
  std::vector<double> anchored_scores;
  std::vector<std::vector<std::vector<float>>> logits;  // [head][signal token][document token]
};

class BlockRanker {
 public:
  // `model_dir`: a Hugging Face Mistral/Llama/Qwen2 checkpoint directory with tokenizer.model, or a
  // GGUF file (architectures llama, qwen2, gemma3) with its own tokenizer.
  static Result<std::unique_ptr<BlockRanker>> Load(const std::string& model_dir, const BlockRankOptions& options = {});
  BlockRanker(std::unique_ptr<model::LlamaModel> model, std::unique_ptr<model::Tokenizer> tokenizer,
              BlockRankOptions options);

  // Scores every document for `query` (one pass, or windows; see docs/design.md).
  Result<std::vector<double>> Score(const std::string& query, const std::vector<BlockRankDocument>& docs) const;
  // One pass over an already built prompt, with the per-head logits. `dense_reference` (benchmarks)
  // computes attention densely with a mask instead of block-sparsely; the results are the same.
  Result<BlockRankScores> ScorePrompt(const BlockRankPrompt& prompt, bool dense_reference = false) const;
  // The scores at each of `layers` (ascending, each at most the loaded scoring layer) from one pass:
  // what ScorePrompt gives with scoring_layer set to each, at the cost of the deepest.
  Result<std::vector<BlockRankScores>> ScorePromptAtLayers(const BlockRankPrompt& prompt, const std::vector<int>& layers,
                                                           bool dense_reference = false) const;
  // Score() at each of `layers` from one pass per window.
  Result<std::vector<std::vector<double>>> ScoreAtLayers(const std::string& query, const std::vector<BlockRankDocument>& docs,
                                                         const std::vector<int>& layers) const;

  // Decoupled mode (query_in_instruction = false) only. The cache of a document's block: it sees the
  // instruction block, whose cache is computed once per ranker.
  Result<BlockCache> EncodeDocument(const BlockRankDocument& doc) const;
  // Whether a decoded cache has the layers and matrix shapes this model and options make.
  bool CacheFits(const BlockCache& cache) const;
  // Scores with cached document blocks: only the query block is computed. Same scores as Score() of
  // the same documents in decoupled mode (within float rounding).
  Result<std::vector<double>> ScoreCached(const std::string& query, const std::vector<const BlockCache*>& docs) const;
  // ScoreCached at each of `layers` (ascending, each at most the scoring layer) from one pass of the
  // query block: what ScoreAtLayers gives for the same documents in decoupled mode.
  Result<std::vector<std::vector<double>>> ScoreCachedAtLayers(const std::string& query,
                                                               const std::vector<const BlockCache*>& docs,
                                                               const std::vector<int>& layers) const;

  const model::LlamaModel& model() const { return *model_; }
  const model::Tokenizer& tokenizer() const { return *tokenizer_; }
  const BlockRankOptions& options() const { return options_; }

 private:
  std::unique_ptr<model::LlamaModel> model_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  BlockRankOptions options_;
  mutable std::mutex instruction_mu_;
  mutable std::shared_ptr<const BlockCache> instruction_cache_;  // decoupled mode, computed once

  Result<std::shared_ptr<const BlockCache>> InstructionCache() const;
  // InvalidArgument unless `layers` ascend within 0..scoring layer.
  Status CheckLayers(const std::vector<int>& layers) const;
  // For a model with a sliding window: InvalidArgument when some position of the prompt is beyond it,
  // where the window would hide keys the block-sparse attention lets a row see.
  Status CheckWindow(const BlockRankPrompt& prompt) const;
  // Runs one block (`ids` at `positions`) through the layers; its rows see every block of `context`
  // fully and themselves causally. Without `hidden`: returns the block's cache (layers 0..L-1, and the
  // keys at L). With it: runs only up to the deepest of `hidden_layers` (ascending) and stores there,
  // for each, the rows' hidden state entering that layer; returns an empty cache (a query block needs
  // none).
  BlockCache RunBlock(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions,
                      const std::vector<const BlockCache*>& context, const std::vector<int>& hidden_layers = {},
                      std::vector<std::vector<float>>* hidden = nullptr) const;
  // One pass of ScoreCachedAtLayers over `docs`.
  Result<std::vector<BlockRankScores>> ScoreCachedPass(const std::string& query, const std::vector<const BlockCache*>& docs,
                                                       const std::vector<int>& layers) const;
};

}  // namespace quarry
