// Subcommands of the `quarry` CLI. Each Add* registers its options on `app` and returns the action
// to run when that subcommand was chosen. Actions return the process exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "quarry/status.h"

namespace quarry::cli {

// Exit codes (documented in README and `quarry --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // bad input, I/O or corruption: message on stderr
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitNotFound = 3;  // get/delete of an id that is not there
inline constexpr int kExitCheckFailed = 4;

using Action = std::function<int()>;

void AddStoreCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddSearchCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddEvalCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddRerankCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddIndexCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddShellCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddHrCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);
void AddResMemCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands);

// Prints "quarry: <message>" on stderr and returns kExitError.
int Fail(const Status& status);
// JSON string escaping for hand-built output.
std::string JsonQuote(const std::string& s);

}  // namespace quarry::cli
