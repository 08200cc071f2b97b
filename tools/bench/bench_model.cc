// bench_model: prompt-processing speed of the Llama forward on a random-weight checkpoint of a
// realistic shape that this program writes itself (default: 0.42B, hidden 896, 24 layers, 14/2 heads,
// FFN 4864, vocab 32768 -- the shape of the llama.cpp peer figures in ../shared/DESIGN.md).
// Usage: bench_model WORK_DIR [f32|bf16|bf16-dot] [tokens...]   (writes WORK_DIR's checkpoint if absent;
//        bf16-dot: the bf16 checkpoint with bf16-rounded activations, LoadOptions::bf16_activations)
//        bench_model FILE.gguf LABEL [tokens...]        (a GGUF file, e.g. tools/bench/llama_cpp_peer.py's)
// Prints one line per (tokens, threads), then peak RSS against the bytes of the weights as loaded.
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
    std::fprintf(stderr, "usage: bench_model WORK_DIR [f32|bf16|bf16-dot] [tokens...] | bench_model FILE.gguf LABEL [tokens...]\n");
    return 2;
  }
  const std::string path = argv[1], label = argc > 2 ? argv[2] : "f32";
  const bool gguf = IsGgufFile(path);
  // bf16-dot: the bf16 checkpoint with bf16-rounded activations (LoadOptions::bf16_activations).
  const bool bf16_dot = label == "bf16-dot";
  const DType dtype = label == "bf16" || bf16_dot ? DType::kBF16 : DType::kF32;
  std::vector<size_t> lengths;
  for (int i = 3; i < argc; ++i) lengths.push_back(std::stoul(argv[i]));
  if (lengths.empty()) lengths = {128, 512};
  Shape shape;
  const std::string file = gguf ? path : path + "/model.safetensors";
  if (!gguf) {
    if (auto s = quarry::bench::WriteRandomCheckpointIfAbsent(path, shape, dtype); !s.ok()) {
      return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
    }
  }
  auto model = LlamaModel::Load(path, {.bf16_activations = bf16_dot});
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  const double weight_mib = (*model)->weight_bytes() / 1048576.0;
  const double file_mib = std::filesystem::file_size(file) / 1048576.0;
  const int vocab = (*model)->config().vocab_size;
  for (size_t n : lengths) {
    // The ids llama_cpp_peer.py feeds too (past its placeholder vocabulary's special and byte tokens),
    // so the last row's logits can be compared across systems.
    std::vector<int32_t> ids(n);
    for (size_t t = 0; t < n; ++t) ids[t] = static_cast<int32_t>(259 + (t * 7919) % (vocab - 259));
    for (int threads : {1, 2}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
      std::vector<double> runs;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        auto out = (*model)->Forward(ids, {}, AttentionMask::Causal(), {.logits = true});
        runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (!out.ok()) return 1;
        if (rep == 0 && threads == 1) {
          const auto top = std::max_element(out->logits.begin(), out->logits.end());
          std::printf("system=quarry dtype=%s tokens=%zu last_argmax=%td last_max=%.4f\n", label.c_str(), n,
                      top - out->logits.begin(), *top);
        }
      }
      std::sort(runs.begin(), runs.end());
      std::printf("system=quarry dtype=%s tokens=%zu threads=%d median_s=%.3f tok_per_s=%.1f\n", label.c_str(), n, threads,
                  runs[1], n / runs[1]);
      std::fflush(stdout);
    }
  }
  std::printf("system=quarry dtype=%s file_MiB=%.0f weights_MiB=%.0f peak_rss_MiB=%.0f\n", label.c_str(), file_mib, weight_mib,
              PeakRssMiB());
  return 0;
}
