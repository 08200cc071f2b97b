// bench_rerank: BlockRank scoring time against the number of documents, block-sparse attention beside
// the same forward with dense masked attention, on a random-weight checkpoint this program writes
// (default shape: hidden 1024, 16 layers, 16 query / 4 KV heads, FFN 2816, vocab 32768; scoring layer 8).
// Usage: bench_rerank WORK_DIR [N...]   (documents of 128 tokens; default N = 10 20 50 100)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

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
  return 0;
}
