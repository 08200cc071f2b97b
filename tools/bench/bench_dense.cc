// bench_dense: recall@10 against exact search and queries/s of FAISS HNSW and IVF at several settings,
// Quarry's SOAR-spilled IVF against plain IVF at equal nprobe and at equal work, and the auto-tuner, on
// seeded synthetic clustered unit vectors (the same data for every row).
//
//   bench_dense [--n 200000] [--dim 128] [--clusters 1000] [--spread 2] [--queries 1000] [--lists 1024]
//               [--seed 1] [--threads 1]
// --spread is the norm of each point's Gaussian offset from its (unit) cluster centre before
// normalisation: 2 gives overlapping clusters, closer to real embeddings than well-separated blobs.
#include <omp.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "index/dense/autotune.h"
#include "index/dense/faiss_index.h"
#include "index/dense/soar_ivf.h"
#include "tools/bench/clustered_vectors.h"

using namespace quarry;

namespace {

struct Args {
  size_t n = 200000, dim = 128, clusters = 1000, queries = 1000, lists = 1024, threads = 1;
  uint64_t seed = 1;
  double spread = 2.0;  // noise norm relative to the (unit) cluster centre
};

double Seconds(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void Die(const Status& s) {
  std::fprintf(stderr, "bench_dense: %s\n", s.message().c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) Die(r.status());
  return std::move(*r);
}

void Row(const char* index, const std::string& setting, double recall, double qps, double scanned, double mib) {
  std::printf("%-22s %-16s %8.4f %10.0f %10.0f %9.1f\n", index, setting.c_str(), recall, qps, scanned, mib);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--spread") {
      a.spread = std::stod(argv[i + 1]);
      continue;
    }
    const uint64_t v = std::stoull(argv[i + 1]);
    if (f == "--n") a.n = v;
    else if (f == "--dim") a.dim = v;
    else if (f == "--clusters") a.clusters = v;
    else if (f == "--queries") a.queries = v;
    else if (f == "--lists") a.lists = v;
    else if (f == "--seed") a.seed = v;
    else if (f == "--threads") a.threads = v;
    else {
      std::fprintf(stderr, "usage: bench_dense [--n N] [--dim D] [--clusters C] [--spread S] [--queries Q] [--lists L] [--seed S] [--threads T]\n");
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured
  omp_set_num_threads(static_cast<int>(a.threads));
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, a.threads);
  std::mt19937_64 rng(a.seed);
  const auto centres = bench::RandomCentres(a.clusters, a.dim, rng);
  const float spread = static_cast<float>(a.spread) / std::sqrt(static_cast<float>(a.dim));
  const auto base = bench::Clustered(a.n, a.dim, centres, spread, rng);
  const auto queries = bench::Clustered(a.queries, a.dim, centres, spread, rng);
  const auto tuning_queries = bench::Clustered(500, a.dim, centres, spread, rng);  // the tuner never sees `queries`
  std::vector<int64_t> ids(a.n);
  for (size_t i = 0; i < a.n; ++i) ids[i] = static_cast<int64_t>(i);
  constexpr size_t k = 10;
  std::printf("data: %zu x %zu clustered unit vectors (%zu clusters, spread %.2f), %zu queries, inner product, recall@%zu vs exact, "
              "%zu thread(s), seed %llu\n",
              a.n, a.dim, a.clusters, a.spread, a.queries, k, a.threads, static_cast<unsigned long long>(a.seed));

  auto exact = Must(FaissIndex::Create(a.dim, "Flat", DenseMetric::kInnerProduct));
  if (Status s = exact->Add(ids, base); !s.ok()) Die(s);
  auto truth_of = [&](const std::vector<float>& q) {
    auto hits = Must(exact->Search(q, k));
    std::vector<std::vector<int64_t>> t(hits.size());
    for (size_t i = 0; i < hits.size(); ++i) {
      for (const auto& h : hits[i]) t[i].push_back(h.id);
    }
    return t;
  };
  auto start = std::chrono::steady_clock::now();
  const auto truth = truth_of(queries);
  const double flat_qps = a.queries / Seconds(start);
  const auto tuning_truth = truth_of(tuning_queries);
  const double vector_mib = a.n * (a.dim * 4.0) / (1 << 20);

  std::printf("\n%-22s %-16s %8s %10s %10s %9s\n", "index", "setting", "recall", "queries/s", "scanned/q", "MiB");
  Row("Flat (exact)", "-", 1.0, flat_qps, static_cast<double>(a.n), vector_mib);

  auto measure = [&](FaissIndex* index, const std::string& knob, size_t value) {
    if (Status s = index->SetSearchParameter(knob, value); !s.ok()) Die(s);
    const auto t = std::chrono::steady_clock::now();
    auto found = Must(index->Search(queries, k));
    const double qps = a.queries / Seconds(t);
    return std::make_pair(RecallAtK(found, truth, k), qps);
  };

  // HNSW32.
  start = std::chrono::steady_clock::now();
  auto hnsw = Must(FaissIndex::Create(a.dim, "HNSW32", DenseMetric::kInnerProduct));
  if (Status s = hnsw->Add(ids, base); !s.ok()) Die(s);
  const double hnsw_build = Seconds(start);
  const double hnsw_mib = static_cast<double>(Must(hnsw->Serialize()).size()) / (1 << 20);
  for (size_t ef : {16, 32, 64, 128, 256}) {
    auto [recall, qps] = measure(hnsw.get(), "efSearch", ef);
    Row("HNSW32", "efSearch=" + std::to_string(ef), recall, qps, NAN, hnsw_mib);
  }

  // FAISS IVF-Flat.
  start = std::chrono::steady_clock::now();
  const std::string ivf_spec = "IVF" + std::to_string(a.lists) + ",Flat";
  auto ivf = Must(FaissIndex::Create(a.dim, ivf_spec, DenseMetric::kInnerProduct));
  if (Status s = ivf->Train(base); !s.ok()) Die(s);
  if (Status s = ivf->Add(ids, base); !s.ok()) Die(s);
  const double ivf_build = Seconds(start);
  const double ivf_mib = static_cast<double>(Must(ivf->Serialize()).size()) / (1 << 20);
  for (size_t p : {1, 2, 4, 8, 16, 32}) {
    auto [recall, qps] = measure(ivf.get(), "nprobe", p);
    Row(("FAISS " + ivf_spec).c_str(), "nprobe=" + std::to_string(p), recall, qps, a.n * static_cast<double>(p) / a.lists, ivf_mib);
  }

  // Quarry IVF without and with SOAR spilling (same k-means centroids: same seed and sample).
  SoarIvfOptions so;
  so.n_lists = a.lists;
  so.spill = false;
  start = std::chrono::steady_clock::now();
  auto plain = Must(SoarIvf::Build(a.dim, ids, base, so));
  const double plain_build = Seconds(start);
  so.spill = true;
  start = std::chrono::steady_clock::now();
  auto soar = Must(SoarIvf::Build(a.dim, ids, base, so));
  const double soar_build = Seconds(start);
  struct Point {
    size_t nprobe;
    double recall, qps, scanned;
  };
  auto sweep = [&](const SoarIvf& index, const char* name) {
    std::vector<Point> points;
    for (size_t p : {1, 2, 3, 4, 6, 8, 12, 16, 32}) {
      IvfSearchStats stats;
      const auto t = std::chrono::steady_clock::now();
      auto found = Must(index.Search(queries, k, p, &stats));
      const double qps = a.queries / Seconds(t);
      Point pt{p, RecallAtK(found, truth, k), qps, static_cast<double>(stats.entries_scanned) / a.queries};
      Row(name, "nprobe=" + std::to_string(p), pt.recall, pt.qps, pt.scanned, index.bytes() / double(1 << 20));
      points.push_back(pt);
    }
    return points;
  };
  const auto plain_points = sweep(*plain, "quarry IVF");
  const auto soar_points = sweep(*soar, "quarry IVF+SOAR");

  std::printf("\nSOAR (lambda %.1f) vs plain IVF, %zu lists: %zu vs %zu entries (%.2fx bytes)\n", so.lambda, a.lists,
              soar->n_entries(), plain->n_entries(), static_cast<double>(soar->bytes()) / plain->bytes());
  std::printf("%-8s %12s %12s %10s   %s\n", "nprobe", "IVF recall", "SOAR recall", "gain",
              "IVF recall at SOAR's scanned/q (interpolated)");
  for (size_t i = 0; i < plain_points.size(); ++i) {
    // Plain IVF's recall at the same number of scanned entries as SOAR at this nprobe.
    const double target = soar_points[i].scanned;
    double at_work = NAN;
    for (size_t j = 0; j + 1 < plain_points.size(); ++j) {
      if (plain_points[j].scanned <= target && target <= plain_points[j + 1].scanned) {
        const double f = (target - plain_points[j].scanned) / (plain_points[j + 1].scanned - plain_points[j].scanned);
        at_work = plain_points[j].recall + f * (plain_points[j + 1].recall - plain_points[j].recall);
      }
    }
    std::printf("%-8zu %12.4f %12.4f %+10.4f   %.4f (SOAR %.4f at %.0f scanned/q)\n", plain_points[i].nprobe,
                plain_points[i].recall, soar_points[i].recall, soar_points[i].recall - plain_points[i].recall, at_work,
                soar_points[i].recall, target);
  }

  std::printf("\nauto-tuning on 500 separate tuning queries, checked on the %zu benchmark queries:\n", a.queries);
  std::printf("%-22s %8s %-10s %8s %14s %14s %14s %10s\n", "index", "target", "knob", "chosen", "tuning recall",
              "(95% lower)", "bench recall", "queries/s");
  for (auto* index : {hnsw.get(), ivf.get()}) {
    for (double target : {0.90, 0.95, 0.99}) {
      const size_t max_value = index->n_lists() ? index->n_lists() : 4096;
      auto t = Must(TuneSearchParameter(index, tuning_queries, tuning_truth, k, target, max_value));
      auto [recall, qps] = measure(index, t.knob, t.chosen);
      std::printf("%-22s %8.2f %-10s %8zu %14.4f %14.4f %14.4f %10.0f%s\n",
                  index == hnsw.get() ? "HNSW32" : ivf_spec.c_str(), target, t.knob.c_str(), t.chosen, t.recall,
                  t.recall_low, recall, qps, t.reached ? "" : "  (target not reached)");
    }
  }
  std::printf("\nbuild seconds: HNSW32 %.1f, FAISS %s %.1f, quarry IVF %.1f, quarry IVF+SOAR %.1f\n", hnsw_build,
              ivf_spec.c_str(), ivf_build, plain_build, soar_build);
  return 0;
}
