// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace quarry::testing {

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Absolute path of `relative` under ../shared, or "" when it is absent.
std::string SharedPath(const std::string& relative);

// Writes `content` to `path` (creating parent directories).
void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);

// Writes a version-1 .npy file as numpy.save does: `descr` ("<f4"), `shape` ("(3, 2)") and the raw data.
void WriteNpy(const std::string& path, const std::string& descr, const std::string& shape, const std::string& data);

// Runs a shell command; returns its exit status and captures stdout and stderr.
struct CommandResult {
  int exit_code;
  std::string out, err;
};
CommandResult RunCommand(const std::string& command);

// The quarry binary under test, and the repository's tiny BEIR corpus (tests/data).
inline const std::string kCli = QUARRY_CLI_PATH;
inline const std::string kTiny = std::string(QUARRY_SOURCE_DIR) + "/tests/data/tiny_corpus.jsonl";

// Runs the quarry CLI with `args` (no shell), reading its stdout line by line, and SIGKILLs it as
// soon as `stop(lines so far)` returns true. `killed` is false when it exited first.
struct KilledRun {
  bool killed = false;
  int exit_code = -1;
  std::vector<std::string> lines;
};
KilledRun RunCliUntil(const std::vector<std::string>& args,
                      const std::function<bool(const std::vector<std::string>&)>& stop);
// Of the lines of `quarry ingest --log-batches`: how many batches were acknowledged, and the input
// line through which everything is committed.
struct Acknowledged {
  unsigned long long batches = 0, through_line = 0;
};
Acknowledged ParseAcknowledged(const std::vector<std::string>& lines);

// Quotes for /bin/sh.
std::string ShellQuote(const std::string& s);

// The directory of real model NAME under $QUARRY_MODELS (default ~/.cache/quarry/models) as
// scripts/models.sh leaves it, or "" when it is not there (whole and verified).
std::string ModelPath(const std::string& name);

// Runs `quarry ARGS` through the shell (ARGS is shell text: quote paths with ShellQuote).
inline CommandResult Quarry(const std::string& args) { return RunCommand(ShellQuote(kCli) + " " + args); }

// --- Transcripts: what the CLI prints, kept in tests/data/transcripts/NAME.txt.
// Runs `quarry ARGS` and appends to the transcript "$ quarry ARGS", its stdout, its stderr (each line
// prefixed "stderr: ") and "[exit N]" when N is not 0. Returns the result for further checks.
class Transcript {
 public:
  // `tmp` (a test's temporary directory) is written "$TMP" in the transcript, the source directory "$SRC".
  explicit Transcript(std::string tmp) : tmp_(std::move(tmp)) {}
  CommandResult Run(const std::string& args);
  // Text that is not a command (a comment, a separator).
  void Note(const std::string& line) { text_ += "# " + line + "\n"; }
  const std::string& text() const { return text_; }

 private:
  std::string tmp_, text_;
};
// Expects `actual` (wall times and rates masked: "# s", "# ms", "# docs/s") to equal
// tests/data/transcripts/NAME.txt.
// With QUARRY_UPDATE_TRANSCRIPTS=1 in the environment the file is rewritten instead: review the diff
// before committing it (a figure in it must still be the reference's, e.g. Lucene's BM25 scores).
void ExpectTranscript(const std::string& name, const std::string& actual);

}  // namespace quarry::testing

// Skips the test, naming the model scripts/models.sh fetches into $QUARRY_MODELS.
#define QUARRY_REQUIRE_MODEL(var, name)                                                                \
  const std::string var = ::quarry::testing::ModelPath(name);                                        \
  if (var.empty()) GTEST_SKIP() << "model " << (name) << " is missing from $QUARRY_MODELS (~/.cache/quarry/models): " \
                                << "run scripts/models.sh " << (name) << "; skipping"

// Skips the test, naming the missing file under ../shared.
#define QUARRY_REQUIRE_SHARED(var, relative)                                                    \
  const std::string var = ::quarry::testing::SharedPath(relative);                             \
  if (var.empty()) GTEST_SKIP() << "../shared/" << (relative) << " is missing; skipping"
