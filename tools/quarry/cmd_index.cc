// quarry index DIR --rerank-cache MODEL_DIR: build the decoupled BlockRank document caches.
#include <chrono>
#include <cstdio>
#include <memory>

#include "quarry/collection.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

void AddIndexCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  struct Args {
    std::string dir;
    RerankFlags rerank;
    bool half = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "index",
      "Build derived indexes. --rerank-cache MODEL_DIR encodes every document's BlockRank block once (decoupled\n"
      "mode: the prompt's instruction holds no query) so that reranking computes only the query block.");
  cmd->add_option("DIR", a->dir, "collection directory")->required();
  AddRerankFlags(cmd, &a->rerank, "--rerank-cache");
  cmd->add_flag("--half-precision", a->half, "store the caches as f16 (half the bytes; scores within ~2e-4)");
  commands->emplace_back(cmd, [a] {
    if (a->rerank.model.empty()) {
      std::fprintf(stderr, "quarry index: give --rerank-cache MODEL_DIR\n");
      return kExitUsage;
    }
    auto c = Collection::Open(a->dir, {});
    if (!c.ok()) return Fail(c.status());
    const auto start = std::chrono::steady_clock::now();
    auto n = (*c)->BuildRerankCache(a->rerank.model, a->rerank.options, a->half);
    if (!n.ok()) return Fail(n.status());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("cached %llu document blocks (scoring layer %d, %s) in %.2f s\n", static_cast<unsigned long long>(*n),
                a->rerank.options.scoring_layer, a->half ? "f16" : "f32", s);
    return kExitOk;
  });
}

}  // namespace quarry::cli
