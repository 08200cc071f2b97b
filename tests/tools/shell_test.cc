// quarry shell: golden output for scripted sessions, JSON lines without a terminal, and a session on a
// pseudo-terminal that exercises line editing, tab completion and history across sessions.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "tests/test_util.h"

namespace quarry {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

using testing::kCli;
using testing::kTiny;

class ShellTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_ / "col";
    auto r = RunCommand(ShellQuote(kCli) + " ingest " + ShellQuote(dir_) + " --beir " + ShellQuote(kTiny));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  testing::CommandResult Script(const std::string& input, const std::string& flags) {
    testing::WriteFile(tmp_ / "input", input);
    return RunCommand(ShellQuote(kCli) + " shell " + ShellQuote(dir_) + " " + flags + " < " + ShellQuote(tmp_ / "input"));
  }
  testing::TempDir tmp_;
  std::string dir_;
};

// A scripted session in the terminal format (tests/data/transcripts/shell_session.txt). BM25 scores as
// Lucene 8.7 computes them for this corpus ("heart": d2 0.2681024, d0 0.23703472, ...).
TEST_F(ShellTest, ScriptedSessionTranscript) {
  const std::string input =
      "heart\n:k 2\nstatins\n:explain\n:resmem on\n:mode dense\n:rerank on\n:set k 0\n:bogus\n:doc d2\n"
      ":set fusion linear\n:set alpha 0.3\n:set alpha 2\n:quit\nnever read\n";
  testing::WriteFile(tmp_ / "input", input);
  testing::Transcript t(tmp_.path());
  std::istringstream lines(input);
  for (std::string line; std::getline(lines, line);) t.Note("input: " + line);
  auto r = t.Run("shell " + ShellQuote(dir_) + " --text --no-timings < " + ShellQuote(tmp_ / "input"));
  EXPECT_EQ(r.exit_code, 5) << "some lines were answered with errors";
  testing::ExpectTranscript("shell_session", t.text());
}

TEST_F(ShellTest, WithoutATerminalItAnswersInJsonLines) {
  auto r = Script("statins\n:k 1\n\ncoronary disease\n:explain\n", "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(answers.size(), 4u) << r.out;
  EXPECT_EQ(answers[0]["query"], "statins");
  EXPECT_EQ(answers[0]["hits"].size(), 2u);
  EXPECT_EQ(answers[0]["hits"][0]["id"], "d4");
  EXPECT_TRUE(answers[0].contains("timings"));
  EXPECT_GE(answers[0]["timings"]["retrieve_ms"].get<double>(), 0.0);
  EXPECT_TRUE(answers[0]["timings"].contains("rerank_ms"));
  EXPECT_EQ(answers[1]["k"], 1);
  EXPECT_EQ(answers[2]["hits"].size(), 1u);
  EXPECT_EQ(answers[2]["hits"][0]["id"], "d6");
  EXPECT_FLOAT_EQ(answers[3]["explain"][0]["bm25"].get<float>(), answers[2]["hits"][0]["score"].get<float>());
}

TEST_F(ShellTest, RerankOnWithAModel) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-mistral");
  auto r = Script(":rerank on\nheart\n:explain\n:rerank depth 2\n:rerank off\n",
                  "--rerank-model " + ShellQuote(model) + " --scoring-layer 2 --no-timings");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(answers.size(), 5u) << r.out;
  EXPECT_EQ(answers[0]["rerank"], true);
  EXPECT_EQ(answers[1]["hits"].size(), 4u);
  for (const auto& hit : answers[2]["explain"]) EXPECT_TRUE(hit.contains("rerank")) << hit;
  EXPECT_EQ(answers[3]["rerank_depth"], 2);
  EXPECT_EQ(answers[4]["rerank"], false);
}

// Drives `quarry shell` on a pseudo-terminal, as a person would type.
class Pty {
 public:
  // The shell runs in `state_dir` (its working directory too) with XDG_STATE_HOME pointing there.
  Pty(const std::string& dir, const std::string& state_dir) {
    struct winsize ws = {24, 200, 0, 0};
    std::filesystem::create_directories(state_dir);
    pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);
      setenv("NO_COLOR", "1", 1);
      setenv("XDG_STATE_HOME", state_dir.c_str(), 1);
      if (chdir(state_dir.c_str()) != 0) _exit(126);
      execl(kCli.c_str(), "quarry", "shell", dir.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Types `keys` once the shell has been quiet for 100 ms: a key pressed while libedit switches the
  // terminal between cooked and raw mode can be lost by the line discipline (Ctrl-D especially).
  void Type(const std::string& keys) {
    Drain(100);
    ASSERT_EQ(write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  // Reads until `needle` has appeared in the output since the last call (or 10 s pass).
  bool WaitFor(const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen_.find(needle, from_) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      struct pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[4096];
        const ssize_t n = read(fd_, buf, sizeof buf);
        if (n <= 0) return seen_.find(needle, from_) != std::string::npos;
        seen_.append(buf, n);
      }
    }
    from_ = seen_.find(needle, from_) + needle.size();
    return true;
  }
  // The exit status, or -1 when the shell has not exited within 10 s (it is then killed).
  int Wait() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      Drain(20);
      usleep(20000);
    }
    return -1;
  }
  // Reads whatever arrives within `ms` milliseconds.
  void Drain(int ms) {
    struct pollfd p = {fd_, POLLIN, 0};
    while (poll(&p, 1, ms) > 0) {
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return;
      seen_.append(buf, n);
    }
  }
  const std::string& output() const { return seen_; }

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string seen_;
  size_t from_ = 0;
};

TEST_F(ShellTest, LineEditingCompletionAndHistoryOnATerminal) {
  const std::string state = tmp_ / "state";
  {
    Pty pty(dir_, state);
    ASSERT_TRUE(pty.WaitFor("quarry> ")) << pty.output();
    pty.Type("musclx\x7f" "e\r");  // a typo fixed with backspace
    ASSERT_TRUE(pty.WaitFor("The heart is a muscle.")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("time: retrieve")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type("stat\x1b[D\x1b[D\x1b[D\x1b[Dx\r");  // cursor left 4 times, insert at the front: "xstat"
    ASSERT_TRUE(pty.WaitFor("no hits")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type(":hel\t\r");  // tab completes :help
    ASSERT_TRUE(pty.WaitFor(":explain")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    // Tab after ":k " offers nothing: libedit's fallback would insert the working directory's one entry
    // ("quarry/") and make the line ":k quarry/5".
    pty.Type(":k \t5\r");
    ASSERT_TRUE(pty.WaitFor("k = 5")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type("muscle\r");
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type(":doc \t\r");  // completes the only id of the last results
    ASSERT_TRUE(pty.WaitFor("id: d2")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type(":quit\r");
    EXPECT_EQ(pty.Wait(), 0) << pty.output();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/shell_history")) << "no history inside the collection";
  const std::string history = testing::ReadFile(state + "/quarry/shell_history");
  EXPECT_NE(history.find("muscle"), std::string::npos) << history;
  EXPECT_NE(history.find("xstat"), std::string::npos) << history;
  {
    Pty pty(dir_, state);  // a new session recalls the earlier one's lines
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type("\x1b[A\x1b[A\x1b[A\x1b[A\r");  // up four times: :quit, :doc d2, muscle, :k 5
    ASSERT_TRUE(pty.WaitFor("k = 5")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type("\x04");  // Ctrl-D leaves
    EXPECT_EQ(pty.Wait(), 0) << pty.output();
  }
}

// libedit keeps multibyte characters only in a UTF-8 locale; the shell sets one whatever the
// environment holds (here none: LANG and LC_ALL unset), so "café" is searched and stored as typed.
TEST_F(ShellTest, NonAsciiInputSurvivesLineEditing) {
  unsetenv("LANG");
  unsetenv("LC_ALL");
  unsetenv("LC_CTYPE");
  const std::string state = tmp_ / "state";
  {
    Pty pty(dir_, state);
    ASSERT_TRUE(pty.WaitFor("quarry> ")) << pty.output();
    pty.Type("caf\xc3\xa9 na\xc3\xafve muscle\r");
    ASSERT_TRUE(pty.WaitFor("The heart is a muscle.")) << pty.output();
    ASSERT_TRUE(pty.WaitFor("quarry> "));
    pty.Type(":quit\r");
    EXPECT_EQ(pty.Wait(), 0) << pty.output();
  }
  const std::string history = testing::ReadFile(state + "/quarry/shell_history");
  // (libedit's history file writes a space as \040.)
  EXPECT_NE(history.find("caf\xc3\xa9\\040na\xc3\xafve\\040muscle"), std::string::npos) << history;
}

// Without a terminal, a line the shell cannot answer (invalid UTF-8) gets an error line, and the
// session goes on.
TEST_F(ShellTest, AnInvalidLineGetsAnErrorAndTheSessionGoesOn) {
  auto r = testing::RunCommand("printf 'bad \\377 query\\nmuscle\\n' | " + testing::ShellQuote(kCli) + " shell " +
                               testing::ShellQuote(dir_) + " --json");
  EXPECT_EQ(r.exit_code, 5) << r.err;
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(answers.size(), 2u) << r.out;
  EXPECT_NE(answers[0].value("error", "").find("UTF-8"), std::string::npos) << answers[0];
  EXPECT_FALSE(answers[1]["hits"].empty()) << answers[1];
}

}  // namespace
}  // namespace quarry
