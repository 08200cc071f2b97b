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

// The command words of argv (`quarry hr trian ...`) checked against the command tree: CLI11 alone would
// answer "A subcommand is required". Returns the usage exit code after naming the closest command, or -1
// when every word that must be a command is one.
int UnknownCommand(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::string path;  // the command words so far ("hr ")
  for (int i = 1; i < argc; ++i) {
    const auto subs = at->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty() || argv[i][0] == '-') return -1;  // a command's own arguments, or a flag
    const std::string word = argv[i];
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : subs) {
      if (sub->get_name() == word) next = sub;
      names.push_back(sub->get_name());
    }
    if (!next) {
      const std::string best = ClosestMatch(word, names);
      std::fprintf(stderr, "quarry: unknown command '%s%s'%s; `quarry %s--help` lists the commands\n", path.c_str(),
                   word.c_str(), best.empty() ? "" : (" (did you mean '" + path + best + "'?)").c_str(), path.c_str());
      return kExitUsage;
    }
    at = next;
    path += word + " ";
  }
  return -1;
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
  if (const int code = UnknownCommand(app, argc, argv); code >= 0) return code;
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
