// quarry search DIR "query text" [-k N] [--json]
// quarry search DIR --queries FILE --run-out RUN [-k 1000] [--threads N]   (batch: a TREC run)
// quarry search DIR --vector FILE.npy [-k N]                               (dense, an embedded query)
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "common/progress.h"
#include "quarry/npy.h"
#include "quarry/collection.h"
#include "quarry/eval.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/mode_flags.h"
#include "tools/quarry/render.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

struct SearchArgs {
  std::string dir, query, queries, run_out, tag, vector;
  size_t k = 10;
  size_t threads = 0;
  bool json = false, exhaustive = false, resmem = false;
  CLI::Option* k_option = nullptr;
  RerankFlags rerank;
  ModeFlags mode;
};

// Every query of `a.queries` searched, the top k of each written to `a.run_out` as a TREC run, a
// batch at a time (so memory holds one batch of hits), with progress on a terminal.
int BatchSearch(const Collection& c, const SearchArgs& a, SearchOptions options) {
  auto queries = eval::LoadQueries(a.queries);
  if (!queries.ok()) return Fail(queries.status());
  const std::string tag = a.tag.empty() ? "quarry-" + a.mode.Name() + (options.rerank ? "+blockrank" : "") +
                                              (options.resmem ? "+resmem" : "")
                                        : a.tag;
  auto writer = eval::RunWriter::Create(a.run_out, tag);
  if (!writer.ok()) return Fail(writer.status());
  options.hydrate = false;
  tbb::task_arena arena(a.threads == 0 ? tbb::task_arena::automatic : static_cast<int>(a.threads));
  const size_t batch = std::max<size_t>(64, 16 * static_cast<size_t>(arena.max_concurrency()));
  Progress progress("search", queries->size(), "queries");  // (counts queries where it counts bytes: an ETA)
  const auto start = std::chrono::steady_clock::now();
  uint64_t n_hits = 0;
  for (size_t at = 0; at < queries->size(); at += batch) {
    const size_t end = std::min(queries->size(), at + batch);
    std::vector<std::string> texts;
    for (size_t i = at; i < end; ++i) texts.push_back((*queries)[i].text);
    auto results = arena.execute([&] { return c.SearchBatch(texts, options); });
    if (!results.ok()) return Fail(results.status().WithContext(a.queries));
    for (size_t i = at; i < end; ++i) {
      std::vector<eval::RunEntry> entries;
      for (const auto& h : (*results)[i - at]) entries.push_back({h.id, h.score});
      n_hits += entries.size();
      if (Status s = (*writer)->Write((*queries)[i].id, entries); !s.ok()) return Fail(s);
    }
    progress.Update(end, end);
  }
  if (Status s = (*writer)->Close(); !s.ok()) return Fail(s);
  progress.Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double qps = seconds > 0 ? queries->size() / seconds : 0;
  if (a.json) {
    const nlohmann::json j = {{"run", a.run_out},  {"tag", tag},         {"queries", queries->size()},
                              {"hits", n_hits},    {"k", options.k},     {"threads", arena.max_concurrency()},
                              {"seconds", seconds}, {"queries_per_s", qps}};
    std::printf("%s\n", DumpJson(j).c_str());
  } else {
    std::printf("wrote %s: %zu queries, %llu hits (k=%zu) in %.2f s, %.1f queries/s on %d threads\n", a.run_out.c_str(),
                queries->size(), static_cast<unsigned long long>(n_hits), options.k, seconds, qps,
                arena.max_concurrency());
  }
  return kExitOk;
}

int RunSearch(SearchArgs& a) {
  const int given = !a.query.empty() + !a.queries.empty() + !a.vector.empty();
  if (given != 1) {
    std::fprintf(stderr, "quarry search: give one of QUERY, --queries FILE (with --run-out RUN) or --vector FILE.npy\n");
    return kExitUsage;
  }
  if (!a.queries.empty() && a.run_out.empty()) {
    std::fprintf(stderr, "quarry search: --queries needs --run-out RUN (the TREC run written)\n");
    return kExitUsage;
  }
  if (a.queries.empty() && (!a.run_out.empty() || a.threads != 0 || !a.tag.empty())) {
    std::fprintf(stderr, "quarry search: --run-out, --threads and --tag go with --queries\n");
    return kExitUsage;
  }
  // A run is for evaluation: 1000 hits per query unless -k says otherwise (Pyserini's --hits default).
  if (!a.queries.empty() && a.k_option->count() == 0) a.k = 1000;
  auto c = Collection::Open(a.dir, {.create_if_missing = false, .read_only = true});
  if (!c.ok()) return Fail(c.status());
  if (!a.rerank.model.empty()) {
    if (Status s = (*c)->rerank().Load(a.rerank.model, a.rerank.options); !s.ok()) return Fail(s);
  }
  SearchOptions options{.k = a.k, .exhaustive = a.exhaustive, .resmem = a.resmem, .rerank = !a.rerank.model.empty()};
  a.mode.ApplyTo(&options);
  if (!a.queries.empty()) return BatchSearch(**c, a, options);

  SearchTimings timings;
  Result<std::vector<SearchHit>> hits = std::vector<SearchHit>();
  if (!a.vector.empty()) {
    auto vector = ReadNpy(a.vector);
    if (!vector.ok()) return Fail(vector.status());
    if (vector->rows != 1) {
      return Fail(Status::InvalidArgument(a.vector + ": holds " + std::to_string(vector->rows) +
                                          " vectors; --vector takes one (shape (dim,) or (1, dim))"));
    }
    const auto start = std::chrono::steady_clock::now();
    hits = (*c)->SearchVector(vector->data, options);
    timings.retrieve_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  } else {
    hits = (*c)->Search(a.query, options, &timings);
  }
  if (!hits.ok()) return Fail(hits.status());
  if (a.json) {
    nlohmann::json j = {{"hits", HitsJson(*hits)}, {"timings", TimingsJson(timings)}};
    if (a.vector.empty()) j["query"] = a.query;
    else j["vector"] = a.vector;
    std::printf("%s\n", DumpJson(j).c_str());
    return kExitOk;
  }
  PrintHits(stdout, *hits, isatty(STDOUT_FILENO) != 0);
  return kExitOk;
}

}  // namespace

void AddSearchCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  auto a = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand(
      "search",
      "Search (BM25, dense or hybrid): ranked hits with id, score, title and a snippet.\n"
      "  quarry search DIR \"query text\"                       hits on the terminal (--json: one object)\n"
      "  quarry search DIR --queries FILE --run-out RUN       every query of FILE (BEIR queries.jsonl,\n"
      "                                                       qid<TAB>text, or TREC topics) into a TREC run\n"
      "  quarry search DIR --vector FILE.npy                  dense search with an embedded query");
  cmd->add_option("DIR", a->dir, "collection directory")->required();
  cmd->add_option("QUERY", a->query, "query text");
  a->k_option = cmd->add_option("-k,--k", a->k, "hits per query (default 10; 1000 with --queries)")->check(AtLeastOne());
  cmd->add_option("--queries", a->queries, "queries file to search in a batch: BEIR .jsonl, qid<TAB>text, or TREC topics");
  cmd->add_option("--run-out", a->run_out, "the TREC run written by --queries");
  cmd->add_option("--threads", a->threads, "threads searching --queries (0: all cores)")->capture_default_str();
  cmd->add_option("--tag", a->tag, "run tag of --run-out (default: quarry-<mode>)");
  cmd->add_option("--vector", a->vector, "search the dense index with this query vector (.npy of shape (dim,) or (1, dim))");
  cmd->add_flag("--json", a->json, "print one JSON object (hits with per-stage scores, and timings)");
  cmd->add_flag("--exhaustive", a->exhaustive, "score every posting (no pruning; same results)");
  cmd->add_flag("--resmem", a->resmem, "correct scores with the collection's ResMem memory");
  AddRerankFlags(cmd, &a->rerank);
  AddModeFlags(cmd, &a->mode);
  commands->emplace_back(cmd, [a] { return RunSearch(*a); });
}

}  // namespace quarry::cli
