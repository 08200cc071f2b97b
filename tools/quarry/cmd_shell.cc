// quarry shell DIR: type text to search; ':' commands change settings. Line editing, history and tab
// completion (libedit) on a terminal; without one, a query per stdin line and a JSON line per answer.
#include <editline/readline.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <clocale>

#include <nlohmann/json.hpp>

#include "quarry/engine.h"
#include "common/json.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/render.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

const char* const kCommands[] = {":k", ":mode", ":rerank", ":resmem", ":explain", ":doc", ":stats",
                                 ":set", ":help", ":quit", nullptr};
const char* const kSettings[] = {"k", "mode", "fusion", "alpha", "rerank", "rerank.depth", "resmem", "timings", "colour",
                                 nullptr};

const char kHelp[] =
    "Type text to search. Commands:\n"
    "  :k N                      hits per query\n"
    "  :mode bm25|dense|hybrid   first-stage retrieval (dense needs `quarry index DIR --encoder MODEL`)\n"
    "  :rerank on|off|depth N    BlockRank reranking of the top N (needs --rerank-model)\n"
    "  :resmem on|off            correct scores with the collection's ResMem memory\n"
    "  :explain                  per-stage scores of the last results\n"
    "  :doc ID                   show a document (Tab completes the ids of the last results)\n"
    "  :stats                    collection statistics\n"
    "  :set KEY VALUE            k, mode, fusion (rrf|linear), alpha (linear fusion's dense weight), rerank,\n"
    "                            rerank.depth, resmem, timings (on|off), colour (on|off)\n"
    "  :help                     this text\n"
    "  :quit                     leave (also Ctrl-D)\n";

struct Settings {
  size_t k = 10;
  std::string mode = "bm25";
  std::string fusion = "rrf";
  float alpha = 0.5f;
  bool rerank = false;
  size_t rerank_depth = 100;
  bool resmem = false;
  bool timings = true;
  bool colour = false;
};

// The outcome of one input line: text for the terminal, an object for JSON mode.
struct Reply {
  bool ok = true;
  std::string text;
  nlohmann::json json;
};

bool ParseOnOff(const std::string& v, bool* out) {
  if (v == "on" || v == "true" || v == "1") return *out = true, true;
  if (v == "off" || v == "false" || v == "0") return *out = false, true;
  return false;
}

class Shell {
 public:
  Shell(std::unique_ptr<Engine> engine, Settings settings, RerankFlags rerank)
      : engine_(std::move(engine)), s_(settings), rerank_(std::move(rerank)) {
    s_.rerank_depth = rerank_.options.depth;
  }

  Reply Handle(const std::string& line) {
    if (line.empty() || line[0] != ':') return Search(line);
    std::istringstream in(line.substr(1));
    std::string cmd, arg, value;
    in >> cmd >> arg;
    std::getline(in >> std::ws, value);
    if (cmd == "k") return Set("k", arg);
    if (cmd == "mode") return Set("mode", arg);
    if (cmd == "resmem") return Set("resmem", arg);
    if (cmd == "rerank") return arg == "depth" ? Set("rerank.depth", value) : Set("rerank", arg);
    if (cmd == "set") return Set(arg, value);
    if (cmd == "explain") return Explain();
    if (cmd == "doc") return Doc(arg);
    if (cmd == "stats") return Stats();
    if (cmd == "help") return {true, kHelp, {{"help", kHelp}}};
    return Error("unknown command ':" + cmd + "' (:help lists them)");
  }

  // Handle, but a line that fails in an unexpected way is answered with an error and the session goes on.
  Reply HandleSafely(const std::string& line) {
    try {
      return Handle(line);
    } catch (const std::exception& e) {
      return Error(std::string("internal error: ") + e.what());
    }
  }

  bool colour() const { return s_.colour; }
  // The ids of the last results, best first (what :doc completes).
  std::vector<std::string> LastIds() const {
    std::vector<std::string> ids;
    for (const auto& h : last_) ids.push_back(h.id);
    return ids;
  }

 private:
  static Reply Error(const std::string& message) { return {false, "error: " + message + "\n", {{"error", message}}}; }
  static Reply Note(const std::string& message, nlohmann::json j) { return {true, message + "\n", std::move(j)}; }

  Reply Set(const std::string& key, const std::string& value) {
    if (key == "k") {
      char* end = nullptr;
      const long k = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end || k <= 0 || k > 10000) return Error("k must be an integer in 1..10000");
      s_.k = static_cast<size_t>(k);
      return Note("k = " + std::to_string(s_.k), {{"k", s_.k}});
    }
    if (key == "mode") {
      if (value == "bm25") {
        s_.mode = value;
        return Note("mode = bm25", {{"mode", "bm25"}});
      }
      if (value == "dense" || value == "hybrid") {
        auto info = engine_->collection().dense().Info();
        if (!info.ok()) return Error(info.status().message());
        if (info->encoder.empty()) {
          return Error("mode '" + value + "' needs an encoder; this collection's vectors were imported");
        }
        s_.mode = value;
        return Note("mode = " + value, {{"mode", value}});
      }
      return Error("mode is one of bm25, dense, hybrid");
    }
    if (key == "fusion") {
      if (value != "rrf" && value != "linear") return Error("fusion is rrf or linear");
      s_.fusion = value;
      return Note("fusion = " + value, {{"fusion", value}});
    }
    if (key == "alpha") {
      char* end = nullptr;
      const double alpha = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || !(alpha >= 0 && alpha <= 1)) return Error("alpha is a number in [0, 1]");
      s_.alpha = static_cast<float>(alpha);
      std::ostringstream shown;
      shown << s_.alpha;
      return Note("alpha = " + shown.str(), {{"alpha", s_.alpha}});
    }
    if (key == "rerank") {
      bool on;
      if (!ParseOnOff(value, &on)) return Error("rerank is on or off (or :rerank depth N)");
      if (on && !engine_->collection().rerank().loaded()) {
        return Error("no reranker loaded (start the shell with --rerank-model DIR)");
      }
      s_.rerank = on;
      return Note(std::string("rerank = ") + (on ? "on" : "off"), {{"rerank", on}});
    }
    if (key == "rerank.depth") {
      char* end = nullptr;
      const long d = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end || d <= 0) return Error("rerank depth must be a positive integer");
      s_.rerank_depth = static_cast<size_t>(d);
      if (!rerank_.model.empty()) {  // the depth belongs to the loaded reranker: load it again
        rerank_.options.depth = s_.rerank_depth;
        if (Status st = engine_->collection().rerank().Load(rerank_.model, rerank_.options); !st.ok()) {
          return Error(st.message());
        }
      }
      return Note("rerank depth = " + std::to_string(s_.rerank_depth), {{"rerank_depth", s_.rerank_depth}});
    }
    if (key == "resmem") {
      bool on;
      if (!ParseOnOff(value, &on)) return Error("resmem is on or off");
      if (on) {
        auto info = engine_->collection().resmem().Info();
        if (!info.ok()) return Error(info.status().message());
      }
      s_.resmem = on;
      return Note(std::string("resmem = ") + (on ? "on" : "off"), {{"resmem", on}});
    }
    if (key == "timings" || key == "colour") {
      bool on;
      if (!ParseOnOff(value, &on)) return Error(key + " is on or off");
      (key == "timings" ? s_.timings : s_.colour) = on;
      return Note(key + " = " + (on ? "on" : "off"), {{key, on}});
    }
    return Error("unknown setting '" + key + "' (k, mode, fusion, alpha, rerank, rerank.depth, resmem, timings, colour)");
  }

  Reply Search(const std::string& query) {
    SearchOptions options{.k = s_.k, .resmem = s_.resmem, .rerank = s_.rerank};
    options.mode = s_.mode == "dense"    ? RetrievalMode::kDense
                   : s_.mode == "hybrid" ? RetrievalMode::kHybrid
                                         : RetrievalMode::kBm25;
    options.fusion = s_.fusion == "linear" ? Fusion::kLinear : Fusion::kRrf;
    options.alpha = s_.alpha;
    auto result = engine_->Search(query, options);
    if (!result.ok()) return Error(result.status().message());
    last_ = result->hits;
    Reply r;
    char* buf = nullptr;
    size_t size = 0;
    FILE* mem = open_memstream(&buf, &size);
    PrintHits(mem, result->hits, s_.colour);
    std::fclose(mem);
    r.text.assign(buf, size);
    std::free(buf);
    r.json = {{"query", query}, {"hits", HitsJson(result->hits)}};
    if (s_.timings) {
      r.text += TimingsLine(result->timings) + "\n";
      r.json["timings"] = TimingsJson(result->timings);
    }
    return r;
  }

  Reply Explain() {
    if (last_.empty()) return Error("no results to explain (search first)");
    std::string text;
    nlohmann::json hits = nlohmann::json::array();
    char line[256];
    for (size_t i = 0; i < last_.size(); ++i) {
      const auto& h = last_[i];
      const auto& st = h.stages;
      std::snprintf(line, sizeof line, "%3zu  %-12s bm25 ", i + 1, h.id.c_str());
      text += line;
      text += std::isnan(st.bm25) ? std::string("      -") : (std::snprintf(line, sizeof line, "%7.4f", st.bm25), line);
      nlohmann::json j = {{"rank", i + 1}, {"id", h.id}, {"final", h.score}};
      if (!std::isnan(st.bm25)) j["bm25"] = st.bm25;
      if (!std::isnan(st.dense)) {
        std::snprintf(line, sizeof line, "  dense %.4f", st.dense);
        text += line;
        j["dense"] = st.dense;
      }
      if (!std::isnan(st.rerank)) {
        std::snprintf(line, sizeof line, "  rerank %.4f", st.rerank);
        text += line;
        j["rerank"] = st.rerank;
      }
      if (!std::isnan(st.resmem_base)) {
        std::snprintf(line, sizeof line, "  resmem base %.4f %+.4f", st.resmem_base, st.resmem_correction);
        text += line;
        j["resmem_base"] = st.resmem_base;
        j["resmem_correction"] = st.resmem_correction;
      }
      std::snprintf(line, sizeof line, "  final %.4f\n", h.score);
      text += line;
      hits.push_back(std::move(j));
    }
    return {true, text, {{"explain", hits}}};
  }

  Reply Doc(const std::string& id) {
    if (id.empty()) return Error(":doc needs an id");
    auto doc = engine_->collection().Get(id);
    if (!doc.ok()) return Error(doc.status().message());
    if (!*doc) return Error("no document with id '" + id + "'");
    const Document& d = **doc;
    std::string text = "id: " + d.id + "\ntitle: " + d.title + "\ntext: " + d.text + "\n";
    if (!d.metadata.empty()) text += "metadata: " + d.metadata + "\n";
    return {true, text, {{"doc", {{"id", d.id}, {"title", d.title}, {"text", d.text}}}}};
  }

  Reply Stats() {
    auto s = engine_->collection().Stats();
    if (!s.ok()) return Error(s.status().message());
    std::string text = "documents " + std::to_string(s->n_docs) + ", indexed terms " + std::to_string(s->lex_sum_ttf) +
                       ", disk " + std::to_string(s->disk_bytes) + " bytes; k " + std::to_string(s_.k) + ", mode " +
                       s_.mode + ", rerank " + (s_.rerank ? "on" : "off") + ", resmem " + (s_.resmem ? "on" : "off") +
                       "\n";
    return {true, text, {{"documents", s->n_docs}, {"indexed_terms", s->lex_sum_ttf}, {"k", s_.k},
                         {"mode", s_.mode}, {"resmem", s_.resmem}}};
  }

  std::unique_ptr<Engine> engine_;
  Settings s_;
  RerankFlags rerank_;
  std::vector<SearchHit> last_;
};

// Tab completion: commands after ':', setting names after ':set ', values after ':mode ' and friends.
char* CompleteFrom(const char* const* words, const char* text, int state) {
  static size_t index, len;
  if (state == 0) index = 0, len = std::strlen(text);
  while (const char* w = words[index]) {
    ++index;
    if (std::strncmp(w, text, len) == 0) return strdup(w);
  }
  return nullptr;
}
const char* const* completion_words = kCommands;
char* CompletionGenerator(const char* text, int state) { return CompleteFrom(completion_words, text, state); }

const Shell* completing_shell = nullptr;  // the interactive session's shell (for :doc's ids)
std::vector<std::string> completion_ids;
std::vector<const char*> completion_id_words;

// Words after ':doc ', ':set KEY ', ':mode ' and friends; never file names (libedit's fallback).
char** Complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;
  static const char* const kModes[] = {"bm25", "dense", "hybrid", nullptr};
  static const char* const kOnOff[] = {"on", "off", nullptr};
  static const char* const kRerank[] = {"on", "off", "depth", nullptr};
  static const char* const kFusions[] = {"rrf", "linear", nullptr};
  const std::string before(rl_line_buffer, start);
  if (start == 0) completion_words = kCommands;
  else if (before == ":set ") completion_words = kSettings;
  else if (before == ":mode ") completion_words = kModes;
  else if (before == ":resmem ") completion_words = kOnOff;
  else if (before == ":rerank ") completion_words = kRerank;
  else if (before == ":set mode ") completion_words = kModes;
  else if (before == ":set fusion ") completion_words = kFusions;
  else if (before == ":set resmem " || before == ":set rerank " || before == ":set timings " || before == ":set colour ") {
    completion_words = kOnOff;
  } else if (before == ":doc " && completing_shell) {
    completion_ids = completing_shell->LastIds();
    completion_id_words.clear();
    for (const auto& id : completion_ids) completion_id_words.push_back(id.c_str());
    completion_id_words.push_back(nullptr);
    completion_words = completion_id_words.data();
  } else {
    return nullptr;
  }
  return rl_completion_matches(text, CompletionGenerator);
}

int RunInteractive(Shell& shell, const std::string& history_path) {
  // libedit reads multibyte characters only in the environment's locale; in the "C" locale it
  // drops every non-ASCII byte ("café" was searched as "caf").
  if (const char* locale = std::setlocale(LC_CTYPE, ""); !locale || !std::strstr(locale, "UTF-8")) {
    std::setlocale(LC_CTYPE, "C.UTF-8");  // collections are UTF-8 whatever the environment says
  }
  rl_readline_name = "quarry";
  rl_attempted_completion_function = Complete;
  completing_shell = &shell;
  using_history();
  if (!history_path.empty()) read_history(history_path.c_str());
  std::printf("Quarry shell: type a query, :help for commands, :quit to leave.\n");
  for (;;) {
    char* raw = readline("quarry> ");
    if (!raw) {  // Ctrl-D
      std::printf("\n");
      break;
    }
    std::string line(raw);
    std::free(raw);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line = line.substr(first);
    add_history(line.c_str());
    if (!history_path.empty()) write_history(history_path.c_str());
    if (line == ":quit" || line == ":q") break;
    const Reply r = shell.HandleSafely(line);
    std::fputs(r.text.c_str(), stdout);
    std::fflush(stdout);
  }
  return kExitOk;
}

// Exit status: 0 when every line was answered, kExitInvalidInput when any was answered with an error
// (so that a script piping queries in notices).
int RunScript(Shell& shell, bool json) {
  bool failed = false;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line = line.substr(first);
    if (line == ":quit" || line == ":q") break;
    const Reply r = shell.HandleSafely(line);
    failed |= !r.ok;
    if (json) std::printf("%s\n", DumpJson(r.json).c_str());
    else std::fputs(r.text.c_str(), stdout);
    std::fflush(stdout);
  }
  return failed ? kExitInvalidInput : kExitOk;
}

// $XDG_STATE_HOME/quarry/shell_history (default ~/.local/state/quarry/shell_history), its folder
// created; empty (no history kept) without a home. Never inside the collection, which may be read-only
// or shared.
std::string DefaultHistoryPath() {
  std::filesystem::path base;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) base = state;
  else if (const char* home = std::getenv("HOME"); home && *home) base = std::filesystem::path(home) / ".local/state";
  else return "";
  std::error_code ec;
  std::filesystem::create_directories(base / "quarry", ec);
  return ec ? "" : (base / "quarry" / "shell_history").string();
}

}  // namespace

void AddShellCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  struct Args {
    std::string dir, history;
    size_t k = 10;
    bool json = false, text = false, no_timings = false;
    RerankFlags rerank;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "shell",
      "Interactive search. On a terminal: line editing, history and tab completion.\n"
      "Otherwise: one query or :command per stdin line, one JSON line per answer (--text for the terminal format);\n"
      "exits 5 if any line was answered with an error.");
  cmd->add_option("DIR", a->dir, "collection directory")->required();
  cmd->add_option("-k,--k", a->k, "hits per query")->capture_default_str()->check(AtLeastOne());
  auto* json = cmd->add_flag("--json", a->json, "JSON lines even on a terminal");
  cmd->add_flag("--text", a->text, "the terminal format even without a terminal")->excludes(json);
  cmd->add_flag("--no-timings", a->no_timings, "leave out per-stage timings");
  cmd->add_option("--history", a->history, "history file (default: $XDG_STATE_HOME/quarry/shell_history)");
  AddRerankFlags(cmd, &a->rerank);
  commands->emplace_back(cmd, [a] {
    auto engine = Engine::Open(a->dir);
    if (!engine.ok()) return Fail(engine.status());
    const bool terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    Settings settings;
    settings.k = a->k;
    settings.timings = !a->no_timings;
    settings.colour = isatty(STDOUT_FILENO) != 0 && std::getenv("NO_COLOR") == nullptr;
    if (!a->rerank.model.empty()) {
      if (Status s = (*engine)->collection().rerank().Load(a->rerank.model, a->rerank.options); !s.ok()) return Fail(s);
    }
    Shell shell(std::move(*engine), settings, a->rerank);
    if (terminal && !a->json) return RunInteractive(shell, a->history.empty() ? DefaultHistoryPath() : a->history);
    return RunScript(shell, !a->text);
  });
}

}  // namespace quarry::cli
