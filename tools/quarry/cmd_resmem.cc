// quarry resmem build | info
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "quarry/eval.h"
#include "quarry/collection.h"
#include "common/json.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

namespace {

struct BuildArgs {
  std::string dir, beir, split = "train", queries, qrels;
  ResMemOptions options;
  bool tune = false, json = false;
  double validation_fraction = 0.2;
  uint64_t seed = 42;
};

const char* NeighboursName(ResMemNeighbours n) { return n == ResMemNeighbours::kDense ? "dense" : "bm25"; }

nlohmann::json OptionsJson(const ResMemOptions& o) {
  return {{"knn", o.k},         {"sigma", o.sigma},         {"temperature", o.temperature},
          {"lambda", o.lambda}, {"correct_depth", o.depth}, {"neighbours", NeighboursName(o.neighbours)}};
}

std::string OptionsText(const ResMemOptions& o) {
  char text[256];
  std::snprintf(text, sizeof text, "knn=%zu sigma=%g temperature=%g lambda=%g correct-depth=%zu neighbours=%s", o.k,
                o.sigma, o.temperature, o.lambda, o.depth, NeighboursName(o.neighbours));
  return text;
}

int Build(const BuildArgs& a) {
  std::string queries_path = a.queries, qrels_path = a.qrels;
  if (!a.beir.empty()) {
    if (queries_path.empty()) queries_path = a.beir + "/queries.jsonl";
    if (qrels_path.empty()) qrels_path = a.beir + "/qrels/" + a.split + ".tsv";
  }
  if (queries_path.empty() || qrels_path.empty()) {
    std::fprintf(stderr, "quarry resmem build: give --beir PATH, or --queries and --qrels\n");
    return kExitUsage;
  }
  // The memory is built from training judgements only: test judgements must never reach it.
  if (a.split == "test" || std::filesystem::path(qrels_path).stem() == "test") {
    std::fprintf(stderr, "quarry resmem build: refusing to build a memory from test judgements (%s)\n",
                 qrels_path.c_str());
    return kExitUsage;
  }
  auto qrels = eval::LoadQrels(qrels_path);
  if (!qrels.ok()) return Fail(qrels.status());
  auto queries = eval::LoadQueries(queries_path);
  if (!queries.ok()) return Fail(queries.status());
  std::vector<LabeledQuery> training;
  for (const auto& q : *queries) {
    auto it = qrels->find(q.id);
    if (it != qrels->end()) training.push_back({q.id, q.text, it->second});
  }
  if (training.empty()) {
    return Fail(Status::InvalidArgument("no query of " + queries_path + " is judged in " + qrels_path));
  }
  auto c = Collection::Open(a.dir, {.create_if_missing = false});
  if (!c.ok()) return Fail(c.status());
  ResMemOptions options = a.options;
  nlohmann::json out = {{"training_queries", training.size()}, {"qrels", qrels_path}};
  if (a.tune) {
    auto t = (*c)->resmem().Tune(training, a.validation_fraction, a.seed, a.options.neighbours);
    if (!t.ok()) return Fail(t.status());
    options = t->best;
    options.depth = a.options.depth;
    out["tuning"] = {{"memory_queries", t->n_memory}, {"validation_queries", t->n_validation},
                     {"baseline_ndcg10", t->baseline_ndcg10}, {"best_ndcg10", t->best_ndcg10},
                     {"best", OptionsJson(t->best)}};
    // Ablation over k and lambda at the best temperature and sigma.
    std::vector<size_t> ks;
    std::vector<float> lambdas;
    for (const auto& row : t->rows) {
      if (row.options.temperature != t->best.temperature || row.options.sigma != t->best.sigma) continue;
      if (std::find(ks.begin(), ks.end(), row.options.k) == ks.end()) ks.push_back(row.options.k);
      if (std::find(lambdas.begin(), lambdas.end(), row.options.lambda) == lambdas.end()) lambdas.push_back(row.options.lambda);
      out["tuning"]["ablation"].push_back({{"knn", row.options.k}, {"lambda", row.options.lambda}, {"ndcg10", row.validation_ndcg10}});
    }
    if (!a.json) {
      std::printf("validation nDCG@10 (%zu memory / %zu validation training queries; temperature %g, sigma %g)\n",
                  t->n_memory, t->n_validation, t->best.temperature, t->best.sigma);
      std::printf("%8s", "knn\\lam");
      for (float l : lambdas) std::printf(" %7g", l);
      std::printf("\n");
      for (size_t k : ks) {
        std::printf("%8zu", k);
        for (float l : lambdas) {
          for (const auto& row : t->rows) {
            if (row.options.temperature == t->best.temperature && row.options.sigma == t->best.sigma &&
                row.options.k == k && row.options.lambda == l) {
              std::printf(" %7.4f", row.validation_ndcg10);
            }
          }
        }
        std::printf("\n");
      }
      std::printf("baseline (no memory) %.4f; best %.4f at knn=%zu sigma=%g temperature=%g lambda=%g\n",
                  t->baseline_ndcg10, t->best_ndcg10, t->best.k, t->best.sigma, t->best.temperature, t->best.lambda);
    }
  }
  if (Status s = (*c)->resmem().Build(training, options); !s.ok()) return Fail(s);
  out["stored"] = OptionsJson(options);
  if (a.json) {
    std::printf("%s\n", DumpJson(out, 2).c_str());
  } else {
    std::printf("stored a ResMem memory of %zu training queries: %s\n", training.size(), OptionsText(options).c_str());
  }
  return kExitOk;
}

}  // namespace

void AddResMemCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  auto* resmem = app.add_subcommand("resmem", "ResMem: a kNN memory of training residuals that corrects scores");
  resmem->require_subcommand(1);
  {
    auto a = std::make_shared<BuildArgs>();
    auto* cmd = resmem->add_subcommand(
        "build", "Build the memory from training queries and judgements (never test ones) and store it in DIR");
    cmd->add_option("DIR", a->dir, "collection directory")->required();
    cmd->add_option("--beir", a->beir, "BEIR folder (queries.jsonl, qrels/<split>.tsv)");
    cmd->add_option("--split", a->split, "qrels split to learn from")->capture_default_str();
    cmd->add_option("--queries", a->queries, "queries file: BEIR .jsonl, qid<TAB>text, or TREC topics");
    cmd->add_option("--qrels", a->qrels, "training qrels file");
    cmd->add_flag("--tune", a->tune, "choose k, sigma, temperature, lambda on a validation part of the training queries");
    cmd->add_option("--validation-fraction", a->validation_fraction, "share of training queries held out by --tune")
        ->capture_default_str();
    cmd->add_option("--seed", a->seed, "seed of the --tune split")->capture_default_str();
    cmd->add_option("--knn", a->options.k, "training queries (nearest neighbours) whose residuals correct a query")
        ->capture_default_str();
    AddDeprecatedAlias(cmd, "--k", "--knn", &a->options.k);
    cmd->add_option("--sigma", a->options.sigma, "neighbour softmax temperature")->capture_default_str();
    cmd->add_option("--temperature", a->options.temperature, "calibration temperature")->capture_default_str();
    cmd->add_option("--lambda", a->options.lambda, "correction weight")->capture_default_str();
    cmd->add_option("--correct-depth", a->options.depth, "candidates corrected per query")->capture_default_str();
    AddDeprecatedAlias(cmd, "--depth", "--correct-depth", &a->options.depth);
    AddChoice<ResMemNeighbours>(cmd, "--neighbours", &a->options.neighbours,
                                {{"bm25", ResMemNeighbours::kBm25}, {"dense", ResMemNeighbours::kDense}},
                                "how neighbouring training queries are found: bm25 (between texts) or dense (the "
                                "collection's encoder; needs `quarry index --encoder`)",
                                "bm25");
    cmd->add_flag("--json", a->json, "print JSON");
    commands->emplace_back(cmd, [a] { return Build(*a); });
  }
  {
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = resmem->add_subcommand("info", "Print the stored memory's parameters and size");
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_flag("--json", *json, "print JSON");
    commands->emplace_back(cmd, [dir, json] {
      auto c = Collection::Open(*dir, {.create_if_missing = false, .read_only = true});
      if (!c.ok()) return Fail(c.status());
      auto info = (*c)->resmem().Info();
      if (!info.ok()) return Fail(info.status());
      const auto& [o, n] = *info;
      if (*json) {
        std::printf("%s\n", DumpJson({{"training_queries", n}, {"options", OptionsJson(o)}}).c_str());
      } else {
        std::printf("%zu training queries: %s\n", n, OptionsText(o).c_str());
      }
      return kExitOk;
    });
  }
}

}  // namespace quarry::cli
