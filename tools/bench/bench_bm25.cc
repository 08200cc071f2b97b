// bench_bm25: BM25 indexing and query throughput on a BEIR folder.
// Usage: bench_bm25 BEIR_DIR [WORK_DIR]
// Prints one JSON object per line (as bench_scale does; scripts read them with a JSON parser):
//   {"phase":"ingest","docs":...,"ingest_s":...,"docs_per_s":...,"index_load_s":...}
//   {"phase":"search","k":10,"threads":"1"|"all","exhaustive":false,"queries":300,"median_s":...,"qps":...}
// queries/s at k=10 and k=1000 with one thread and with all threads (median of 5 passes over the
// split's test queries).
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "quarry/eval.h"
#include "quarry/collection.h"

using namespace quarry;

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_bm25 BEIR_DIR [WORK_DIR]\n");
    return 2;
  }
  const std::string beir = argv[1];
  const std::string work = argc > 2 ? argv[2] : std::filesystem::temp_directory_path() / "quarry-bench-bm25";
  std::filesystem::remove_all(work);
  auto t0 = std::chrono::steady_clock::now();
  auto c = Collection::Open(work, {.create_if_missing = true});
  if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;
  auto report = (*c)->IngestFile(beir + "/corpus.jsonl", {}, {.batch_docs = 5000, .sync = false});
  if (!report.ok()) return std::fprintf(stderr, "%s\n", report.status().ToString().c_str()), 1;
  const double ingest_s = Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  auto warm = (*c)->Search("warm up", {.k = 1, .hydrate = false});  // loads the in-memory index
  const double load_s = Seconds(t0);
  std::printf("%s\n", nlohmann::json({{"phase", "ingest"}, {"docs", report->n_read}, {"ingest_s", ingest_s},
                                      {"docs_per_s", report->n_read / ingest_s}, {"index_load_s", load_s}})
                        .dump()
                        .c_str());

  auto qrels = eval::LoadQrels(beir + "/qrels/test.tsv");
  auto queries = eval::LoadQueries(beir + "/queries.jsonl");
  if (!qrels.ok() || !queries.ok()) return std::fprintf(stderr, "cannot read queries/qrels\n"), 1;
  std::vector<std::string> texts;
  for (const auto& q : *queries) {
    if (qrels->count(q.id)) texts.push_back(q.text);
  }
  for (size_t k : {size_t{10}, size_t{1000}}) {
   for (bool exhaustive : {false, true}) {
    for (int threads : {1, 0}) {
      if (exhaustive && threads != 1) continue;
      std::unique_ptr<tbb::global_control> limit;
      if (threads == 1) limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, 1);
      std::vector<double> passes;
      for (int pass = 0; pass < 5; ++pass) {
        t0 = std::chrono::steady_clock::now();
        if (threads == 1) {
          for (const auto& q : texts) (void)(*c)->Search(q, {.k = k, .exhaustive = exhaustive, .hydrate = false});
        } else {
          (void)(*c)->SearchBatch(texts, {.k = k, .exhaustive = exhaustive, .hydrate = false});
        }
        passes.push_back(Seconds(t0));
      }
      const double s = Median(passes);
      std::printf("%s\n", nlohmann::json({{"phase", "search"}, {"k", k}, {"threads", threads == 1 ? "1" : "all"},
                                          {"exhaustive", exhaustive}, {"queries", texts.size()}, {"median_s", s},
                                          {"qps", texts.size() / s}})
                            .dump()
                            .c_str());
    }
   }
  }
  std::filesystem::remove_all(work);
  return 0;
}
