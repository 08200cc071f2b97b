// bench_scale: Quarry's side of scripts/bench-scale.sh, one JSON line per measurement.
//
//   bench_scale ingest BEIR_DIR DIR [--threads N] [--batch-docs N]
//       ingest corpus.jsonl into a fresh collection (durable batches); docs/s and bytes on disk
//   bench_scale search DIR QUERIES_JSONL [--passes 3] [--open-only yes]
//       in this (fresh) process: read-only open and first query; RSS after 1,000 queries; then q/s at
//       k=10 and k=1000 on 1 and 2 threads (median of the passes over every query)
//   bench_scale upsert DIR [--trials 20]
//       writable open; time from Upsert of a new document to a search that finds it, and from Delete to
//       a search that no longer does
//   bench_scale dense WORK_DIR [--n 1000000] [--dim 384] [--factories "IVF1024,Flat;HNSW32"]
//                              [--nprobe 16] [--ef-search 64] [--queries 1000]
//       seeded clustered unit vectors imported into a collection of N documents; per factory: build,
//       read-only open and first search, q/s on one thread and recall@10 against exact search, RSS, and
//       the time from PutVectors of a changed vector to a search that finds it
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quarry/eval.h"
#include "quarry/collection.h"
#include "index/dense/faiss_index.h"
#include "quarry/engine.h"
#include "tools/bench/clustered_vectors.h"

using namespace quarry;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Resident set sizes from /proc/self/status, in KiB: total, anonymous, file-backed.
nlohmann::json Rss() {
  std::ifstream in("/proc/self/status");
  nlohmann::json j;
  for (std::string line; std::getline(in, line);) {
    for (const char* key : {"VmRSS", "RssAnon", "RssFile", "VmHWM"}) {
      if (line.rfind(std::string(key) + ":", 0) == 0) j[key] = std::stoull(line.substr(std::strlen(key) + 1));
    }
  }
  return j;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

[[noreturn]] void Die(const Status& s) {
  std::fprintf(stderr, "bench_scale: %s\n", s.ToString().c_str());
  std::exit(1);
}

std::string Flag(std::vector<std::string>& args, const std::string& name, const std::string& fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) {
      std::string v = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i + 2));
      return v;
    }
  }
  return fallback;
}

int Ingest(std::vector<std::string> args) {
  const int threads = std::stoi(Flag(args, "--threads", "1"));
  const uint64_t batch = std::stoull(Flag(args, "--batch-docs", "1000"));
  if (args.size() != 2) return std::fprintf(stderr, "usage: bench_scale ingest BEIR_DIR DIR [--threads N]\n"), 2;
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  std::filesystem::remove_all(args[1]);
  const auto t0 = Clock::now();
  double ingest_ms = 0;
  {
    auto c = Collection::Open(args[1], {.create_if_missing = true});
    if (!c.ok()) Die(c.status());
    auto r = (*c)->IngestFile(args[0] + "/corpus.jsonl", {}, {.batch_docs = batch});
    if (!r.ok()) Die(r.status());
    ingest_ms = Ms(t0);  // every batch acknowledged (fsynced) and the merges done
  }
  const double total_ms = Ms(t0);  // with the close (memtables flushed)
  auto c = Collection::Open(args[1], {.read_only = true});
  if (!c.ok()) Die(c.status());
  auto stats = (*c)->Stats();
  if (!stats.ok()) Die(stats.status());
  nlohmann::json j = {{"phase", "ingest"},
                      {"threads", threads},
                      {"docs", stats->n_docs},
                      {"seconds", ingest_ms / 1000},
                      {"seconds_with_close", total_ms / 1000},
                      {"docs_per_s", stats->n_docs / (ingest_ms / 1000)},
                      {"lexical_bytes", DirBytes(args[1] + "/lex")},
                      {"collection_bytes", DirBytes(args[1])},
                      {"segments", stats->lex_segments}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int SearchBench(std::vector<std::string> args) {
  const int passes = std::stoi(Flag(args, "--passes", "3"));
  const bool open_only = Flag(args, "--open-only", "no") != "no";
  if (args.size() != 2) return std::fprintf(stderr, "usage: bench_scale search DIR QUERIES_JSONL\n"), 2;
  auto queries = eval::LoadQueries(args[1]);
  if (!queries.ok()) Die(queries.status());
  std::vector<std::string> texts;
  for (const auto& q : *queries) texts.push_back(q.text);
  const auto t0 = Clock::now();
  auto engine = Engine::Open(args[0]);
  if (!engine.ok()) Die(engine.status());
  const double open_ms = Ms(t0);
  const auto t1 = Clock::now();
  auto first = (*engine)->Search(texts[0], {.k = 10});
  if (!first.ok()) Die(first.status());
  const double first_ms = Ms(t1);
  const Collection& c = (*engine)->collection();
  for (size_t i = 0; i < 1000 && i < texts.size(); ++i) {
    auto r = c.Search(texts[i], {.k = 10, .hydrate = false});
    if (!r.ok()) Die(r.status());
  }
  nlohmann::json j = {{"phase", open_only ? "open_cold" : "open"}, {"open_ms", open_ms}, {"first_query_ms", first_ms},
                      {"rss_after_1000_queries_kb", Rss()}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  if (open_only) return 0;
  for (size_t k : {size_t{10}, size_t{1000}}) {
    for (int threads : {1, 2}) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
      std::vector<double> times;
      for (int p = 0; p < passes; ++p) {
        const auto t = Clock::now();
        if (threads == 1) {
          for (const auto& q : texts) {
            auto r = c.Search(q, {.k = k, .hydrate = false});
            if (!r.ok()) Die(r.status());
          }
        } else {
          auto r = c.SearchBatch(texts, {.k = k, .hydrate = false});
          if (!r.ok()) Die(r.status());
        }
        times.push_back(Ms(t) / 1000);
      }
      const double s = Median(times);
      nlohmann::json q = {{"phase", "search"}, {"k", k}, {"threads", threads}, {"queries", texts.size()},
                          {"median_s", s}, {"qps", texts.size() / s}};
      std::printf("%s\n", q.dump().c_str());
      std::fflush(stdout);
    }
  }
  std::printf("%s\n", nlohmann::json({{"phase", "rss_after_search"}, {"rss_kb", Rss()}}).dump().c_str());
  return 0;
}

int UpsertBench(std::vector<std::string> args) {
  const int trials = std::stoi(Flag(args, "--trials", "20"));
  if (args.size() != 1) return std::fprintf(stderr, "usage: bench_scale upsert DIR\n"), 2;
  const auto t0 = Clock::now();
  auto c = Collection::Open(args[0]);
  if (!c.ok()) Die(c.status());
  const double open_ms = Ms(t0);
  std::vector<double> upsert, remove;
  for (int i = 0; i < trials; ++i) {
    std::string word = "upsertq";
    for (int v = i; v > 0 || word.size() == 7; v /= 26) word.push_back(static_cast<char>('a' + v % 26));
    const std::string id = "bench-upsert-" + std::to_string(i);
    const auto t = Clock::now();
    if (Status s = (*c)->Upsert({{id, "", word + " a passage written while the collection is searched", ""}}); !s.ok()) Die(s);
    auto r = (*c)->Search(word, {.k = 10, .hydrate = false});
    if (!r.ok()) Die(r.status());
    if (r->empty() || (*r)[0].id != id) Die(Status::Internal("the upserted document was not found"));
    upsert.push_back(Ms(t));
    const auto t2 = Clock::now();
    auto d = (*c)->Delete(id);
    if (!d.ok()) Die(d.status());
    auto r2 = (*c)->Search(word, {.k = 10, .hydrate = false});
    if (!r2.ok()) Die(r2.status());
    if (!r2->empty()) Die(Status::Internal("the deleted document was still found"));
    remove.push_back(Ms(t2));
  }
  std::sort(upsert.begin(), upsert.end());
  nlohmann::json j = {{"phase", "upsert"},
                      {"writable_open_ms", open_ms},
                      {"trials", trials},
                      {"upsert_to_visible_ms_median", Median(upsert)},
                      {"upsert_to_visible_ms_max", upsert.back()},
                      {"delete_to_invisible_ms_median", Median(remove)}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int DenseBench(std::vector<std::string> args) {
  const size_t n = std::stoull(Flag(args, "--n", "1000000")), dim = std::stoull(Flag(args, "--dim", "384"));
  const size_t n_queries = std::stoull(Flag(args, "--queries", "1000"));
  const size_t nprobe = std::stoull(Flag(args, "--nprobe", "16")), ef = std::stoull(Flag(args, "--ef-search", "64"));
  const std::string factories = Flag(args, "--factories", "IVF1024,Flat;HNSW32");
  if (args.size() != 1) return std::fprintf(stderr, "usage: bench_scale dense WORK_DIR [--n N] [--dim D]\n"), 2;
  const std::string dir = args[0] + "/dense";
  std::filesystem::remove_all(dir);
  std::mt19937_64 rng(1);
  const auto centres = bench::RandomCentres(1000, dim, rng);
  const float spread = 1.5f / std::sqrt(static_cast<float>(dim));
  const auto vectors = bench::Clustered(n, dim, centres, spread, rng);
  const auto queries = bench::Clustered(n_queries, dim, centres, spread, rng);
  std::vector<std::string> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = "v" + std::to_string(i);
  constexpr size_t kBatch = 10000;
  double import_s = 0;
  {
    auto c = Collection::Open(dir, {.create_if_missing = true});
    if (!c.ok()) Die(c.status());
    for (size_t i = 0; i < n; i += kBatch) {
      std::vector<Document> docs;
      for (size_t j = i; j < std::min(n, i + kBatch); ++j) docs.push_back({ids[j], "", "", ""});
      if (Status s = (*c)->Upsert(docs); !s.ok()) Die(s);
    }
    const auto t = Clock::now();
    for (size_t i = 0; i < n; i += kBatch) {
      const size_t m = std::min(n, i + kBatch) - i;
      std::vector<std::string> batch_ids(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                         ids.begin() + static_cast<std::ptrdiff_t>(i + m));
      std::vector<float> rows(vectors.begin() + static_cast<std::ptrdiff_t>(i * dim),
                              vectors.begin() + static_cast<std::ptrdiff_t>((i + m) * dim));
      if (Status s = (*c)->dense().PutVectors(batch_ids, rows, dim); !s.ok()) Die(s);
    }
    import_s = Ms(t) / 1000;
  }
  // Exact neighbours, for recall.
  auto exact = FaissIndex::Create(dim, "Flat", DenseMetric::kInnerProduct);
  if (!exact.ok()) Die(exact.status());
  std::vector<int64_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = static_cast<int64_t>(i);
  if (Status s = (*exact)->Add(rows, vectors); !s.ok()) Die(s);
  auto truth = (*exact)->Search(queries, 10);
  if (!truth.ok()) Die(truth.status());
  exact->reset();
  std::printf("%s\n", nlohmann::json({{"phase", "dense_import"}, {"vectors", n}, {"dim", dim}, {"seconds", import_s},
                                      {"vectors_per_s", n / import_s}})
                          .dump()
                          .c_str());
  std::fflush(stdout);
  for (size_t from = 0; from < factories.size();) {
    size_t to = factories.find(';', from);
    if (to == std::string::npos) to = factories.size();
    const std::string factory = factories.substr(from, to - from);
    from = to + 1;
    double build_s = 0;
    {
      auto c = Collection::Open(dir);
      if (!c.ok()) Die(c.status());
      const auto t = Clock::now();
      auto built = (*c)->dense().Build({.factory = factory, .nprobe = nprobe, .ef_search = ef});
      if (!built.ok()) Die(built.status());
      build_s = Ms(t) / 1000;
    }
    // This process holds the benchmark's own vectors; the reader's memory is the growth from here.
    const nlohmann::json rss_before = Rss();
    const auto t0 = Clock::now();
    auto reader = Collection::Open(dir, {.read_only = true});
    if (!reader.ok()) Die(reader.status());
    const std::vector<float> first(queries.begin(), queries.begin() + static_cast<std::ptrdiff_t>(dim));
    auto hit = (*reader)->SearchVector(first, {.k = 10, .hydrate = false});
    if (!hit.ok()) Die(hit.status());
    const double open_ms = Ms(t0);
    std::vector<double> passes;
    double recall = 0;
    for (int pass = 0; pass < 3; ++pass) {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
      size_t found = 0;
      const auto t = Clock::now();
      for (size_t q = 0; q < n_queries; ++q) {
        const std::vector<float> v(queries.begin() + static_cast<std::ptrdiff_t>(q * dim),
                                   queries.begin() + static_cast<std::ptrdiff_t>((q + 1) * dim));
        auto hits = (*reader)->SearchVector(v, {.k = 10, .hydrate = false});
        if (!hits.ok()) Die(hits.status());
        for (const auto& h : *hits) {
          for (const auto& e : (*truth)[q]) found += ids[static_cast<size_t>(e.id)] == h.id;
        }
      }
      passes.push_back(Ms(t) / 1000);
      recall = static_cast<double>(found) / (10.0 * n_queries);
    }
    const nlohmann::json rss_after = Rss();
    nlohmann::json rss;
    for (const char* key : {"VmRSS", "RssAnon", "RssFile"}) {
      rss[key] = rss_after.value(key, int64_t{0}) - rss_before.value(key, int64_t{0});
    }
    auto info = (*reader)->dense().Info();
    if (!info.ok()) Die(info.status());
    reader->reset();
    // Writes: a changed vector is found by the next search.
    auto c = Collection::Open(dir);
    if (!c.ok()) Die(c.status());
    if (auto warm = (*c)->SearchVector(first, {.k = 1, .hydrate = false}); !warm.ok()) Die(warm.status());
    std::vector<double> visible;
    for (int trial = 0; trial < 20; ++trial) {
      const std::string id = ids[static_cast<size_t>(trial) * 7919 % n];
      std::vector<float> v(dim);
      for (size_t i = 0; i < dim; ++i) v[i] = queries[(trial * 31 % n_queries) * dim + i] + 0.01f * (i % 3);
      const auto t = Clock::now();
      if (Status s = (*c)->dense().PutVectors({id}, v, dim); !s.ok()) Die(s);
      auto hits = (*c)->SearchVector(v, {.k = 1, .hydrate = false});
      if (!hits.ok()) Die(hits.status());
      if (hits->empty() || (*hits)[0].id != id) Die(Status::Internal("the changed vector was not found first"));
      visible.push_back(Ms(t));
      // Restore the original vector, so the next factory is measured on the same data.
      const size_t row = static_cast<size_t>(trial) * 7919 % n;
      const std::vector<float> original(vectors.begin() + static_cast<std::ptrdiff_t>(row * dim),
                                        vectors.begin() + static_cast<std::ptrdiff_t>((row + 1) * dim));
      if (Status s = (*c)->dense().PutVectors({id}, original, dim); !s.ok()) Die(s);
    }
    std::sort(visible.begin(), visible.end());
    nlohmann::json j = {{"phase", "dense"}, {"factory", factory}, {"vectors", n}, {"build_s", build_s},
                        {"open_and_first_search_ms", open_ms}, {"qps_1_thread", n_queries / Median(passes)},
                        {"recall_at_10", recall}, {"reader_rss_growth_kb", rss}, {"upsert_to_visible_ms_median", Median(visible)},
                        {"upsert_to_visible_ms_max", visible.back()},
                        {"knobs", {{"nprobe", info->nprobe}, {"ef_search", info->ef_search}}},
                        {"rebuilt_at_open", info->rebuilt}, {"file_bytes", info->file_bytes}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return std::fprintf(stderr, "usage: bench_scale ingest|search|upsert ...\n"), 2;
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "ingest") return Ingest(args);
  if (cmd == "search") return SearchBench(args);
  if (cmd == "upsert") return UpsertBench(args);
  if (cmd == "dense") return DenseBench(args);
  std::fprintf(stderr, "bench_scale: unknown command %s\n", cmd.c_str());
  return 2;
}
