// bench_model: prompt-processing speed of the Llama forward on a random-weight checkpoint of a
// realistic shape that this program writes itself (default: 0.42B, hidden 896, 24 layers, 14/2 heads,
// FFN 4864, vocab 32768 -- the shape of the llama.cpp peer figures in ../shared/DESIGN.md).
// Usage: bench_model WORK_DIR [f32|bf16] [tokens...]   prints one line per (tokens, threads).
#include <sys/resource.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/kernels.h"
#include "model/llama.h"
#include "tools/bench/random_checkpoint.h"

using namespace quarry::model;
using quarry::bench::Shape;

namespace {

double PeakRssMiB() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model WORK_DIR [f32|bf16] [tokens...]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const DType dtype = argc > 2 && std::string(argv[2]) == "bf16" ? DType::kBF16 : DType::kF32;
  std::vector<size_t> lengths;
  for (int i = 3; i < argc; ++i) lengths.push_back(std::stoul(argv[i]));
  if (lengths.empty()) lengths = {128, 512};
  Shape shape;
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    if (auto s = quarry::bench::WriteRandomCheckpoint(dir, shape, dtype); !s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  }
  auto model = LlamaModel::Load(dir);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  const double weight_mib = (*model)->weight_bytes() / 1048576.0;
  const double file_mib = std::filesystem::file_size(dir + "/model.safetensors") / 1048576.0;
  std::mt19937 rng(2);
  for (size_t n : lengths) {
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % shape.vocab);
    for (int threads : {1, 2}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
      std::vector<double> runs;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        auto out = (*model)->Forward(ids, {}, AttentionMask::Causal(), {.logits = true});
        runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (!out.ok()) return 1;
      }
      std::sort(runs.begin(), runs.end());
      std::printf("dtype=%s tokens=%zu threads=%d median_s=%.3f tok_per_s=%.1f\n", DTypeName(dtype), n, threads,
                  runs[1], n / runs[1]);
      std::fflush(stdout);
    }
  }
  std::printf("dtype=%s file_MiB=%.0f f32_weights_MiB=%.0f peak_rss_MiB=%.0f\n", DTypeName(dtype), file_mib, weight_mib,
              PeakRssMiB());
  return 0;
}
