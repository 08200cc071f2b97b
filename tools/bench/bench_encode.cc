// bench_encode: documents/s of a real dual encoder over a BEIR corpus's first N documents (title + " " +
// text, as `quarry index --encoder` embeds them), in batches, at the given max lengths and thread counts.
// Usage: bench_encode MODEL_DIR CORPUS.jsonl [--docs N] [--batch B] [--lengths 256,512] [--threads 1,2]
//                     [--passes P]
// Prints one JSON line per (length, threads): the median of P passes.
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/dense/dual_encoder.h"
#include "model/kernels.h"

namespace {

std::vector<size_t> List(const std::string& text) {
  std::vector<size_t> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(std::stoul(text.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "bench_encode: %s\n", message.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Die("usage: bench_encode MODEL_DIR CORPUS.jsonl [--docs N] [--batch B] [--lengths L,..] [--threads T,..] [--passes P]");
  const std::string model_dir = argv[1], corpus = argv[2];
  size_t n_docs = 1000, batch = 32, passes = 3;
  std::vector<size_t> lengths = {256, 512}, threads = {1, 2};
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--docs") n_docs = std::stoul(value);
    else if (flag == "--batch") batch = std::stoul(value);
    else if (flag == "--passes") passes = std::stoul(value);
    else if (flag == "--lengths") lengths = List(value);
    else if (flag == "--threads") threads = List(value);
    else Die("unknown flag " + flag);
  }
  std::ifstream in(corpus);
  if (!in) Die("cannot open " + corpus);
  std::vector<std::string> texts;
  std::string line;
  while (texts.size() < n_docs && std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string title = j.value("title", ""), text = j.value("text", "");
    texts.push_back(title.empty() ? text : title + " " + text);
  }
  for (size_t length : lengths) {
    auto encoder = quarry::DualEncoder::Load(model_dir, {.max_length = length});
    if (!encoder.ok()) Die(encoder.status().ToString());
    size_t tokens = 0;
    for (const auto& t : texts) tokens += (*encoder)->Tokenize(t).size();
    for (size_t t : threads) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, t);
      std::vector<double> seconds;
      for (size_t p = 0; p < passes; ++p) {
        const auto start = std::chrono::steady_clock::now();
        for (size_t b = 0; b < texts.size(); b += batch) {
          std::vector<std::string> chunk(texts.begin() + b, texts.begin() + std::min(texts.size(), b + batch));
          auto emb = (*encoder)->EncodeDocuments(chunk);
          if (!emb.ok()) Die(emb.status().ToString());
        }
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::sort(seconds.begin(), seconds.end());
      const double median = seconds[seconds.size() / 2];
      nlohmann::json j = {{"system", "quarry"}, {"docs", texts.size()}, {"tokens", tokens}, {"max_length", length},
                          {"batch", batch}, {"threads", t}, {"seconds", median}, {"docs_per_s", texts.size() / median}};
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
