// quarry eval: retrieve and evaluate (DIR with --beir or --queries/--qrels), or evaluate a run file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "quarry/eval.h"
#include "quarry/collection.h"
#include "common/json.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/mode_flags.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

struct EvalArgs {
  std::string dir, beir, split = "test", queries, qrels, run, run_out, compare, candidates;
  std::string metrics = "ndcg@10,recall@100,mrr@10";
  std::vector<std::string> measures;  // -m, repeatable (trec_eval's spelling)
  size_t depth = 1000;
  int relevance_level = 1;
  uint64_t permutations = 10000;
  bool per_query = false, json = false, ignore_self = false, resmem = false;
  RerankFlags rerank;
  ModeFlags mode;
};

// The run in `candidates_path` (in trec_eval's order), its top `depth` per query of `qids` reordered by
// the collection's dense similarity to the query text; documents without a vector follow the rest, in
// their first-stage order.
Result<eval::Run> DenseRerank(const Collection& c, const std::string& candidates_path, size_t depth,
                              const std::vector<std::string>& qids, const std::vector<std::string>& texts) {
  QUARRY_ASSIGN_OR_RETURN(eval::Run candidates, eval::LoadRun(candidates_path));
  eval::SortRun(&candidates);
  eval::Run run;
  for (size_t q = 0; q < qids.size(); ++q) {
    const auto it = candidates.find(qids[q]);
    if (it == candidates.end()) continue;
    std::vector<std::string> ids;
    for (const auto& e : it->second) {
      if (ids.size() == depth) break;
      ids.push_back(e.doc);
    }
    QUARRY_ASSIGN_OR_RETURN(auto scores, c.dense().Scores(texts[q], ids));
    float lowest = 0;
    for (float v : scores) lowest = std::isnan(v) ? lowest : std::min(lowest, v);
    for (float& v : scores) v = std::isnan(v) ? (lowest -= 1) : v;
    auto& entries = run[qids[q]];
    for (size_t i = 0; i < ids.size(); ++i) entries.push_back({ids[i], eval::RunFileScore(scores[i])});
  }
  eval::SortRun(&run);
  return run;
}

// trec_eval -q's layout: each query's measures, then the means as query "all".
void PrintTrecEvalPerQuery(const eval::Evaluation& ev) {
  for (size_t q = 0; q < ev.qids.size(); ++q) {
    for (size_t m = 0; m < ev.metrics.size(); ++m) {
      std::printf("%-22s\t%s\t%.4f\n", eval::TrecEvalName(ev.metrics[m]).c_str(), ev.qids[q].c_str(), ev.per_query[m][q]);
    }
  }
  for (size_t m = 0; m < ev.metrics.size(); ++m) {
    std::printf("%-22s\tall\t%.4f\n", eval::TrecEvalName(ev.metrics[m]).c_str(), ev.mean[m]);
  }
}

int RunEval(const EvalArgs& a) {
  std::string spec = a.measures.empty() ? a.metrics : "";
  for (const auto& m : a.measures) spec += (spec.empty() ? "" : ",") + m;
  auto metrics = eval::ParseMetrics(spec);
  if (!metrics.ok()) return Fail(metrics.status());
  std::string qrels_path = a.qrels, queries_path = a.queries;
  if (!a.beir.empty()) {
    if (qrels_path.empty()) qrels_path = a.beir + "/qrels/" + a.split + ".tsv";
    if (queries_path.empty()) queries_path = a.beir + "/queries.jsonl";
  }
  if (qrels_path.empty()) {
    std::fprintf(stderr, "quarry eval: give --beir PATH or --qrels FILE%s\n",
                 a.queries.empty() ? "" : " (to write a run without judgements: quarry search DIR --queries FILE --run-out RUN)");
    return kExitUsage;
  }
  auto qrels = eval::LoadQrels(qrels_path);
  if (!qrels.ok()) return Fail(qrels.status());

  eval::Run run;
  std::string run_name;
  if (!a.run.empty()) {
    auto loaded = eval::LoadRun(a.run);
    if (!loaded.ok()) return Fail(loaded.status());
    run = std::move(*loaded);
    run_name = a.run;
  } else {
    if (a.dir.empty() || queries_path.empty()) {
      std::fprintf(stderr, "quarry eval: give DIR with --beir PATH (or --queries and --qrels), or --run RUN\n");
      return kExitUsage;
    }
    auto queries = eval::LoadQueries(queries_path);
    if (!queries.ok()) return Fail(queries.status());
    std::vector<std::string> qids, texts;
    for (const auto& q : *queries) {
      if (qrels->count(q.id)) qids.push_back(q.id), texts.push_back(q.text);
    }
    auto c = Collection::Open(a.dir, {.read_only = true});
    if (!c.ok()) return Fail(c.status());
    const bool rerank = !a.rerank.model.empty();
    if (!a.candidates.empty()) {
      if (a.mode.mode != RetrievalMode::kDense || rerank || a.resmem) {
        std::fprintf(stderr, "quarry eval: --candidates reranks by dense similarity: give --mode dense, "
                             "without --rerank-model or --resmem\n");
        return kExitUsage;
      }
      auto reranked = DenseRerank(**c, a.candidates, a.depth, qids, texts);
      if (!reranked.ok()) return Fail(reranked.status());
      run = std::move(*reranked);
      run_name = "dense-rerank";
    } else {
      if (rerank) {
        if (Status s = (*c)->rerank().Load(a.rerank.model, a.rerank.options); !s.ok()) return Fail(s);
      }
      SearchOptions options{.k = a.depth, .hydrate = false, .resmem = a.resmem, .rerank = rerank};
      a.mode.ApplyTo(&options);
      auto results = (*c)->SearchBatch(texts, options);
      if (!results.ok()) return Fail(results.status());
      for (size_t i = 0; i < qids.size(); ++i) {
        auto& entries = run[qids[i]];
        // Scores as the run file holds them, so that evaluating the file gives the same numbers.
        for (const auto& h : (*results)[i]) entries.push_back({h.id, eval::RunFileScore(h.score)});
      }
      run_name = a.mode.Name() + (rerank ? "+blockrank" : "") + (a.resmem ? "+resmem" : "");
    }
    if (!a.run_out.empty()) {
      if (Status s = eval::WriteRun(a.run_out, run, "quarry-" + run_name); !s.ok()) return Fail(s);
    }
  }

  eval::EvalOptions options{.ignore_self = a.ignore_self, .relevance_level = a.relevance_level};
  const eval::Evaluation ev = eval::Evaluate(*qrels, run, *metrics, options);
  std::optional<eval::Evaluation> other;
  if (!a.compare.empty()) {
    auto b = eval::LoadRun(a.compare);
    if (!b.ok()) return Fail(b.status());
    other = eval::Evaluate(*qrels, std::move(*b), *metrics, options);
  }

  nlohmann::json j = {{"run", run_name}, {"qrels", qrels_path}, {"queries", ev.qids.size()}};
  if (a.relevance_level != 1) j["relevance_level"] = a.relevance_level;
  for (size_t m = 0; m < ev.metrics.size(); ++m) j["metrics"][ev.metrics[m].name] = ev.mean[m];
  std::vector<eval::PairedTest> tests;
  if (other) {
    for (size_t m = 0; m < ev.metrics.size(); ++m) {
      tests.push_back(eval::ComparePaired(ev.per_query[m], other->per_query[m], a.permutations));
      const auto& t = tests.back();
      j["compare"]["run"] = a.compare;
      j["compare"]["metrics"][ev.metrics[m].name] = {
          {"a", t.mean_a}, {"b", t.mean_b}, {"diff", t.mean_diff}, {"p_randomization", t.p_randomization},
          {"t", t.t}, {"p_ttest", t.p_t}};
    }
  }
  if (a.per_query) {
    for (size_t m = 0; m < ev.metrics.size(); ++m) {
      for (size_t q = 0; q < ev.qids.size(); ++q) j["per_query"][ev.qids[q]][ev.metrics[m].name] = ev.per_query[m][q];
    }
  }
  if (a.json) {
    std::printf("%s\n", DumpJson(j, 2).c_str());
    return kExitOk;
  }
  if (a.per_query && !other) {
    PrintTrecEvalPerQuery(ev);
    return kExitOk;
  }
  if (!other) {
    std::printf("%-12s %s\n", "metric", "value");
    for (size_t m = 0; m < ev.metrics.size(); ++m) std::printf("%-12s %.4f\n", ev.metrics[m].name.c_str(), ev.mean[m]);
  } else {
    std::printf("A = %s\nB = %s\n", run_name.c_str(), a.compare.c_str());
    std::printf("%-12s %8s %8s %8s %10s %10s\n", "metric", "A", "B", "A-B", "p(rand)", "p(t-test)");
    for (size_t m = 0; m < ev.metrics.size(); ++m) {
      const auto& t = tests[m];
      std::printf("%-12s %8.4f %8.4f %+8.4f %10.4f %10.4f\n", ev.metrics[m].name.c_str(), t.mean_a, t.mean_b,
                  t.mean_diff, t.p_randomization, t.p_t);
    }
  }
  std::printf("%-12s %zu\n", "queries", ev.qids.size());
  return kExitOk;
}

}  // namespace

void AddEvalCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate with trec_eval conventions.\n"
      "  quarry eval DIR --beir PATH [--split test]     retrieve the split's queries with BM25 and evaluate\n"
      "  quarry eval DIR --queries Q --qrels QRELS      the same for MS MARCO/TREC files\n"
      "  quarry eval --qrels QRELS --run RUN            evaluate any TREC run file");
  cmd->add_option("DIR", a->dir, "collection directory (to retrieve)");
  cmd->add_option("--beir", a->beir, "BEIR folder (queries.jsonl, qrels/<split>.tsv)");
  cmd->add_option("--split", a->split, "BEIR qrels split")->capture_default_str();
  cmd->add_option("--queries", a->queries, "queries file: BEIR .jsonl, qid<TAB>text, or TREC topics");
  cmd->add_option("--qrels", a->qrels, "qrels file (BEIR tsv or TREC)");
  cmd->add_option("--run", a->run, "evaluate this TREC run instead of retrieving");
  cmd->add_option("--run-out", a->run_out, "write the retrieved run here (TREC format)");
  cmd->add_option("--candidates", a->candidates,
                  "rerank this TREC run (its top -k per query) by dense similarity instead of retrieving; "
                  "needs --mode dense");
  cmd->add_option("--metrics", a->metrics, "comma-separated: ndcg@k, recall@k, mrr@k, p@k, map, map@k, or trec_eval's ndcg_cut.k, recall.k, P.k, map_cut.k, recip_rank")
      ->capture_default_str();
  cmd->add_option("-m,--measure", a->measures,
                  "a measure as trec_eval's -m names it (repeatable; replaces --metrics): ndcg_cut.10, "
                  "recall.100, P.10, map, recip_rank, ndcg_cut.5,10 ...")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("-k,--k", a->depth, "hits retrieved per query (with --candidates: taken from the run)")->capture_default_str()->check(AtLeastOne());
  AddDeprecatedAlias(cmd, "--depth", "-k", &a->depth);
  cmd->add_option("-l,--relevance-level", a->relevance_level,
                  "lowest grade that is relevant for recall, P, MAP and MRR, as trec_eval's -l (TREC DL reports "
                  "recall and MAP at 2); nDCG's gains are the grades")
      ->capture_default_str()
      ->check(AtLeastOne());
  cmd->add_flag("--per-query", a->per_query, "print each query's values and the means in trec_eval -q's layout");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_flag("--resmem", a->resmem, "correct the retrieved scores with the collection's ResMem memory");
  AddModeFlags(cmd, &a->mode);
  AddRerankFlags(cmd, &a->rerank);
  cmd->add_flag("--ignore-self", a->ignore_self, "drop hits whose id equals the query id (BEIR)");
  cmd->add_option("--compare", a->compare, "paired significance test against this run (B)");
  cmd->add_option("--permutations", a->permutations, "randomisation test permutations")->capture_default_str();
  commands->emplace_back(cmd, [a] { return RunEval(*a); });
}

}  // namespace quarry::cli
