// Options structs of the public API. Every field has an in-class default, stated on its `Default:` line.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace quarry {

struct OpenOptions {
  // Default: false. Create the collection when the directory holds none.
  bool create_if_missing = false;
  // Default: false. Read-only: no write lock, so any number of processes may read while one writes;
  // the collection is seen as it was when opened.
  bool read_only = false;
};

enum class InputFormat {
  kBeir,     // corpus.jsonl: {"_id", "title", "text", "metadata"}
  kMsMarco,  // collection.tsv: pid<TAB>text
  kJsonl     // JSON lines with the field names below
};

struct ReaderOptions {
  // Default: kBeir.
  InputFormat format = InputFormat::kBeir;
  // Default: "id". Field names used by kJsonl (kBeir always reads _id/title/text/metadata).
  std::string id_field = "id";
  // Default: "title". An absent title reads as "".
  std::string title_field = "title";
  // Default: "text". Must be present in every line.
  std::string text_field = "text";
  // Default: "metadata". Any JSON value, stored as compact JSON.
  std::string metadata_field = "metadata";
  // Default: 1 MiB. A longer document (title + text + metadata bytes) is bad input.
  uint64_t max_doc_bytes = 1 << 20;
};

struct IngestBatchInfo {
  uint64_t batch_index;   // 0-based
  uint64_t n_docs;        // documents in this batch
  uint64_t total_docs;    // documents committed by this ingest so far
  uint64_t last_line;     // the input line through which everything is committed
};

struct IngestOptions {
  // Default: 1000. Documents per atomic write batch.
  uint64_t batch_docs = 1000;
  // Default: false. Skip bad lines (counted, and listed in `report_path`) instead of stopping.
  bool skip_invalid = false;
  // Default: "" (no report). Where skipped lines are listed, one "file:line: reason" per line.
  std::string report_path;
  // Default: true. fsync each batch, so an acknowledged batch survives power loss too.
  bool sync = true;
  // Default: false. Draw a progress line (rate, ETA) on stderr when it is a terminal.
  bool progress = false;
  // Default: none. Called after each batch is committed (acknowledged).
  std::function<void(const IngestBatchInfo&)> on_batch;
};

// ResMem: corrects ranking scores with a k-nearest-neighbour memory of training residuals
// (rerank/resmem.h gives the formulas).
// How ResMem finds the training queries nearest to a query.
enum class ResMemNeighbours {
  kBm25,   // BM25 between the query texts
  kDense,  // inner product of their embeddings by the collection's dense encoder (stored in the memory)
};

struct ResMemOptions {
  // Default: 10. Neighbouring training queries consulted.
  size_t k = 10;
  // Default: 1. Softmax temperature over neighbour similarities (BM25 scores, or inner products of unit
  // embeddings, whose scale is ~100 times smaller: tune it).
  float sigma = 1.0f;
  // Default: 1. Calibration temperature over a candidate list's scores.
  float temperature = 1.0f;
  // Default: 1. Weight of the correction (0 turns it off).
  float lambda = 1.0f;
  // Default: 100. Candidates corrected per query; the rest of the list follows unchanged.
  size_t depth = 100;
  // Default: kBm25.
  ResMemNeighbours neighbours = ResMemNeighbours::kBm25;
};

// BlockRank in-context reranking with a Mistral/Llama checkpoint (rerank/blockrank.h).
struct RerankOptions {
  // Default: 20 (of Mistral-7B's 32). 0-based layer whose attention gives the scores.
  int scoring_layer = 20;
  // Default: 2. Last query-block tokens whose attention is read.
  int n_signal = 2;
  // Default: 384, as in the authors' evaluation; rounded up to a multiple of 16.
  size_t max_block_length = 384;
  // Default: 16384. Position of the query block's first token; 0: right after the longest document
  // block (where it goes for models with a sliding window, e.g. Gemma 3, so that the window never hides
  // a block the query must see).
  int32_t query_position = 16384;
  // Default: 0 (every candidate in one pass). More candidates are scored in windows of this size.
  size_t window = 0;
  // Default: true. The instruction block holds the query, as the released checkpoint was trained.
  bool query_in_instruction = true;
  // Default: false. Calibrate as Chen et al. 2024 ("Attention in Large Language Models Yields Efficient
  // Zero-Shot Re-Rankers") do: subtract from each document's score the score a content-free query
  // ("N/A") gives it. The content-free query is one more query block in the same pass, seeing what the
  // real one sees but not it (a few dozen tokens more).
  bool calibrate = false;
  // Default: false. Multiply the model's BF16 matrices by activations rounded to bf16, as llama.cpp
  // computes BF16 (AVX512-BF16 dot products: about 1.7x the speed; CPUs without them get the same
  // products through OpenBLAS, no faster): scores no longer equal to the float32 forward's (see
  // docs/design.md, Kernels).
  bool bf16_activations = false;
  // Default: false. Multiply a GGUF model's Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K matrices by
  // activations quantized to 8 bits per 32 values (int8 dot products on AVX512-VNNI or AVX2, as
  // llama.cpp computes them; where the CPU has neither, the float32 path runs): about 3x the speed of
  // those matrices' products on AVX512-VNNI, scores within the activations' rounding of the float32
  // ones (docs/design.md, Kernels).
  bool quantized_activations = false;
  // Default: 100. Candidates reranked per query; the rest of the list follows unchanged.
  size_t depth = 100;
};

// Which first stage answers a search.
enum class RetrievalMode {
  kBm25,    // the lexical index
  kDense,   // the dense index (needs the collection's encoder, see DenseIndexOptions)
  kHybrid,  // both, fused (SearchOptions::fusion)
};
enum class Fusion {
  kRrf,     // reciprocal rank fusion: sum over lists of 1 / (rrf_k + rank)
  kLinear,  // each list's scores min-max normalised over its top fusion_depth, then alpha*dense + (1-alpha)*bm25
};

struct DenseIndexOptions {
  // Default: "Flat". Any FAISS factory string: "Flat", "HNSW32", "IVF1024,Flat", "IVF4096,PQ32", "IVF1024,SQ8";
  // or "SOAR<lists>[,lambda=<x>]", Quarry's IVF with SOAR spilling (inner product only).
  std::string factory = "Flat";
  // Default: true. Inner product (false: squared L2).
  bool inner_product = true;
  // Default: "" (vectors were imported with PutVectors). A BERT- or Llama-family checkpoint directory
  // that embeds documents now and queries at search time.
  std::string encoder;
  // Unset options follow the encoder: a sentence-transformers directory's prompts, Pooling and
  // Normalize modules and max_seq_length, else the defaults named here. Stored unset, so they keep
  // following the model.
  // Default: the model's "query" / "document" prompt, else "". Text prepended before encoding.
  std::optional<std::string> query_prefix, document_prefix;
  // Default: "" (the model's Pooling module; else "cls" for BERT-family, "last" for Llama-family).
  // "cls" (first row), "mean" (mean of the token rows) or "last" (last row).
  std::string pooling;
  // Default: whether the model has a Normalize module, else true. L2-normalise the embeddings.
  std::optional<bool> normalize;
  // Default: 0 (the model's max_seq_length, else 512). Tokens per text, special tokens included.
  size_t max_length = 0;
  // Default: 0 (FAISS's default). IVF lists visited per query.
  size_t nprobe = 0;
  // Default: 0 (FAISS's default). HNSW search candidate list.
  size_t ef_search = 0;
  // Default: 100000. Vectors (a seeded sample) that train IVF/PQ indexes.
  size_t train_sample = 100000;
  // Default: 0 (the larger of 4,096 and a 128th of the index). Vectors written since the index file
  // (searched exactly from memory meanwhile) before the writer folds them into a new file.
  size_t max_unindexed = 0;
};

struct SearchOptions {
  // Default: 10. Number of hits.
  size_t k = 10;
  // Default: false. Score every posting instead of MaxScore pruning (same results; for checking).
  bool exhaustive = false;
  // Default: true. Fill in each hit's title and text from the store.
  bool hydrate = true;
  // Default: false. Correct the top candidates with the collection's ResMem memory (Collection::resmem().Build).
  bool resmem = false;
  // Default: false. Rerank the top candidates with the reranker given to Collection::rerank().Load.
  bool rerank = false;
  // Default: kBm25.
  RetrievalMode mode = RetrievalMode::kBm25;
  // Default: kRrf. How kHybrid fuses the BM25 and dense lists.
  Fusion fusion = Fusion::kRrf;
  // Default: 60. RRF's rank offset.
  size_t rrf_k = 60;
  // Default: 0.5. Weight of the dense list in kLinear fusion.
  float alpha = 0.5f;
  // Default: 100. Candidates taken from each list before fusion.
  size_t fusion_depth = 100;
};

}  // namespace quarry
