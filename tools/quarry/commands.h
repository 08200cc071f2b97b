// Subcommands of the `quarry` CLI. Each Add* registers its options on `app` and returns the action
// to run when that subcommand was chosen. Actions return the process exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "quarry/status.h"

namespace quarry::cli {

// Exit codes (documented in README and `quarry --help`): one per StatusCode, so that a script can tell
// bad input from a missing file from a damaged collection without parsing stderr.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // an internal error (a broken dependency or environment)
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitNotFound = 3;     // an id, file, collection or tensor that is not there
inline constexpr int kExitCheckFailed = 4;  // `quarry check` found problems
inline constexpr int kExitInvalidInput = 5;  // malformed input: a bad line, option value or shape
inline constexpr int kExitCorruption = 6;    // stored data that fails its checks
inline constexpr int kExitIOError = 7;       // the operating system or RocksDB failed to read or write
inline constexpr int kExitAlreadyExists = 8;
inline constexpr int kExitFailedPrecondition = 9;  // not valid in the collection's state (e.g. no dense index)

// The exit code of a failed Status (kExitOk for OK).
int ExitCode(StatusCode code);

using Action = std::function<int()>;

void AddStoreCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddSearchCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddEvalCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddRerankCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddIndexCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddShellCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddHrCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddResMemCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);

// Prints "quarry: <code name>: <message>" on stderr and returns the code's exit code.
int Fail(const Status& status);

// --- The flag vocabulary shared by every command (README "Command line"): DIR is the first positional;
// -k/--k is hits returned per query; --rerank-depth candidates reranked; --json prints one JSON object.

// A count that must be at least 1: "-k 0" answers "--k: must be at least 1 (got 0)".
inline CLI::Validator AtLeastOne() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        size_t used = 0;
        unsigned long long n = 0;
        try {
          n = std::stoull(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != value.size() || value.empty() || value[0] == '-' || n == 0) {
          return "must be at least 1 (got " + value + ")";
        }
        return "";
      },
      "", "at least 1");
}

// An option taking one of `choices` by name (case-insensitive); --help shows "{bm25,dense,hybrid}=bm25"
// and a bad value is "--mode: 'hybird' is not one of bm25, dense, hybrid (did you mean 'hybrid'?)".
template <typename T>
CLI::Option* AddChoice(CLI::App* cmd, const std::string& flags, T* value,
                       const std::vector<std::pair<std::string, T>>& choices, const std::string& help,
                       const std::string& default_name) {
  std::vector<std::string> names;
  for (const auto& [name, v] : choices) names.push_back(name);
  std::string listed, braced;
  for (const auto& name : names) {
    listed += (listed.empty() ? "" : ", ") + name;
    braced += (braced.empty() ? "" : ",") + name;
  }
  // The name becomes the enumerator's number, which CLI11 then reads into `value`.
  auto to_value = [choices, names, listed](std::string& input) -> std::string {
    std::string lower;
    for (char c : input) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [name, v] : choices) {
      if (name == lower) {
        input = std::to_string(static_cast<long long>(v));
        return "";
      }
    }
    const std::string best = ClosestMatch(lower, names);
    return "'" + input + "' is not one of " + listed + (best.empty() ? "" : " (did you mean '" + best + "'?)");
  };
  return cmd->add_option(flags, *value, help)
      ->transform(CLI::Validator(to_value, "", "choice"))
      ->type_name("{" + braced + "}")
      ->default_str(default_name);
}

// An old spelling kept working: it sets the same variable, is hidden from --help, and prints a
// deprecation note on stderr when used.
template <typename T>
void AddDeprecatedAlias(CLI::App* cmd, const std::string& old_flag, const std::string& new_flag, T* value) {
  cmd->add_option(old_flag, *value)->group("")->each([old_flag, new_flag](const std::string&) {
    std::fprintf(stderr, "quarry: %s is deprecated; use %s\n", old_flag.c_str(), new_flag.c_str());
  });
}

}  // namespace quarry::cli
