#include "tests/test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace quarry::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "quarry-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string SharedPath(const std::string& relative) {
  const fs::path p = fs::path(QUARRY_SHARED_DIR) / relative;
  std::error_code ec;
  return fs::exists(p, ec) ? fs::canonical(p, ec).string() : std::string();
}

std::string ModelPath(const std::string& name) {
  const char* env = std::getenv("QUARRY_MODELS");
  const char* home = std::getenv("HOME");
  const fs::path dir = env && *env ? fs::path(env) : fs::path(home ? home : "/") / ".cache/quarry/models";
  std::error_code ec;
  // scripts/models.sh writes .quarry-verified last: a directory without it is not a whole model.
  return fs::exists(dir / name / ".quarry-verified", ec) ? (dir / name).string() : std::string();
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

void WriteNpy(const std::string& path, const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';  // numpy pads the header to a multiple of 64
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  WriteFile(path, bytes + header + data);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult RunCommand(const std::string& command) {
  TempDir tmp;
  // The command's own redirections (e.g. "< input") take precedence inside the subshell.
  const std::string full = "(" + command + ") >" + tmp.path() + "/out 2>" + tmp.path() + "/err </dev/null";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(tmp.path() + "/out");
  r.err = ReadFile(tmp.path() + "/err");
  return r;
}

KilledRun RunCliUntil(const std::vector<std::string>& args,
                      const std::function<bool(const std::vector<std::string>&)>& stop) {
  KilledRun run;
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::vector<char*> argv{const_cast<char*>("quarry")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kCli.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  FILE* from_child = fdopen(fds[0], "r");
  char line[4096];
  while (!stop(run.lines) && std::fgets(line, sizeof line, from_child)) run.lines.emplace_back(line);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  std::fclose(from_child);
  run.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

Acknowledged ParseAcknowledged(const std::vector<std::string>& lines) {
  Acknowledged a;
  for (const auto& line : lines) {
    unsigned long long index, n, total, through;
    if (std::sscanf(line.c_str(), "committed batch %llu: %llu docs, %llu total, through line %llu", &index, &n, &total,
                    &through) == 4) {
      a.through_line = through;
      ++a.batches;
    }
  }
  return a;
}

namespace {

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

}  // namespace

CommandResult Transcript::Run(const std::string& args) {
  CommandResult r = Quarry(args);
  std::string shown = "$ quarry " + args + "\n" + r.out;
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);) shown += "stderr: " + line + "\n";
  if (r.exit_code != 0) shown += "[exit " + std::to_string(r.exit_code) + "]\n";
  text_ += ReplaceAll(ReplaceAll(shown, tmp_, "$TMP"), QUARRY_SOURCE_DIR, "$SRC");
  return r;
}

void ExpectTranscript(const std::string& name, const std::string& actual) {
  // Wall times ("0.12 s", "3 ms") and rates ("598 docs/s") differ from run to run.
  static const std::regex kWallTime(R"(\b\d+(\.\d+)? (ms|s|[a-z]+/s)\b)");
  const std::string masked = std::regex_replace(actual, kWallTime, "# $2");
  const std::string path = std::string(QUARRY_SOURCE_DIR) + "/tests/data/transcripts/" + name + ".txt";
  if (const char* update = std::getenv("QUARRY_UPDATE_TRANSCRIPTS"); update && std::string(update) == "1") {
    WriteFile(path, masked);
    std::fprintf(stderr, "rewrote %s: review the diff before committing it\n", path.c_str());
    return;
  }
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " is missing: run the test with QUARRY_UPDATE_TRANSCRIPTS=1 to write it, then review it";
    return;
  }
  EXPECT_EQ(masked, ReadFile(path)) << "the CLI's output differs from " << path
                                    << " (if the change is intended: rerun with QUARRY_UPDATE_TRANSCRIPTS=1 and review the diff)";
}

}  // namespace quarry::testing
