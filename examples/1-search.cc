// 1-search: open a collection and search it from several threads at once.
// Usage: 1-search DIR "query text"
#include <cstdio>
#include <thread>
#include <vector>

#include "quarry/engine.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR \"query text\"\n", argv[0]);
    return 2;
  }
  auto engine = quarry::Engine::Open(argv[1]);  // read-only: other processes may write meanwhile
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  auto result = (*engine)->Search(argv[2], {.k = 5});
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
    return 1;
  }
  for (const auto& hit : result->hits) std::printf("%-10s %8.4f  %s\n", hit.id.c_str(), hit.score, hit.title.c_str());
  std::printf("retrieve %.3f ms, hydrate %.3f ms\n", result->timings.retrieve_ms, result->timings.hydrate_ms);

  // One Engine serves any number of threads.
  std::vector<std::thread> threads;
  std::vector<size_t> counts(4);
  for (size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([&, t] { counts[t] = (*engine)->Search(argv[2], {.k = 5})->hits.size(); });
  }
  for (auto& th : threads) th.join();
  for (size_t n : counts) if (n != result->hits.size()) return 1;
  std::printf("4 threads agree\n");
  return 0;
}
