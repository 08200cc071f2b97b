// bench_rerank: BlockRank scoring time against the number of documents, block-sparse attention beside
// the same forward with dense masked attention, on a random-weight checkpoint this program writes
// (default shape: hidden 1024, 16 layers, 16 query / 4 KV heads, FFN 2816, vocab 32768; scoring layer 8).
// Then the decoupled mode: documents encoded once (their cost per document), and the query-time cost of
// scoring N cached documents (the tokenizer comes from ../shared/fixtures/tiny-mistral when present).
// Usage: bench_rerank WORK_DIR [N...]   (documents of 128 tokens; default N = 10 20 50 100)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

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

double Seconds(const BlockRanker& ranker, const BlockRankPrompt& prompt, bool dense) {
  std::vector<double> runs;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = ranker.ScorePrompt(prompt, dense);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
  }
  std::sort(runs.begin(), runs.end());
  return runs[1];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: bench_rerank WORK_DIR [N...]\n"), 2;
  const std::string dir = argv[1];
  std::vector<size_t> ns;
  for (int i = 2; i < argc; ++i) ns.push_back(std::stoul(argv[i]));
  if (ns.empty()) ns = {10, 20, 50, 100};
  bench::Shape shape{.hidden = 1024, .layers = 16, .heads = 16, .kv_heads = 4, .ffn = 2816, .vocab = 32768};
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    if (auto s = bench::WriteRandomCheckpoint(dir, shape, model::DType::kF32); !s.ok()) {
      return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
    }
  }
  auto model = model::LlamaModel::Load(dir);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  BlockRankOptions options;
  options.scoring_layer = 8;
  BlockRanker ranker(std::move(*model), nullptr, options);
  std::mt19937 rng(3);
  std::printf("%5s %8s %12s %12s %8s\n", "N", "tokens", "sparse_s", "dense_s", "ratio");
  for (size_t n : ns) {
    const BlockRankPrompt prompt = RandomPrompt(n, 128, shape.vocab, rng);
    size_t tokens = 0;
    for (const auto& b : prompt.blocks) tokens += b.size();
    const double sparse = Seconds(ranker, prompt, false), dense = Seconds(ranker, prompt, true);
    std::printf("%5zu %8zu %12.3f %12.3f %7.2fx\n", n, tokens, sparse, dense, dense / sparse);
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
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < max_n; ++i) {
    std::string text;
    for (int w = 0; w < 120; ++w) text += "word" + std::to_string((i * 131 + w * 17) % 997) + " ";
    auto c = cached_ranker.EncodeDocument({"", text, "doc" + std::to_string(i)});
    if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;
    caches.push_back(std::move(*c));
  }
  const double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("decoupled: %zu documents encoded once in %.2f s (%.3f s per document)\n", max_n, encode_s, encode_s / max_n);
  std::printf("%5s %14s\n", "N", "query_time_s");
  for (size_t n : ns) {
    std::vector<const BlockCache*> ptrs;
    for (size_t i = 0; i < n; ++i) ptrs.push_back(&caches[i]);
    std::vector<double> runs;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t1 = std::chrono::steady_clock::now();
      auto s = cached_ranker.ScoreCached("what is the effect of the word on the document", ptrs);
      runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
      if (!s.ok()) return 1;
    }
    std::sort(runs.begin(), runs.end());
    std::printf("%5zu %14.3f\n", n, runs[1]);
    std::fflush(stdout);
  }
  return 0;
}
