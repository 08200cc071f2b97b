// Fault injection: every write command is SIGKILLed at seeded random moments, on a fresh copy of a
// prepared collection each time. Afterwards the collection must open, `quarry check` must pass, and
// what searches see must be the state before the command or after it completed (for ingest, which
// commits batch by batch: before, or after some whole batches).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "quarry/collection.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
using testing::kCli;

// What searches see, as one string: BM25 hits, dense hits for a fixed vector, counts and configs.
std::string Fingerprint(const std::string& dir) {
  auto c = Collection::Open(dir, {.read_only = true});
  if (!c.ok()) return "open failed: " + c.status().ToString();
  std::string out;
  for (const std::string q : {"statin cholesterol heart", "liver disease", "word7 common", "dog puppy"}) {
    auto hits = (*c)->Search(q, {.k = 10, .hydrate = false});
    out += q + ":";
    if (!hits.ok()) return "search failed: " + hits.status().ToString();
    for (const auto& h : *hits) out += " " + h.id + "=" + std::to_string(h.score);
    out += "\n";
  }
  auto stats = (*c)->Stats();
  if (stats.ok()) out += "docs " + std::to_string(stats->n_docs) + "\n";
  if (auto info = (*c)->dense().Info(); info.ok()) {
    out += "dense " + std::to_string(info->dim) + " " + info->factory + " " + info->encoder + " " +
           std::to_string(info->n_vectors) + "\n";
    std::vector<float> query(info->dim, 0.25f);
    auto hits = (*c)->SearchVector(query, {.k = 5, .hydrate = false});
    if (!hits.ok()) return "dense search failed: " + hits.status().ToString();
    for (const auto& h : *hits) out += " " + h.id;
    out += "\n";
  }
  if (auto memory = (*c)->resmem().Info(); memory.ok()) out += "resmem " + std::to_string(memory->second) + "\n";
  return out;
}

// Runs the CLI and SIGKILLs it after `delay`; true when it was killed (not finished first).
bool RunKilledAfter(const std::vector<std::string>& args, std::chrono::microseconds delay) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    std::vector<char*> argv{const_cast<char*>("quarry")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kCli.c_str(), argv.data());
    _exit(127);
  }
  std::this_thread::sleep_for(delay);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

double SecondsToRun(const std::vector<std::string>& args) {
  std::string cmd = testing::ShellQuote(kCli);
  for (const auto& a : args) cmd += " " + testing::ShellQuote(a);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = testing::RunCommand(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    // 1,500 documents in batches of 100 (so ingest commits many batches and merges segments), with a
    // few words the queries above find.
    corpus_ = tmp_ / "corpus.jsonl";
    std::ofstream out(corpus_);
    const char* words[] = {"statin", "cholesterol", "heart", "liver", "disease", "risk", "dose", "trial"};
    std::mt19937 rng(3);
    for (int i = 0; i < 1500; ++i) {
      out << "{\"_id\": \"doc" << i << "\", \"title\": \"\", \"text\": \"word" << i % 11 << " common";
      for (int w = 0; w < 6; ++w) out << " " << words[rng() % 8];
      out << "\"}\n";
    }
    out.close();
    base_ = tmp_ / "base";
    ASSERT_EQ(testing::RunCommand(testing::ShellQuote(kCli) + " ingest " + base_ + " --beir " + corpus_ +
                                  " --batch-docs 300").exit_code, 0);
  }

  std::string Copy(const std::string& from, const std::string& name) {
    const std::string to = tmp_ / name;
    fs::remove_all(to);
    fs::copy(from, to, fs::copy_options::recursive);
    return to;
  }

  // SIGKILLs `args` (with DIR substituted by a fresh copy of `start`) at `points` seeded moments spread
  // over the command's running time; each time the collection must check out and look like one of
  // `allowed` (fingerprints), plus the fingerprints of `start` and of the completed command.
  void KillAt(const std::string& start, std::vector<std::string> args, int points, std::set<std::string> allowed = {}) {
    const std::string before = Fingerprint(start);
    const std::string done = Copy(start, "done");
    auto with_dir = [&](const std::string& dir) {
      auto a = args;
      for (auto& s : a) {
        if (s == "DIR") s = dir;
      }
      return a;
    };
    const double seconds = SecondsToRun(with_dir(done));
    allowed.insert(before);
    allowed.insert(Fingerprint(done));
    std::mt19937 rng(static_cast<unsigned>(points * 7 + args.size()));
    int killed = 0;
    for (int p = 0; p < points; ++p) {
      const std::string dir = Copy(start, "killed");
      const auto delay = std::chrono::microseconds(
          static_cast<int64_t>(1e6 * seconds * std::uniform_real_distribution<>(0.05, 1.0)(rng)));
      killed += RunKilledAfter(with_dir(dir), delay);
      auto check = testing::RunCommand(testing::ShellQuote(kCli) + " check " + testing::ShellQuote(dir));
      EXPECT_EQ(check.exit_code, 0) << args[0] << " killed after " << delay.count() << " us:\n" << check.out << check.err;
      const std::string seen = Fingerprint(dir);
      EXPECT_TRUE(allowed.count(seen)) << args[0] << " killed after " << delay.count() << " us left a state that is "
                                       << "neither before nor after:\n" << seen;
    }
    EXPECT_GT(killed, 0) << args[0] << ": every run finished before its kill";
  }

  testing::TempDir tmp_;
  std::string corpus_, base_;
};

TEST_F(FaultInjection, Ingest) {
  // Re-ingesting the corpus with other texts in batches of 100: any number of whole batches may be in.
  const std::string changed = tmp_ / "changed.jsonl";
  {
    std::ifstream in(corpus_);
    std::ofstream out(changed);
    int n = 0;
    for (std::string line; std::getline(in, line); ++n) {
      const size_t at = line.find("common");
      out << line.substr(0, at) << "dog puppy common" << line.substr(at + 6) << "\n";
    }
  }
  std::set<std::string> prefixes;
  for (int batches = 1; batches <= 15; ++batches) {
    const std::string dir = Copy(base_, "prefix");
    const std::string part = tmp_ / "part.jsonl";
    ASSERT_EQ(std::system(("head -n " + std::to_string(batches * 100) + " " + changed + " > " + part).c_str()), 0);
    SecondsToRun({"ingest", dir, "--beir", part, "--batch-docs", "100"});
    prefixes.insert(Fingerprint(dir));
  }
  KillAt(base_, {"ingest", "DIR", "--beir", changed, "--batch-docs", "100"}, 8, prefixes);
}

TEST_F(FaultInjection, DeleteAndCompact) {
  const std::string dir = Copy(base_, "deleted");
  for (int i = 0; i < 40; ++i) SecondsToRun({"delete", dir, "doc" + std::to_string(i * 17)});
  KillAt(base_, {"delete", "DIR", "doc5"}, 4);
  KillAt(dir, {"compact", "DIR"}, 6);
}

TEST_F(FaultInjection, ImportVectorsAndIndex) {
  // 1,500 x 8 vectors (seeded), then FAISS indexes over them.
  std::string data, ids;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 1500; ++i) {
    for (int k = 0; k < 8; ++k) {
      const float x = normal(rng);
      data.append(reinterpret_cast<const char*>(&x), 4);
    }
    ids += "doc" + std::to_string(i) + "\n";
  }
  testing::WriteNpy(tmp_ / "v.npy", "<f4", "(1500, 8)", data);
  testing::WriteFile(tmp_ / "ids.txt", ids);
  KillAt(base_, {"import-vectors", "DIR", tmp_ / "v.npy", "--ids", tmp_ / "ids.txt"}, 5);
  const std::string with_vectors = Copy(base_, "vectors");
  SecondsToRun({"import-vectors", with_vectors, tmp_ / "v.npy", "--ids", tmp_ / "ids.txt"});
  KillAt(with_vectors, {"index", "DIR", "--faiss", "HNSW16"}, 5);
  KillAt(with_vectors, {"index", "DIR", "--faiss", "IVF16,Flat", "--nprobe", "4"}, 5);
}

TEST_F(FaultInjection, IndexWithAnEncoder) {
  QUARRY_REQUIRE_SHARED(bert, "fixtures/tiny-bert");
  KillAt(base_, {"index", "DIR", "--encoder", bert}, 6);
  const std::string indexed = Copy(base_, "indexed");
  SecondsToRun({"index", indexed, "--encoder", bert});
  KillAt(indexed, {"index", "DIR", "--encoder", bert, "--pooling", "mean", "--faiss", "HNSW16"}, 6);
}

TEST_F(FaultInjection, ResMemBuildAndRerankCache) {
  // Training queries and qrels over the corpus.
  testing::WriteFile(tmp_ / "beir/queries.jsonl",
                     "{\"_id\": \"t1\", \"text\": \"statin heart\"}\n{\"_id\": \"t2\", \"text\": \"liver dose\"}\n");
  testing::WriteFile(tmp_ / "beir/qrels/train.tsv", "query-id\tcorpus-id\tscore\nt1\tdoc3\t1\nt2\tdoc8\t1\n");
  KillAt(base_, {"resmem", "build", "DIR", "--beir", tmp_ / "beir", "--k", "2"}, 5);
  QUARRY_REQUIRE_SHARED(mistral, "fixtures/tiny-mistral");
  const std::string small = tmp_ / "small";
  ASSERT_EQ(testing::RunCommand(testing::ShellQuote(kCli) + " ingest " + small + " --beir " + testing::kTiny).exit_code, 0);
  KillAt(small, {"index", "DIR", "--rerank-cache", mistral, "--scoring-layer", "2"}, 5);
}

TEST_F(FaultInjection, HierarchicalTraining) {
  std::string edges;
  for (int i = 1; i < 400; ++i) edges += "n" + std::to_string((i - 1) / 3) + "\tn" + std::to_string(i) + "\n";
  testing::WriteFile(tmp_ / "edges.tsv", edges);
  const std::string empty = tmp_ / "hr";
  ASSERT_EQ(testing::RunCommand(testing::ShellQuote(kCli) + " init " + empty).exit_code, 0);
  KillAt(empty, {"hr", "train", "DIR", "--edges", tmp_ / "edges.tsv", "--dim", "8", "--epochs", "2",
                 "--finetune-epochs", "1", "--quiet"}, 5);
}

}  // namespace
}  // namespace quarry
