// quarry rerank: rerank a TREC run with BlockRank, documents (and, in the decoupled mode, their cached
// blocks) from a collection.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "common/progress.h"
#include "quarry/eval.h"
#include "quarry/collection.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

struct Args {
  RerankFlags rerank;
  std::string collection, run, queries, run_out;
  std::vector<int> layers;  // --scoring-layers: one run per layer, from one pass
  bool json = false;
};

int Rerank(const Args& a) {
  if (a.collection.empty() || a.rerank.model.empty()) {
    std::fprintf(stderr, "quarry rerank: give DIR and --rerank-model DIR_OR_GGUF\n");
    return kExitUsage;
  }
  RerankOptions options = a.rerank.options;
  if (!a.layers.empty()) {
    if (!std::is_sorted(a.layers.begin(), a.layers.end()) ||
        std::adjacent_find(a.layers.begin(), a.layers.end()) != a.layers.end()) {
      std::fprintf(stderr, "quarry rerank: --scoring-layers must ascend\n");
      return kExitUsage;
    }
    options.scoring_layer = a.layers.back();  // load the layers up to the deepest
  }
  const std::vector<int> layers = a.layers.empty() ? std::vector<int>{options.scoring_layer} : a.layers;
  auto c = Collection::Open(a.collection, {.create_if_missing = false, .read_only = true});
  if (!c.ok()) return Fail(c.status());
  if (Status s = (*c)->rerank().Load(a.rerank.model, options); !s.ok()) return Fail(s);
  auto run = eval::LoadRun(a.run);
  if (!run.ok()) return Fail(run.status());
  auto queries = eval::LoadQueries(a.queries);
  if (!queries.ok()) return Fail(queries.status());
  std::map<std::string, std::string> query_text;
  for (const auto& q : *queries) query_text[q.id] = q.text;
  eval::SortRun(&*run);
  std::vector<eval::Run> out(layers.size());
  Progress progress("rerank", 0, "queries");
  const auto start = std::chrono::steady_clock::now();
  size_t n_done = 0, n_docs = 0;
  for (auto& [qid, entries] : *run) {
    auto text = query_text.find(qid);
    if (text == query_text.end()) {
      return Fail(Status::InvalidArgument(a.queries + ": no text for query '" + qid + "' of " + a.run));
    }
    const size_t depth = std::min(options.depth, entries.size());
    std::vector<std::string> ids;
    for (size_t i = 0; i < depth; ++i) ids.push_back(entries[i].doc);
    Result<std::vector<std::vector<double>>> scores = std::vector<std::vector<double>>();
    if (a.layers.empty()) {
      auto one = (*c)->rerank().Scores(text->second, ids);
      if (one.ok()) scores->push_back(std::move(*one));
      else scores = one.status();
    } else {
      scores = (*c)->rerank().ScoresAtLayers(text->second, ids, layers);
    }
    if (!scores.ok()) return Fail(scores.status().WithContext(a.run + ", query " + qid));
    for (size_t l = 0; l < layers.size(); ++l) {
      std::vector<eval::RunEntry> head;
      for (size_t i = 0; i < depth; ++i) head.push_back({entries[i].doc, (*scores)[l][i]});
      std::stable_sort(head.begin(), head.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
      double below = head.empty() ? 0 : head.back().score;
      for (size_t i = depth; i < entries.size(); ++i) head.push_back({entries[i].doc, below -= 1e-3});
      out[l][qid] = std::move(head);
    }
    n_docs += depth;
    progress.Update(++n_done, 0);
  }
  progress.Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json runs = nlohmann::json::array();
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::string path = a.layers.empty() ? a.run_out : a.run_out + ".layer" + std::to_string(layers[l]);
    if (Status s = eval::WriteRun(path, out[l], "quarry-blockrank"); !s.ok()) return Fail(s);
    runs.push_back({{"run", path}, {"scoring_layer", layers[l]}});
    if (!a.json) std::printf("wrote %s\n", path.c_str());
  }
  if (a.json) {
    std::printf("%s\n", DumpJson({{"runs", runs}, {"queries", n_done}, {"documents", n_docs}, {"seconds", seconds},
                                  {"seconds_per_query", n_done ? seconds / n_done : 0.0}}).c_str());
    return kExitOk;
  }
  std::printf("reranked %zu queries (%zu documents) in %.2f s (%.3f s per query)\n", n_done, n_docs, seconds,
              n_done ? seconds / n_done : 0.0);
  return kExitOk;
}

}  // namespace

void AddRerankCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("rerank",
                                 "Rerank a TREC run with BlockRank (one forward pass per query over its top candidates)");
  cmd->add_option("DIR", a->collection, "collection holding the run's documents");
  AddRerankFlags(cmd, &a->rerank);
  AddDeprecatedAlias(cmd, "--collection", "DIR (the first argument)", &a->collection);
  AddDeprecatedAlias(cmd, "--model", "--rerank-model", &a->rerank.model);
  AddDeprecatedAlias(cmd, "--depth", "--rerank-depth", &a->rerank.options.depth);
  cmd->add_option("--run", a->run, "TREC run to rerank")->required();
  cmd->add_option("--queries", a->queries, "queries file: BEIR .jsonl, qid<TAB>text, or TREC topics")->required();
  cmd->add_option("--run-out", a->run_out, "where the reranked run goes")->required();
  cmd->add_option("--scoring-layers", a->layers,
                  "score at each of these layers from one pass and write RUN_OUT.layer<L> for each (e.g. 4,8,12)")
      ->delimiter(',');
  cmd->add_flag("--json", a->json, "print JSON");
  commands->emplace_back(cmd, [a] { return Rerank(*a); });
}

}  // namespace quarry::cli
