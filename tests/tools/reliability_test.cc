// Regression tests of the reliability findings: hostile inputs, damaged stores, interrupted and failed
// writes, concurrent processes. Each one failed (crashed, lost data, or answered wrongly) before the fix
// it guards.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/coding.h"
#include "model/wordpiece.h"
#include "quarry/collection.h"
#include "storage/store.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
using testing::kCli;
using testing::ShellQuote;
using testing::TempDir;

using testing::Quarry;

// An error the way the CLI should give one: the exit code of a Status (3 or 5..9: not 1, an internal
// error, nor a signal), a message, and no "internal error".
bool IsStatusExitCode(int code) { return code == 3 || (code >= 5 && code <= 9); }
void ExpectCleanError(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_TRUE(IsStatusExitCode(r.exit_code)) << r.exit_code << r.out << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

std::string Ingested(const TempDir& tmp, const std::string& name = "c") {
  const std::string dir = tmp / name;
  EXPECT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(testing::kTiny)).exit_code, 0);
  return dir;
}

std::string Npy(uint8_t version, uint32_t header_len, const std::string& header, const std::string& data) {
  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(version);
  bytes += '\0';
  for (int i = 0; i < (version == 1 ? 2 : 4); ++i) bytes += static_cast<char>((header_len >> (8 * i)) & 0xff);
  return bytes + header + data;
}

TEST(Reliability, NpyHeadersAreBoundedByTheFile) {
  TempDir tmp;
  const std::string dir = Ingested(tmp);
  testing::WriteFile(tmp / "ids.txt", "d0\nd1\n");
  const std::string shape_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (30, 33554432), }\n";
  const std::string wrapping_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 9223372036854775808), }\n";
  const struct {
    std::string name, bytes, needle;
  } cases[] = {
      {"huge-header.npy", Npy(2, 0xFFFFFFF0u, "{", ""), "header claims"},
      {"huge-shape.npy", Npy(1, static_cast<uint32_t>(shape_header.size()), shape_header, std::string(1000, '\0')), "needs more"},
      {"wrapping-shape.npy", Npy(1, static_cast<uint32_t>(wrapping_header.size()), wrapping_header, "12345678"), "too large"},
  };
  for (const auto& c : cases) {
    testing::WriteFile(tmp / c.name, c.bytes);
    ExpectCleanError(Quarry("import-vectors " + ShellQuote(dir) + " " + ShellQuote(tmp / c.name) + " --ids " +
                            ShellQuote(tmp / "ids.txt")),
                     c.needle);
  }
  EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
}

TEST(Reliability, BadFactoryStringsAreErrorsAndChangeNothing) {
  TempDir tmp;
  const std::string dir = Ingested(tmp);
  std::string ids, data;
  for (int i = 0; i < 7; ++i) {
    ids += "d" + std::to_string(i) + "\n";
    for (int k = 0; k < 4; ++k) {
      const float x = static_cast<float>(i * 4 + k);
      data.append(reinterpret_cast<const char*>(&x), 4);
    }
  }
  testing::WriteFile(tmp / "ids.txt", ids);
  testing::WriteNpy(tmp / "v.npy", "<f4", "(7, 4)", data);
  ASSERT_EQ(Quarry("import-vectors " + ShellQuote(dir) + " " + ShellQuote(tmp / "v.npy") + " --ids " + ShellQuote(tmp / "ids.txt")).exit_code, 0);
  ASSERT_EQ(Quarry("index " + ShellQuote(dir) + " --faiss Flat").exit_code, 0);
  for (const char* factory : {"SOAR99999999999999999999", "HNSW0", "IVF0,Flat", "NoSuchIndex"}) {
    auto r = Quarry("index " + ShellQuote(dir) + " --faiss " + factory);
    EXPECT_TRUE(IsStatusExitCode(r.exit_code)) << factory << r.exit_code << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  }
  // The configuration is as it was: ingest and dense search still work.
  auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(nlohmann::json::parse(stats.out)["dense"]["factory"], "Flat");
  EXPECT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(testing::kTiny)).exit_code, 0);
  EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
}

TEST(Reliability, DeeplyNestedJsonIsAnErrorNamingTheLine) {
  TempDir tmp;
  const std::string deep(100000, '['), closed(100000, ']');
  testing::WriteFile(tmp / "corpus.jsonl", "{\"_id\": \"ok\", \"text\": \"fine\"}\n{\"_id\": \"x\", \"text\": \"t\", \"metadata\": " +
                                               deep + closed + "}\n");
  ExpectCleanError(Quarry("ingest " + ShellQuote(tmp / "c") + " --beir " + ShellQuote(tmp / "corpus.jsonl")),
                   "corpus.jsonl:2: JSON nested deeper");
  testing::WriteFile(tmp / "queries.jsonl", "{\"_id\": " + deep + closed + ", \"text\": \"q\"}\n");
  testing::WriteFile(tmp / "qrels.tsv", "q 0 ok 1\n");
  ExpectCleanError(Quarry("eval " + ShellQuote(tmp / "c") + " --queries " + ShellQuote(tmp / "queries.jsonl") +
                          " --qrels " + ShellQuote(tmp / "qrels.tsv")),
                   "queries.jsonl:1");
}

TEST(Reliability, AMissingCurrentFileIsNeverReplacedByAnEmptyDatabase) {
  TempDir tmp;
  const std::string dir = Ingested(tmp);
  const std::string current = testing::ReadFile(dir + "/CURRENT");
  fs::remove(dir + "/CURRENT");
  for (int attempt = 0; attempt < 2; ++attempt) {
    ExpectCleanError(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(testing::kTiny)), "CURRENT file is missing");
  }
  EXPECT_FALSE(fs::exists(dir + "/CURRENT")) << "no new database was created";
  testing::WriteFile(dir + "/CURRENT", current);  // restored: everything is there
  auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(nlohmann::json::parse(stats.out)["documents"], 7);
}

// Damage in the middle of the WAL (the only copy of batches not yet flushed) is an error at open,
// not a silent truncation.
TEST(Reliability, ADamagedWalIsReportedNotTruncated) {
  TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 3000; ++i) corpus += "{\"_id\": \"d" + std::to_string(i) + "\", \"text\": \"text number " + std::to_string(i) + "\"}\n";
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  const std::string dir = tmp / "c";
  // Killed when done (before it closes, which would flush the memtables): the batches live in the WAL.
  auto run = testing::RunCliUntil({"ingest", dir, "--beir", tmp / "corpus.jsonl", "--batch-docs", "500", "--log-batches"},
                                  [](const auto& lines) { return testing::ParseAcknowledged(lines).batches >= 6; });
  ASSERT_EQ(testing::ParseAcknowledged(run.lines).batches, 6u);
  std::string wal;
  uint64_t largest = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log" && e.file_size() > largest) wal = e.path(), largest = e.file_size();
  }
  ASSERT_GT(largest, 10000u) << "no WAL with the batches in it";
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(largest / 3));
    f.write("\xde\xad\xbe\xef", 4);
  }
  auto check = Quarry("check " + ShellQuote(dir));
  EXPECT_NE(check.exit_code, 0) << check.out;
  EXPECT_NE(check.err.find("orruption"), std::string::npos) << check.err;
  auto ingest = Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(testing::kTiny));
  EXPECT_NE(ingest.exit_code, 0) << "a writer must not open it either, and so make the loss permanent";
}

// A model that gives a late document a non-finite embedding: tiny-bert with one word's embedding
// row set to NaN (a copy in the test's directory).
std::string ModelWithANanWord(const TempDir& tmp, const std::string& bert, const std::string& word) {
  const std::string dir = tmp / "nan-bert";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "vocab.txt"}) fs::copy_file(bert + "/" + f, dir + "/" + f);
  std::string st = testing::ReadFile(bert + "/model.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, st.data(), 8);
  const auto header = nlohmann::json::parse(st.substr(8, header_len));
  const auto& t = header.at("embeddings.word_embeddings.weight");
  EXPECT_EQ(t.at("dtype"), "F32");
  const int64_t hidden = t.at("shape")[1];
  auto tokenizer = model::WordPieceTokenizer::Load(bert);
  EXPECT_TRUE(tokenizer.ok());
  const auto ids = (*tokenizer)->Encode(word);
  EXPECT_EQ(ids.size(), 3u) << word << " should be one word piece";
  const uint64_t row = static_cast<uint64_t>(ids[1]);
  const uint64_t offset = 8 + header_len + t.at("data_offsets")[0].get<uint64_t>() + row * hidden * 4;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t k = 0; k < hidden; ++k) std::memcpy(st.data() + offset + k * 4, &nan, 4);
  testing::WriteFile(dir + "/model.safetensors", st);
  return dir;
}

TEST(Reliability, AFailedOrNonFiniteEncodingKeepsTheOldVectors) {
  QUARRY_REQUIRE_SHARED(bert, "fixtures/tiny-bert");
  TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 600; ++i) corpus += "{\"_id\": \"d" + std::to_string(i) + "\", \"text\": \"the cell of a gene\"}\n";
  corpus += "{\"_id\": \"late\", \"text\": \"the cancer\"}\n";
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  const std::string dir = tmp / "c";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "corpus.jsonl")).exit_code, 0);
  ASSERT_EQ(Quarry("index " + ShellQuote(dir) + " --encoder " + ShellQuote(bert)).exit_code, 0);
  auto before = Quarry("search " + ShellQuote(dir) + " 'gene cell' --mode dense --json");
  ASSERT_EQ(before.exit_code, 0) << before.err;
  const std::string nan_model = ModelWithANanWord(tmp, bert, "cancer");
  // A rebuild with the model fails on the last document: nothing it did is kept.
  ExpectCleanError(Quarry("index " + ShellQuote(dir) + " --encoder " + ShellQuote(nan_model)), "non-finite");
  auto after = Quarry("search " + ShellQuote(dir) + " 'gene cell' --mode dense --json");
  ASSERT_EQ(after.exit_code, 0) << after.err;
  auto hits = [](const std::string& out) {
    auto j = nlohmann::json::parse(out);
    j.erase("timings");
    return j.dump();
  };
  EXPECT_EQ(hits(after.out), hits(before.out));
  EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
  // An upsert whose embedding is not finite is refused whole.
  {
    auto c = Collection::Open(tmp / "nan-collection", {.create_if_missing = true});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Upsert({{"a", "", "the cell", ""}}).ok());
    ASSERT_TRUE((*c)->dense().Build({.encoder = nan_model}).ok());
    const Status s = (*c)->Upsert({{"b", "", "the cancer", ""}});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_FALSE((*c)->Get("b")->has_value());
    EXPECT_EQ((*c)->dense().Info()->n_vectors, 1u);
  }
}

TEST(Reliability, ANewFactoryKeepsTheEncoderAndSurvivesAnInterruptedFirstEncoding) {
  QUARRY_REQUIRE_SHARED(bert, "fixtures/tiny-bert");
  TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 8000; ++i) corpus += "{\"_id\": \"d" + std::to_string(i) + "\", \"text\": \"the cell of a gene number " + std::to_string(i) + "\"}\n";
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  const std::string dir = tmp / "c";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "corpus.jsonl")).exit_code, 0);
  // The first `index --encoder`, killed half-way through the time a complete one takes on a copy.
  fs::copy(dir, tmp / "copy", fs::copy_options::recursive);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Quarry("index " + ShellQuote(tmp / "copy") + " --encoder " + ShellQuote(bert)).exit_code, 0);
  const auto full = std::chrono::steady_clock::now() - t0;
  const pid_t pid = fork();
  if (pid == 0) {
    execl(kCli.c_str(), "quarry", "index", dir.c_str(), "--encoder", bert.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(full / 2);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the encoding finished before it was killed";
  EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
  // Vectors of another dim import and index cleanly (the interrupted ones are in no configuration).
  std::string ids, data;
  for (int i = 0; i < 3; ++i) {
    ids += "d" + std::to_string(i) + "\n";
    for (int k = 0; k < 3; ++k) data.append(4, static_cast<char>(i + k));
  }
  testing::WriteFile(tmp / "ids.txt", ids);
  testing::WriteNpy(tmp / "v.npy", "<f4", "(3, 3)", data);
  EXPECT_EQ(Quarry("import-vectors " + ShellQuote(dir) + " " + ShellQuote(tmp / "v.npy") + " --ids " + ShellQuote(tmp / "ids.txt")).exit_code, 0);
  EXPECT_EQ(Quarry("index " + ShellQuote(dir) + " --faiss Flat").exit_code, 0);
  EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
  // With an encoder configured, a new --faiss keeps it.
  ASSERT_EQ(Quarry("index " + ShellQuote(dir) + " --encoder " + ShellQuote(bert)).exit_code, 0);
  ASSERT_EQ(Quarry("index " + ShellQuote(dir) + " --faiss HNSW16").exit_code, 0);
  auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
  ASSERT_EQ(stats.exit_code, 0);
  EXPECT_NE(nlohmann::json::parse(stats.out)["dense"]["encoder"].get<std::string>(), "") << stats.out;
  EXPECT_EQ(Quarry("search " + ShellQuote(dir) + " gene --mode dense").exit_code, 0);
}

TEST(Reliability, HierarchicalTrainingAgainWithAnotherDimReplacesTheEmbeddings) {
  TempDir tmp;
  std::string edges;
  for (int i = 1; i < 60; ++i) edges += "n" + std::to_string((i - 1) / 3) + "\tn" + std::to_string(i) + "\n";
  testing::WriteFile(tmp / "edges.tsv", edges);
  const std::string dir = tmp / "hr";
  for (int dim : {8, 16}) {
    auto r = Quarry("hr train " + ShellQuote(dir) + " --edges " + ShellQuote(tmp / "edges.tsv") + " --dim " +
                    std::to_string(dim) + " --epochs 2 --finetune-epochs 1 --quiet");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
    ASSERT_EQ(stats.exit_code, 0);
    const auto j = nlohmann::json::parse(stats.out);
    EXPECT_EQ(j["dense"]["dim"], dim);
    EXPECT_EQ(j["dense"]["vectors"], 60);
    EXPECT_EQ(Quarry("hr search " + ShellQuote(dir) + " n7").exit_code, 0);
    EXPECT_EQ(Quarry("check " + ShellQuote(dir)).exit_code, 0);
  }
  EXPECT_EQ(Quarry("hr search " + ShellQuote(dir) + " n7 -k 0").err.find("faiss"), std::string::npos);
  // Node names that cannot be document ids fail before any training.
  testing::WriteFile(tmp / "bad.tsv", edges + "n1\tname with spaces\n");
  const auto t0 = std::chrono::steady_clock::now();
  ExpectCleanError(Quarry("hr train " + ShellQuote(tmp / "bad") + " --edges " + ShellQuote(tmp / "bad.tsv") + " --quiet"),
                   "cannot be a document id");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_FALSE(fs::exists(tmp / "bad/CURRENT"));
}

TEST(Reliability, RunsAndQrelsAreCheckedAsTrecEvalChecksThem) {
  TempDir tmp;
  testing::WriteFile(tmp / "qrels.txt", "q1 0 d1 1\nq1 0 d2 1\n");
  testing::WriteFile(tmp / "dup.trec", "q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\nq1 Q0 d2 3 0.5 t\n");
  ExpectCleanError(Quarry("eval --qrels " + ShellQuote(tmp / "qrels.txt") + " --run " + ShellQuote(tmp / "dup.trec")),
                   "dup.trec:2");
  testing::WriteFile(tmp / "dup-qrels.txt", "q1 0 d1 1\nq1 0 d1 0\n");
  testing::WriteFile(tmp / "ok.trec", "q1 Q0 d1 1 2.0 t\n");
  ExpectCleanError(Quarry("eval --qrels " + ShellQuote(tmp / "dup-qrels.txt") + " --run " + ShellQuote(tmp / "ok.trec")),
                   "dup-qrels.txt:2");
}

TEST(Reliability, IdsARunCannotHoldAreRefusedAndByteOrderMarksIgnored) {
  TempDir tmp;
  testing::WriteFile(tmp / "spaces.jsonl", "{\"_id\": \"a b\", \"text\": \"x\"}\n");
  ExpectCleanError(Quarry("ingest " + ShellQuote(tmp / "c") + " --beir " + ShellQuote(tmp / "spaces.jsonl")), "spaces.jsonl:1");
  testing::WriteFile(tmp / "bom.tsv", "\xef\xbb\xbf" "p1\tfirst passage\np2\tsecond\n");
  ASSERT_EQ(Quarry("ingest " + ShellQuote(tmp / "m") + " --msmarco " + ShellQuote(tmp / "bom.tsv")).exit_code, 0);
  EXPECT_EQ(Quarry("get " + ShellQuote(tmp / "m") + " p1").exit_code, 0) << "the first id has no byte order mark";
  testing::WriteFile(tmp / "queries.tsv", "q1\tfirst\nq1\tagain\n");
  testing::WriteFile(tmp / "qrels.txt", "q1 0 p1 1\n");
  ExpectCleanError(Quarry("eval " + ShellQuote(tmp / "m") + " --queries " + ShellQuote(tmp / "queries.tsv") + " --qrels " +
                          ShellQuote(tmp / "qrels.txt")),
                   "queries.tsv:2");
}

TEST(Reliability, NonFiniteAndOutOfRangeOptionsAreRefused) {
  TempDir tmp;
  const std::string dir = Ingested(tmp);
  testing::WriteFile(tmp / "b/queries.jsonl", "{\"_id\": \"t1\", \"text\": \"heart\"}\n");
  testing::WriteFile(tmp / "b/qrels/train.tsv", "query-id\tcorpus-id\tscore\nt1\td2\t1\n");
  ExpectCleanError(Quarry("resmem build " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "b") + " --lambda nan"), "lambda");
  EXPECT_NE(Quarry("resmem info " + ShellQuote(dir)).exit_code, 0) << "nothing was stored";
  for (const char* k : {"4294967296", "18446744073709551615"}) {
    auto r = Quarry("search " + ShellQuote(dir) + " heart -k " + k + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  auto fused = Quarry("search " + ShellQuote(dir) + " heart --fusion-depth 4000000000 --json");
  EXPECT_EQ(fused.err.find("bad_alloc"), std::string::npos) << fused.err;
}

TEST(Reliability, ConfigErrorsNameTheFileAndField) {
  TempDir tmp;
  testing::WriteFile(tmp / "m/config.json", "{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": \"big\"}");
  testing::WriteFile(tmp / "c/x", "");
  const std::string dir = Ingested(tmp, "col");
  ExpectCleanError(Quarry("index " + ShellQuote(dir) + " --encoder " + ShellQuote(tmp / "m")), "'hidden_size'");
  testing::WriteFile(tmp / "m/config.json", "{\"model_type\": 7}");
  ExpectCleanError(Quarry("index " + ShellQuote(dir) + " --encoder " + ShellQuote(tmp / "m")), "'model_type'");
}

TEST(Reliability, ADamagedRerankCacheIsReportedAndEncodedAgain) {
  QUARRY_REQUIRE_SHARED(mistral, "fixtures/tiny-mistral");
  TempDir tmp;
  const std::string dir = Ingested(tmp);
  ASSERT_EQ(Quarry("index " + ShellQuote(dir) + " --rerank-cache " + ShellQuote(mistral) + " --scoring-layer 2").exit_code, 0);
  {
    StoreOptions options;
    options.extra_column_families = {"rerank_cache"};
    auto store = Store::Open(dir, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    rocksdb::WriteBatch batch;
    batch.Put((*store)->cf("rerank_cache"), EncodeFixed32BE(0), std::string("\x01\x00\x05\xff\xff", 5));
    ASSERT_TRUE((*store)->Write(&batch, true).ok());
  }
  auto check = Quarry("check " + ShellQuote(dir));
  EXPECT_EQ(check.exit_code, 4);
  EXPECT_NE(check.err.find("rerank_cache"), std::string::npos) << check.err;
  auto search = Quarry("search " + ShellQuote(dir) + " 'heart muscle' --rerank-model " + ShellQuote(mistral) +
                       " --scoring-layer 2 --query-in-instruction false");
  EXPECT_EQ(search.exit_code, 0) << search.err;
}

// Processes that read while another writes see one consistent state each: check always passes,
// searches never fail.
TEST(Reliability, ReaderProcessesDuringAnIngestSeeConsistentStates) {
  TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 40000; ++i) corpus += "{\"_id\": \"d" + std::to_string(i) + "\", \"text\": \"statin heart number " + std::to_string(i % 300) + "\"}\n";
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  const std::string dir = tmp / "c";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(testing::kTiny)).exit_code, 0);
  const pid_t writer = fork();
  if (writer == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execl(kCli.c_str(), "quarry", "ingest", dir.c_str(), "--beir", (tmp / "corpus.jsonl").c_str(), "--batch-docs", "200",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int checks = 0, failures = 0;
  std::string last_error;
  for (;;) {
    int status = 0;
    const bool done = waitpid(writer, &status, WNOHANG) == writer;
    for (const std::string& cmd : {"check " + ShellQuote(dir), "search " + ShellQuote(dir) + " 'statin heart' -k 20"}) {
      auto r = Quarry(cmd);
      ++checks;
      if (r.exit_code != 0) ++failures, last_error = cmd + ": " + r.out + r.err;
    }
    if (done) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      break;
    }
  }
  EXPECT_GT(checks, 4);
  EXPECT_EQ(failures, 0) << last_error;
}

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

// A full disk (a 24 MiB tmpfs) stops an ingest with an IO error naming it, never an abort, and what
// was committed before stays intact and checks out.
TEST(Reliability, AFullDiskIsAnErrorNotACrash) {
  TempDir tmp;
  const std::string mount = tmp / "small";
  fs::create_directories(mount);
  if (std::system(("mount -t tmpfs -o size=24m tmpfs " + ShellQuote(mount) + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root); skipping";
  }
  std::string corpus;
  for (int i = 0; i < 100000; ++i) corpus += "{\"_id\": \"d" + std::to_string(i) + "\", \"text\": \"" + std::string(200, 'a' + i % 26) + " words\"}\n";
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  const std::string dir = mount + "/c";
  auto r = Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "corpus.jsonl"));
  EXPECT_EQ(r.exit_code, 7) << "IO error" << r.out << r.err;
  EXPECT_NE(r.err.find("disk full"), std::string::npos) << r.err;
  auto check = Quarry("check " + ShellQuote(dir));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  std::system(("umount " + ShellQuote(mount)).c_str());
}

}  // namespace
}  // namespace quarry
