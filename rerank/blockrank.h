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
// Positions: block 0 at 0..L0-1; every document block starts at L0; the query block at 16384.
// Attention: block 0 causal; a document block sees block 0 and itself causally; the query block sees
// everything before it and itself causally. Cost is linear in the number of documents.
// Scores: at the scoring layer (0-based) take the pre-softmax logits of the last `n_signal` query-block
// tokens over the document tokens, softmax over all document tokens together, average over heads and
// signal tokens, sum per document. The forward stops there, computing queries for the signal tokens only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/llama.h"
#include "model/sp_tokenizer.h"
#include "quarry/options.h"
#include "quarry/status.h"

namespace quarry {

using BlockRankOptions = RerankOptions;  // include/quarry/options.h

struct BlockRankDocument {
  std::string title, text;
};

struct BlockRankPrompt {
  std::vector<std::string> pieces;              // texts, the "[" piece last (merged into the query block)
  std::vector<std::vector<int32_t>> piece_ids;  // each piece tokenized on its own
  std::vector<std::vector<int32_t>> blocks;     // ids per block after truncation
  std::vector<std::vector<int32_t>> positions;  // position ids per block
};

BlockRankPrompt BuildBlockRankPrompt(const model::SentencePieceTokenizer& tokenizer, const std::string& query,
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
  // `model_dir`: a Hugging Face Mistral/Llama checkpoint directory with tokenizer.model.
  static Result<std::unique_ptr<BlockRanker>> Load(const std::string& model_dir, const BlockRankOptions& options = {});
  BlockRanker(std::unique_ptr<model::LlamaModel> model, std::unique_ptr<model::SentencePieceTokenizer> tokenizer,
              BlockRankOptions options);

  // Scores every document for `query` (one pass, or windows; see docs/design.md).
  Result<std::vector<double>> Score(const std::string& query, const std::vector<BlockRankDocument>& docs) const;
  // One pass over an already built prompt, with the per-head logits. `dense_reference` (benchmarks)
  // computes attention densely with a mask instead of block-sparsely; the results are the same.
  Result<BlockRankScores> ScorePrompt(const BlockRankPrompt& prompt, bool dense_reference = false) const;

  const model::LlamaModel& model() const { return *model_; }
  const model::SentencePieceTokenizer& tokenizer() const { return *tokenizer_; }
  const BlockRankOptions& options() const { return options_; }

 private:
  std::unique_ptr<model::LlamaModel> model_;
  std::unique_ptr<model::SentencePieceTokenizer> tokenizer_;
  BlockRankOptions options_;
};

}  // namespace quarry
