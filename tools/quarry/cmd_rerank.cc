// quarry rerank: rerank a TREC run with BlockRank, documents (and, in the decoupled mode, their cached
// blocks) from a collection.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "common/progress.h"
#include "eval/queries.h"
#include "eval/run.h"
#include "quarry/collection.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

struct Args {
  RerankFlags rerank;
  std::string collection, run, queries, run_out;
  bool legacy_set = false;
};

int Rerank(const Args& a) {
  if (a.rerank.model.empty()) {
    std::fprintf(stderr, "quarry rerank: --model DIR is required\n");
    return kExitUsage;
  }
  auto c = Collection::Open(a.collection, {.read_only = true});
  if (!c.ok()) return Fail(c.status());
  if (Status s = (*c)->LoadReranker(a.rerank.model, a.rerank.options); !s.ok()) return Fail(s);
  auto run = eval::LoadRun(a.run);
  if (!run.ok()) return Fail(run.status());
  auto queries = eval::LoadQueries(a.queries);
  if (!queries.ok()) return Fail(queries.status());
  std::map<std::string, std::string> query_text;
  for (const auto& q : *queries) query_text[q.id] = q.text;
  eval::SortRun(&*run);
  eval::Run out;
  Progress progress("rerank", 0, "queries");
  const auto start = std::chrono::steady_clock::now();
  size_t n_done = 0, n_docs = 0;
  for (auto& [qid, entries] : *run) {
    auto text = query_text.find(qid);
    if (text == query_text.end()) {
      return Fail(Status::InvalidArgument(a.queries + ": no text for query '" + qid + "' of " + a.run));
    }
    const size_t depth = std::min(a.rerank.options.depth, entries.size());
    std::vector<std::string> ids;
    for (size_t i = 0; i < depth; ++i) ids.push_back(entries[i].doc);
    auto scores = (*c)->RerankScores(text->second, ids);
    if (!scores.ok()) return Fail(scores.status().WithContext(a.run + ", query " + qid));
    std::vector<eval::RunEntry> head;
    for (size_t i = 0; i < depth; ++i) head.push_back({entries[i].doc, (*scores)[i]});
    std::stable_sort(head.begin(), head.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
    double below = head.empty() ? 0 : head.back().score;
    for (size_t i = depth; i < entries.size(); ++i) head.push_back({entries[i].doc, below -= 1e-3});
    out[qid] = std::move(head);
    n_docs += depth;
    progress.Update(++n_done, 0);
  }
  progress.Finish();
  if (Status s = eval::WriteRun(a.run_out, out, "quarry-blockrank"); !s.ok()) return Fail(s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("reranked %zu queries (%zu documents) in %.2f s; wrote %s\n", n_done, n_docs, seconds, a.run_out.c_str());
  return kExitOk;
}

}  // namespace

void AddRerankCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("rerank",
                                 "Rerank a TREC run with BlockRank (one forward pass per query over its top candidates)");
  AddRerankFlags(cmd, &a->rerank, "--model", "--depth");
  cmd->add_option("--collection", a->collection, "collection holding the run's documents")->required();
  cmd->add_option("--run", a->run, "TREC run to rerank")->required();
  cmd->add_option("--queries", a->queries, "queries file (.jsonl BEIR, else qid<TAB>text)")->required();
  cmd->add_option("--run-out", a->run_out, "where the reranked run goes")->required();
  commands->emplace_back(cmd, [a] { return Rerank(*a); });
}

}  // namespace quarry::cli
