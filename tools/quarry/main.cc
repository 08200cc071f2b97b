// quarry: the command-line interface to Quarry collections.
#include <cstdio>
#include <string>
#include <vector>

#include "common/strings.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

int ExitCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitInvalidInput;
    case StatusCode::kNotFound: return kExitNotFound;
    case StatusCode::kCorruption: return kExitCorruption;
    case StatusCode::kIOError: return kExitIOError;
    case StatusCode::kAlreadyExists: return kExitAlreadyExists;
    case StatusCode::kFailedPrecondition: return kExitFailedPrecondition;
    case StatusCode::kInternal: return kExitError;
  }
  return kExitError;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "quarry: %s\n", status.ToString().c_str());
  return ExitCode(status.code());
}

namespace {

// A first word that names no command: CLI11 alone would answer "A subcommand is required".
// Returns the usage exit code after naming the closest commands, or -1 when `word` is a command.
int UnknownCommand(const CLI::App& app, const std::string& word) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == word) return -1;
    names.push_back(sub->get_name());
  }
  const std::string best = ClosestMatch(word, names);
  std::fprintf(stderr, "quarry: unknown command '%s'%s; `quarry --help` lists the commands\n", word.c_str(),
               best.empty() ? "" : (" (did you mean '" + best + "'?)").c_str());
  return kExitUsage;
}

}  // namespace

}  // namespace quarry::cli

int main(int argc, char** argv) {
  using namespace quarry::cli;
  CLI::App app{
      "Quarry: an embeddable retrieval and in-context ranking engine.\n"
      "A collection is a directory holding a RocksDB database of documents and indexes.\n"
      "Exit codes: 0 success, 1 internal error, 2 bad usage, 3 not found (id, file, collection),\n"
      "4 check found problems, 5 invalid input, 6 corruption, 7 I/O error, 8 already exists,\n"
      "9 failed precondition (e.g. no dense index); errors go to stderr with their code name."};
  app.name("quarry");
  app.require_subcommand(1);
  app.set_version_flag("--version", "quarry " QUARRY_VERSION);
  std::vector<std::pair<CLI::App*, Action>> commands;
  AddStoreCommands(app, &commands);
  AddSearchCommands(app, &commands);
  AddEvalCommands(app, &commands);
  AddResMemCommands(app, &commands);
  AddShellCommands(app, &commands);
  AddRerankCommands(app, &commands);
  AddIndexCommands(app, &commands);
  AddHrCommands(app, &commands);
  if (argc > 1 && argv[1][0] != '-') {
    if (const int code = UnknownCommand(app, argv[1]); code >= 0) return code;
  }
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
