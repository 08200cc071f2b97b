// quarry: the command-line interface to Quarry collections.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/json.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

int Fail(const Status& status) {
  std::fprintf(stderr, "quarry: %s\n", status.message().c_str());
  return kExitError;
}

std::string JsonQuote(const std::string& s) { return DumpJson(nlohmann::json(s)); }

}  // namespace quarry::cli

int main(int argc, char** argv) {
  using namespace quarry::cli;
  CLI::App app{
      "Quarry: an embeddable retrieval and in-context ranking engine.\n"
      "A collection is a directory holding a RocksDB database of documents and indexes.\n"
      "Exit codes: 0 success, 1 error (message on stderr), 2 bad usage, 3 id not found, 4 check failed."};
  app.name("quarry");
  app.require_subcommand(1);
  app.set_version_flag("--version", "quarry 0.1.0");
  std::vector<std::pair<CLI::App*, Action>> commands;
  AddStoreCommands(app, &commands);
  AddSearchCommands(app, &commands);
  AddEvalCommands(app, &commands);
  AddResMemCommands(app, &commands);
  AddShellCommands(app, &commands);
  AddRerankCommands(app, &commands);
  AddIndexCommands(app, &commands);
  AddHrCommands(app, &commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  for (auto& [sub, action] : commands) {
    if (sub->parsed()) {
      try {
        return action();
      } catch (const std::exception& e) {  // last resort: never die with an uncaught exception
        std::fprintf(stderr, "quarry: internal error: %s\n", e.what());
        return kExitError;
      }
    }
  }
  return kExitUsage;
}
