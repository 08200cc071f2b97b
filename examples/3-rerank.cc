// 3-rerank: correct BM25's ranking with ResMem, a memory of training residuals.
// Usage: 3-rerank DIR   (a collection made by 2-ingest from tests/data/tiny_corpus.jsonl)
#include <cstdio>

#include "quarry/collection.h"

static void Print(const char* label, const std::vector<quarry::SearchHit>& hits) {
  std::printf("%s:", label);
  for (const auto& h : hits) std::printf(" %s(%.3f)", h.id.c_str(), h.score);
  std::printf("\n");
}

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: %s DIR\n", argv[0]), 2;
  auto c = quarry::Collection::Open(argv[1]);
  if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;

  // Training queries with judgements (never test queries): BM25 ranks d0 first for "statins", but
  // the judged answer is d4; the memory learns that residual.
  const std::vector<quarry::LabeledQuery> training = {
      {"t1", "which statins lower cholesterol", {{"d4", 1}}},
      {"t2", "coronary heart disease in women", {{"d3", 1}}},
  };
  quarry::Status s = (*c)->resmem().Build(training, {.k = 1, .lambda = 1.0f});
  if (!s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;

  const char* query = "statins cholesterol";
  auto plain = (*c)->Search(query, {.k = 3});
  auto corrected = (*c)->Search(query, {.k = 3, .resmem = true});
  if (!plain.ok() || !corrected.ok()) return 1;
  Print("bm25       ", *plain);
  Print("bm25+resmem", *corrected);
  return corrected->front().id == "d4" ? 0 : 1;
}
