// quarry search DIR "query text" [-k N] [--json]
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "quarry/collection.h"
#include "common/json.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/mode_flags.h"
#include "tools/quarry/render.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

void AddSearchCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  struct Args {
    std::string dir, query;
    size_t k = 10;
    bool json = false, exhaustive = false, resmem = false;
    RerankFlags rerank;
    ModeFlags mode;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("search", "Search (BM25, dense or hybrid): ranked hits with id, score, title and a snippet");
  cmd->add_option("DIR", a->dir, "collection directory")->required();
  cmd->add_option("QUERY", a->query, "query text")->required();
  cmd->add_option("-k,--k", a->k, "number of hits")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_flag("--exhaustive", a->exhaustive, "score every posting (no pruning; same results)");
  cmd->add_flag("--resmem", a->resmem, "correct scores with the collection's ResMem memory");
  AddRerankFlags(cmd, &a->rerank);
  AddModeFlags(cmd, &a->mode);
  commands->emplace_back(cmd, [a] {
    auto c = Collection::Open(a->dir, {.read_only = true});
    if (!c.ok()) return Fail(c.status());
    if (!a->rerank.model.empty()) {
      if (Status s = (*c)->LoadReranker(a->rerank.model, a->rerank.options); !s.ok()) return Fail(s);
    }
    SearchOptions options{.k = a->k, .exhaustive = a->exhaustive, .resmem = a->resmem,
                          .rerank = !a->rerank.model.empty()};
    a->mode.ApplyTo(&options);
    auto hits = (*c)->Search(a->query, options);
    if (!hits.ok()) return Fail(hits.status());
    if (a->json) {
      const nlohmann::json j = {{"query", a->query}, {"hits", HitsJson(*hits)}};
      std::printf("%s\n", DumpJson(j).c_str());
      return kExitOk;
    }
    PrintHits(stdout, *hits, isatty(STDOUT_FILENO) != 0);
    return kExitOk;
  });
}

}  // namespace quarry::cli
