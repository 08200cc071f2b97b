// quarry search DIR "query text" [-k N] [--json]
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "quarry/collection.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

namespace {

std::string Highlight(const SearchHit& hit, bool colour) {
  if (!colour) return hit.snippet;
  std::string out;
  size_t at = 0;
  for (auto [b, e] : hit.highlights) {
    out.append(hit.snippet, at, b - at);
    out += "\033[1;33m";
    out.append(hit.snippet, b, e - b);
    out += "\033[0m";
    at = e;
  }
  out.append(hit.snippet, at);
  return out;
}

}  // namespace

void AddSearchCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  struct Args {
    std::string dir, query;
    size_t k = 10;
    bool json = false, exhaustive = false, resmem = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("search", "BM25 search: ranked hits with id, score, title and a snippet");
  cmd->add_option("DIR", a->dir, "collection directory")->required();
  cmd->add_option("QUERY", a->query, "query text")->required();
  cmd->add_option("-k,--k", a->k, "number of hits")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_flag("--exhaustive", a->exhaustive, "score every posting (no pruning; same results)");
  cmd->add_flag("--resmem", a->resmem, "correct scores with the collection's ResMem memory");
  commands->emplace_back(cmd, [a] {
    auto c = Collection::Open(a->dir, {.read_only = true});
    if (!c.ok()) return Fail(c.status());
    auto hits = (*c)->Search(a->query, {.k = a->k, .exhaustive = a->exhaustive, .resmem = a->resmem});
    if (!hits.ok()) return Fail(hits.status());
    if (a->json) {
      nlohmann::json j = {{"query", a->query}, {"hits", nlohmann::json::array()}};
      int rank = 1;
      for (const auto& h : *hits) {
        j["hits"].push_back({{"rank", rank++}, {"id", h.id}, {"score", h.score}, {"title", h.title},
                             {"snippet", h.snippet}});
      }
      std::printf("%s\n", j.dump().c_str());
      return kExitOk;
    }
    const bool colour = isatty(STDOUT_FILENO);
    if (hits->empty()) std::printf("no hits\n");
    int rank = 1;
    for (const auto& h : *hits) {
      std::printf("%3d  %-12s %8.4f  %s\n", rank++, h.id.c_str(), h.score, h.title.c_str());
      std::printf("     %s\n", Highlight(h, colour).c_str());
    }
    return kExitOk;
  });
}

}  // namespace quarry::cli
