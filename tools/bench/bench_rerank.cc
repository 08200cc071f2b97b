// bench_rerank: BlockRank scoring time against the number of documents, block-sparse attention beside
// the same tokens and layers under full causal attention, on a random-weight checkpoint this program writes
// (default shape: hidden 1024, 16 layers, 16 query / 4 KV heads, FFN 2816, vocab 32768; scoring layer 8).
// Then the decoupled mode: documents encoded once (their cost per document), and the query-time cost of
// scoring N cached documents (the tokenizer comes from ../shared/fixtures/tiny-mistral when present).
// Each decoupled query time is printed beside two lower bounds measured in the same run: the query
// block's floating-point work at the rate Linear reaches on the query block's shape, and the cached
// keys and values it must read at the machine's memory bandwidth (a parallel sum over 512 MiB).
// Usage: bench_rerank WORK_DIR [N...]   (documents of 128 tokens; default N = 10 20 50 100)
//        bench_rerank --mistral-7b WORK_DIR [N [--bf16-activations]]   Mistral-7B's shape (hidden 4096, 32 layers, 32/8 heads,
//          FFN 14336, vocab 32768), bf16, only the 21 layers up to scoring layer 20 written and loaded:
//          one query over N (default 20) documents, uncached and decoupled, and the peak RSS.
#include <sys/resource.h>
#include <tbb/parallel_reduce.h>
#include <tbb/blocked_range.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <vector>

#include "model/kernels.h"

#include "model/sp_tokenizer.h"
#include "rerank/blockrank.h"
#include "tools/bench/random_checkpoint.h"

using namespace quarry;

namespace {

BlockRankPrompt RandomPrompt(size_t n_docs, size_t doc_tokens, int vocab, std::mt19937& rng) {
  BlockRankPrompt p;
  auto block = [&](size_t n) {
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = 5 + static_cast<int32_t>(rng() % (vocab - 5));
    return ids;
  };
  p.blocks.push_back(block(96));  // instruction
  for (size_t i = 0; i < n_docs; ++i) p.blocks.push_back(block(doc_tokens));
  p.blocks.push_back(block(48));  // query block
  for (size_t b = 0; b < p.blocks.size(); ++b) {
    const int32_t start = b == 0 ? 0 : (b + 1 == p.blocks.size() ? 16384 : 96);
    std::vector<int32_t> pos(p.blocks[b].size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = start + static_cast<int32_t>(i);
    p.positions.push_back(pos);
  }
  return p;
}

double Seconds(const BlockRanker& ranker, const BlockRankPrompt& prompt) {
  std::vector<double> runs;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = ranker.ScorePrompt(prompt);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
  }
  std::sort(runs.begin(), runs.end());
  return runs[1];
}

// The peer: the same tokens through the same layers 0..L-1 with full causal attention (what an LLM
// reranker without block structure pays), on the same kernels.
double CausalSeconds(const model::LlamaModel& model, const BlockRankPrompt& prompt, int scoring_layer) {
  std::vector<int32_t> ids, positions;
  for (size_t b = 0; b < prompt.blocks.size(); ++b) {
    ids.insert(ids.end(), prompt.blocks[b].begin(), prompt.blocks[b].end());
    positions.insert(positions.end(), prompt.positions[b].begin(), prompt.positions[b].end());
  }
  model::ForwardOptions options;
  options.n_layers = scoring_layer;
  options.logits = false;
  std::vector<double> runs;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = model.Forward(ids, positions, model::AttentionMask::Causal(), options);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!out.ok()) std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
  }
  std::sort(runs.begin(), runs.end());
  return runs[1];
}

double MedianSeconds(int reps, const std::function<void()>& run) {
  std::vector<double> runs;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

// Bytes per second of a parallel sum over 512 MiB (every page touched once before timing).
double MemoryBandwidth() {
  std::vector<float> buf(size_t{128} << 20, 1.0f);
  volatile double sink = 0;
  const double s = MedianSeconds(5, [&] {
    sink = tbb::parallel_reduce(
        tbb::blocked_range<size_t>(0, buf.size(), size_t{1} << 16), 0.0,
        [&](const tbb::blocked_range<size_t>& r, double acc) {
          float lanes[16] = {};  // independent sums, so the loop is limited by loads, not by add latency
          size_t i = r.begin();
          for (; i + 16 <= r.end(); i += 16) {
            for (int j = 0; j < 16; ++j) lanes[j] += buf[i + j];
          }
          for (; i < r.end(); ++i) lanes[0] += buf[i];
          for (float lane : lanes) acc += lane;
          return acc;
        },
        std::plus<double>());
  });
  return static_cast<double>(buf.size() * sizeof(float)) / s;
}

// FLOP/s of Linear on an n-row activation and the model's widest projection (hidden -> FFN).
double GemmRate(size_t n, size_t in, size_t out) {
  std::vector<float> x(n * in, 0.01f), w(out * in, 0.02f), y(n * out);
  model::Linear(x.data(), n, in, w.data(), out, nullptr, y.data());
  const double s = MedianSeconds(7, [&] { model::Linear(x.data(), n, in, w.data(), out, nullptr, y.data()); });
  return 2.0 * n * in * out / s;
}

// The work a decoupled query cannot avoid: the query block (n tokens) through layers 0..L-1 (its
// projections and MLP, its attention over the instruction's and documents' `context` cached tokens and
// causally over itself), then at layer L the signal tokens' queries and their logits over the document
// and instruction keys. The minimal bytes: every cached key and value read once, as float32.
struct QueryBound {
  double flops = 0, bytes = 0;
};
QueryBound DecoupledQueryBound(const model::TransformerConfig& c, const BlockRankOptions& o, size_t n, size_t context) {
  const double H = c.hidden_size, F = c.intermediate_size, heads = c.n_heads, d = c.head_dim;
  const double q_dim = heads * d, kv_dim = c.n_kv_heads * d, L = o.scoring_layer;
  const double signal = std::min<double>(o.n_signal, n);
  const double linears = 2 * n * (H * (q_dim + 2 * kv_dim) + q_dim * H + 3 * H * F);
  const double attention = 4 * heads * d * (n * context + n * (n + 1) / 2);
  QueryBound b;
  b.flops = L * (linears + attention) + 2 * signal * H * q_dim + 2 * signal * heads * d * context;
  b.bytes = context * kv_dim * sizeof(float) * (2 * L + 1);
  return b;
}

double PeakRssGiB() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1048576.0;
}

// Documents of about 128 tokens (the tiny-mistral tokenizer), distinct per i.
std::string DocumentText(size_t i) {
  std::string text;
  for (int w = 0; w < 120; ++w) text += "word" + std::to_string((i * 131 + w * 17) % 997) + " ";
  return text;
}

// Encodes documents 0..n-1 (DocumentText) into `caches`; returns the seconds it took, or -1.
double EncodeDocuments(const BlockRanker& ranker, size_t n, std::vector<BlockCache>* caches) {
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    auto c = ranker.EncodeDocument({"", DocumentText(i), "doc" + std::to_string(i)});
    if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), -1;
    caches->push_back(std::move(*c));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The 7B run: the weights are the released BlockRank checkpoint's shape in bf16, used in place, so
// the peak RSS is about the 21 layers' bytes (~9.4 GiB) plus activations and caches.
int Mistral7b(const std::string& dir, size_t n, bool bf16_activations) {
  const bench::Shape shape{.hidden = 4096, .layers = 32, .heads = 32, .kv_heads = 8, .ffn = 14336, .vocab = 32768,
                           .written_layers = 21};
  if (auto s = bench::WriteRandomCheckpointIfAbsent(dir, shape, model::DType::kBF16); !s.ok()) {
    return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  }
  BlockRankOptions options;  // the authors' settings: scoring layer 20
  options.bf16_activations = bf16_activations;
  const model::LoadOptions load{.n_layers = options.scoring_layer + 1, .head = false,
                                .bf16_activations = bf16_activations};
  {
    auto model = model::LlamaModel::Load(dir, load);
    if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
    std::printf("mistral-7b shape, bf16, %d layers loaded: %.2f GiB of weights; %s\n", (*model)->n_loaded_layers(),
                (*model)->weight_bytes() / 1073741824.0,
                !bf16_activations ? "exact float32 arithmetic"
                : model::HasBf16Dot() ? "bf16 activations (AVX512-BF16)" : "bf16 activations (OpenBLAS)");
    BlockRanker ranker(std::move(*model), nullptr, options);
    std::mt19937 rng(3);
    const BlockRankPrompt prompt = RandomPrompt(n, 128, shape.vocab, rng);
    size_t tokens = 0;
    for (const auto& b : prompt.blocks) tokens += b.size();
    const auto t0 = std::chrono::steady_clock::now();
    auto scores = ranker.ScorePrompt(prompt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!scores.ok()) return std::fprintf(stderr, "%s\n", scores.status().ToString().c_str()), 1;
    std::printf("uncached: %zu documents, %zu tokens: %.1f s per query; peak RSS %.2f GiB\n", n, tokens, s, PeakRssGiB());
    std::fflush(stdout);
  }
  const std::string tokenizer_path = std::string(QUARRY_SHARED_DIR) + "/fixtures/tiny-mistral/tokenizer.model";
  auto tokenizer = model::SentencePieceTokenizer::Load(tokenizer_path);
  if (!tokenizer.ok()) return std::printf("decoupled mode: skipped (%s)\n", tokenizer.status().ToString().c_str()), 0;
  auto model = model::LlamaModel::Load(dir, load);
  if (!model.ok()) return 1;
  BlockRankOptions decoupled = options;
  decoupled.query_in_instruction = false;
  decoupled.max_block_length = 128;
  BlockRanker ranker(std::move(*model), std::move(*tokenizer), decoupled);
  std::vector<BlockCache> caches;
  size_t cached_tokens = 0;
  const double encode_s = EncodeDocuments(ranker, n, &caches);
  if (encode_s < 0) return 1;
  std::vector<const BlockCache*> ptrs;
  for (const auto& c : caches) ptrs.push_back(&c), cached_tokens += c.n_tokens;
  const double per_token = (2.0 * options.scoring_layer + 1) * shape.kv_heads * (shape.hidden / shape.heads) * 4;
  bool ok = true;
  const double query_s = MedianSeconds(3, [&] { ok = ok && ranker.ScoreCached("what is the effect of the word", ptrs).ok(); });
  if (!ok) return std::fprintf(stderr, "decoupled scoring failed\n"), 1;
  std::printf("decoupled: %zu documents encoded once in %.1f s (%.2f s each; caches %.0f MiB); %.2f s per query; "
              "peak RSS %.2f GiB\n", n, encode_s, encode_s / n, cached_tokens * per_token / 1048576.0, query_s, PeakRssGiB());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--mistral-7b") {
    const bool bf16 = argc > 4 && std::string(argv[4]) == "--bf16-activations";
    return Mistral7b(argv[2], argc > 3 ? std::stoul(argv[3]) : 20, bf16);
  }
  if (argc < 2) return std::fprintf(stderr, "usage: bench_rerank WORK_DIR [N...] | bench_rerank --mistral-7b WORK_DIR [N [--bf16-activations]]\n"), 2;
  const std::string dir = argv[1];
  std::vector<size_t> ns;
  for (int i = 2; i < argc; ++i) ns.push_back(std::stoul(argv[i]));
  if (ns.empty()) ns = {10, 20, 50, 100};
  bench::Shape shape{.hidden = 1024, .layers = 16, .heads = 16, .kv_heads = 4, .ffn = 2816, .vocab = 32768};
  if (auto s = bench::WriteRandomCheckpointIfAbsent(dir, shape, model::DType::kF32); !s.ok()) {
    return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  }
  auto model = model::LlamaModel::Load(dir);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  BlockRankOptions options;
  options.scoring_layer = 8;
  BlockRanker ranker(std::move(*model), nullptr, options);
  std::mt19937 rng(3);
  std::printf("%5s %8s %12s %12s %8s\n", "N", "tokens", "blockrank_s", "causal_s", "ratio");
  for (size_t n : ns) {
    const BlockRankPrompt prompt = RandomPrompt(n, 128, shape.vocab, rng);
    size_t tokens = 0;
    for (const auto& b : prompt.blocks) tokens += b.size();
    const double sparse = Seconds(ranker, prompt), causal = CausalSeconds(ranker.model(), prompt, options.scoring_layer);
    std::printf("%5zu %8zu %12.3f %12.3f %7.2fx\n", n, tokens, sparse, causal, causal / sparse);
    std::fflush(stdout);
  }

  const std::string tokenizer_path = std::string(QUARRY_SHARED_DIR) + "/fixtures/tiny-mistral/tokenizer.model";
  auto tokenizer = model::SentencePieceTokenizer::Load(tokenizer_path);
  if (!tokenizer.ok()) {
    std::printf("decoupled mode: skipped (%s)\n", tokenizer.status().ToString().c_str());
    return 0;
  }
  auto model2 = model::LlamaModel::Load(dir);
  if (!model2.ok()) return 1;
  BlockRankOptions decoupled = options;
  decoupled.query_in_instruction = false;
  decoupled.max_block_length = 128;
  BlockRanker cached_ranker(std::move(*model2), std::move(*tokenizer), decoupled);
  const size_t max_n = *std::max_element(ns.begin(), ns.end());
  std::vector<BlockCache> caches;
  const double encode_s = EncodeDocuments(cached_ranker, max_n, &caches);
  if (encode_s < 0) return 1;
  std::printf("decoupled: %zu documents encoded once in %.2f s (%.3f s per document)\n", max_n, encode_s, encode_s / max_n);
  const std::string query = "what is the effect of the word on the document";
  const BlockRankPrompt query_prompt = BuildBlockRankPrompt(cached_ranker.tokenizer(), query, {{"", "", ""}}, decoupled);
  const size_t query_tokens = query_prompt.blocks[query_prompt.query_block()].size();
  const size_t instruction_tokens = query_prompt.blocks.front().size();
  const double gemm = GemmRate(query_tokens, shape.hidden, shape.ffn), bandwidth = MemoryBandwidth();
  std::printf("query block %zu tokens, instruction %zu; Linear at %zux%zu->%zu: %.1f GFLOP/s; memory: %.1f GB/s\n",
              query_tokens, instruction_tokens, query_tokens, size_t(shape.hidden), size_t(shape.ffn), gemm / 1e9,
              bandwidth / 1e9);
  std::printf("%5s %10s %14s %8s %14s %8s %14s %9s\n", "N", "cached", "query_time_s", "GFLOP", "flop_bound_s", "MB",
              "bytes_bound_s", "time/bound");
  for (size_t n : ns) {
    std::vector<const BlockCache*> ptrs;
    size_t cached = instruction_tokens;
    for (size_t i = 0; i < n; ++i) ptrs.push_back(&caches[i]), cached += caches[i].n_tokens;
    bool ok = true;
    const double t = MedianSeconds(5, [&] {
      ok = ok && cached_ranker.ScoreCached(query, ptrs).ok();
    });
    if (!ok) return std::fprintf(stderr, "decoupled scoring failed\n"), 1;
    const QueryBound b = DecoupledQueryBound(cached_ranker.model().config(), decoupled, query_tokens, cached);
    const double flop_s = b.flops / gemm, bytes_s = b.bytes / bandwidth;
    std::printf("%5zu %10zu %14.3f %8.2f %14.3f %8.1f %14.4f %8.2fx\n", n, cached, t, b.flops / 1e9, flop_s,
                b.bytes / 1e6, bytes_s, t / std::max(flop_s, bytes_s));
    std::fflush(stdout);
  }
  return 0;
}
