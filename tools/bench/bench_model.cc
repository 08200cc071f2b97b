// bench_model: prompt-processing speed of the Llama forward on a random-weight checkpoint of a
// realistic shape that this program writes itself (default: 0.42B, hidden 896, 24 layers, 14/2 heads,
// FFN 4864, vocab 32768 -- the shape of the llama.cpp peer figures in ../shared/DESIGN.md).
// Usage: bench_model WORK_DIR [f32|bf16|bf16-dot] [tokens...]   (writes WORK_DIR's checkpoint if absent;
//        bf16-dot: the bf16 checkpoint with bf16-rounded activations, LoadOptions::bf16_activations)
//        bench_model FILE.gguf LABEL [tokens...]        (a GGUF file, e.g. tools/bench/llama_cpp_peer.py's;
//        a LABEL ending in -INT8, e.g. Q8_0-INT8: LoadOptions::quantized_activations)
// Prints one JSON object per line (tools/bench/llama_cpp_peer.py prints the same records for llama.cpp):
//   {"system":"quarry","dtype":D,"tokens":N,"last_argmax":I,"last_max":X}     the last token's top logit
//   {"system":"quarry","dtype":D,"tokens":N,"threads":T,"median_s":S,"tok_per_s":R}   per (tokens, threads)
//   {"system":"quarry","dtype":D,"file_MiB":F,"weights_MiB":W,"peak_rss_MiB":P}   peak RSS against the weights
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

#include <nlohmann/json.hpp>

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
  // LABEL ending in -INT8 (a GGUF file's Q8_0, Q4_0, ...): 8-bit activations and int8 dot products
  // (LoadOptions::quantized_activations), llama.cpp's arithmetic.
  const bool int8 = label.size() > 5 && label.substr(label.size() - 5) == "-INT8";
  auto model = LlamaModel::Load(path, {.bf16_activations = bf16_dot, .quantized_activations = int8});
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
          std::printf("%s\n", nlohmann::json({{"system", "quarry"}, {"dtype", label}, {"tokens", n},
                                              {"last_argmax", top - out->logits.begin()}, {"last_max", *top}})
                                .dump()
                                .c_str());
        }
      }
      std::sort(runs.begin(), runs.end());
      std::printf("%s\n", nlohmann::json({{"system", "quarry"}, {"dtype", label}, {"tokens", n}, {"threads", threads},
                                          {"median_s", runs[1]}, {"tok_per_s", n / runs[1]}})
                            .dump()
                            .c_str());
      std::fflush(stdout);
    }
  }
  std::printf("%s\n", nlohmann::json({{"system", "quarry"}, {"dtype", label}, {"file_MiB", file_mib},
                                      {"weights_MiB", weight_mib}, {"peak_rss_MiB", PeakRssMiB()}})
                        .dump()
                        .c_str());
  return 0;
}
