// The quarry CLI end to end: output formats (golden text), exit codes, errors on stderr, and the
// SIGKILL durability of ingest.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "quarry/eval.h"
#include "quarry/collection.h"
#include "model/int8_gemm.h"
#include "storage/store.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

using testing::kCli;
using testing::kTiny;

using testing::Quarry;

TEST(Cli, HelpAndUsageErrors) {
  auto help = Quarry("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* cmd : {"init", "ingest", "get", "delete", "stats", "check", "search", "eval"}) {
    EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  }
  auto ingest_help = Quarry("ingest --help");
  EXPECT_EQ(ingest_help.exit_code, 0);
  EXPECT_NE(ingest_help.out.find("--skip-invalid"), std::string::npos);
  EXPECT_EQ(Quarry("").exit_code, 2);
  EXPECT_EQ(Quarry("search").exit_code, 2);
  EXPECT_EQ(Quarry("ingest x --beir a --msmarco b").exit_code, 2);
  auto bad_metric = Quarry("eval --qrels x --run y --metrics bleu@4");
  EXPECT_EQ(bad_metric.exit_code, 5) << "invalid input";
  EXPECT_NE(bad_metric.err.find("unknown metric 'bleu@4'"), std::string::npos) << bad_metric.err;
}

// What the store commands print, as a transcript (tests/data/transcripts/store_commands.txt).
TEST(Cli, StoreCommandsTranscript) {
  testing::TempDir tmp;
  testing::Transcript t(tmp.path());
  const std::string dir = tmp / "col";
  EXPECT_EQ(t.Run("init " + ShellQuote(dir)).exit_code, 0);
  EXPECT_EQ(t.Run("init " + ShellQuote(dir)).exit_code, 8) << "already exists";
  auto ingest = t.Run("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny));
  ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  EXPECT_EQ(ingest.err, "") << "no progress line when stderr is not a terminal";
  EXPECT_EQ(t.Run("get " + ShellQuote(dir) + " d3").exit_code, 0);
  EXPECT_EQ(t.Run("get " + ShellQuote(dir) + " d2 --json").exit_code, 0);
  EXPECT_EQ(t.Run("get " + ShellQuote(dir) + " nope").exit_code, 3);

  auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
  ASSERT_EQ(stats.exit_code, 0);
  auto j = nlohmann::json::parse(stats.out);
  EXPECT_EQ(j["documents"], 7);
  EXPECT_EQ(j["indexed_documents"], 6) << "d5 is all stop words";

  EXPECT_EQ(t.Run("delete " + ShellQuote(dir) + " d5").exit_code, 0);
  EXPECT_EQ(t.Run("delete " + ShellQuote(dir) + " d5").exit_code, 3);
  EXPECT_EQ(t.Run("check " + ShellQuote(dir)).exit_code, 0);
  EXPECT_EQ(t.Run("stats " + ShellQuote(tmp / "nothing")).exit_code, 3) << "not found";
  std::filesystem::create_directories(tmp / "empty");
  EXPECT_EQ(t.Run("stats " + ShellQuote(tmp / "empty")).exit_code, 3);
  testing::ExpectTranscript("store_commands", t.text());
}

// Search as printed (tests/data/transcripts/search.txt). Scores: Lucene 8.7 BM25 on the same documents
// gives 0.98075485, 0.7962226, 0.7582048 for the first query and 0.83437556 for d4 on "statins".
TEST(Cli, SearchTranscript) {
  testing::TempDir tmp;
  const std::string dir = tmp / "col";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny)).exit_code, 0);
  testing::Transcript t(tmp.path());
  EXPECT_EQ(t.Run("search " + ShellQuote(dir) + " 'cholesterol heart disease' -k 3").exit_code, 0);
  auto json = Quarry("search " + ShellQuote(dir) + " statins -k 5 --json");
  auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["hits"].size(), 2u);
  EXPECT_EQ(j["hits"][0]["id"], "d4");
  EXPECT_FLOAT_EQ(j["hits"][0]["score"].get<float>(), 0.83437556f);
  EXPECT_EQ(j["hits"][0]["score"].dump(), "0.83437556") << "printed with the digits a float has";
  EXPECT_FLOAT_EQ(j["hits"][0]["stages"]["bm25"].get<float>(), 0.83437556f);
  EXPECT_EQ(j["hits"][1]["id"], "d0");
  EXPECT_TRUE(j["timings"].contains("retrieve_ms"));
  EXPECT_EQ(t.Run("search " + ShellQuote(dir) + " 'the of'").exit_code, 0);
  testing::ExpectTranscript("search", t.text());
}

TEST(Cli, IngestErrorNamesFileAndLineAndKeepsEarlierBatches) {
  testing::TempDir tmp;
  const std::string dir = tmp / "col";
  std::string corpus = testing::ReadFile(kTiny);
  testing::WriteFile(tmp / "bad.jsonl", corpus + "{\"_id\": \"x\", \"text\": \"bad \xc3\x28 utf8\"}\n" + corpus);
  auto r = Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "bad.jsonl") + " --batch-docs 3");
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, "quarry: Invalid argument: " + (tmp / "bad.jsonl") + ":8: invalid UTF-8 at byte 26\n");
  auto stats = Quarry("stats " + ShellQuote(dir) + " --json");
  EXPECT_EQ(nlohmann::json::parse(stats.out)["documents"], 6) << "batches d0-d2 and d3-d5 committed, d6 not";
  auto skip = Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(tmp / "bad.jsonl") + " --skip-invalid --json");
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  auto j = nlohmann::json::parse(skip.out);
  EXPECT_EQ(j["skipped"], 1);
  EXPECT_EQ(j["read"], 14);
  EXPECT_EQ(testing::ReadFile(j["report"].get<std::string>()), (tmp / "bad.jsonl") + ":8: invalid UTF-8 at byte 26\n");
}

TEST(Cli, EvalPrintsTheRunsPublishedFigure) {
  QUARRY_REQUIRE_SHARED(dl19, "datasets/trec-dl-2019-passage");
  auto r = Quarry("eval --qrels " + ShellQuote(dl19 + "/qrels.txt") + " --run " + ShellQuote(dl19 + "/run.bm25.trec"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nDCG@10      0.5058\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("queries      43\n"), std::string::npos) << r.out;
  auto cmp = Quarry("eval --qrels " + ShellQuote(dl19 + "/qrels.txt") + " --run " + ShellQuote(dl19 + "/run.bm25.trec") +
                    " --compare " + ShellQuote(dl19 + "/run.bm25.trec") + " --json");
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  auto j = nlohmann::json::parse(cmp.out);
  EXPECT_EQ(j["compare"]["metrics"]["nDCG@10"]["diff"], 0.0);
  EXPECT_EQ(j["compare"]["metrics"]["nDCG@10"]["p_randomization"], 1.0);
  // trec_eval's -l 2 (TREC DL's recall and MAP): pytrec_eval with relevance_level=2 gives recall_100
  // 0.491050 and map 0.247616 on this run (tests/python/test_eval.py compares every query); nDCG stays.
  auto l2 = Quarry("eval --qrels " + ShellQuote(dl19 + "/qrels.txt") + " --run " + ShellQuote(dl19 + "/run.bm25.trec") +
                   " -m ndcg_cut.10 -m recall.100 -m map -l 2");
  ASSERT_EQ(l2.exit_code, 0) << l2.err;
  EXPECT_EQ(l2.out, "metric       value\nnDCG@10      0.5058\nRecall@100   0.4910\nMAP          0.2476\nqueries      43\n");
}

TEST(Cli, EvalReproducesPyseriniOnSciFact) {
  QUARRY_REQUIRE_SHARED(scifact, "datasets/scifact");
  testing::TempDir tmp;
  const std::string dir = tmp / "sf";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(scifact) + " --no-sync").exit_code, 0);
  auto r = Quarry("eval " + ShellQuote(dir) + " --beir " + ShellQuote(scifact) + " --metrics ndcg@10,recall@100 --run-out " +
                  ShellQuote(tmp / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "metric       value\nnDCG@10      0.6789\nRecall@100   0.9253\nqueries      300\n");
  auto again = Quarry("eval --qrels " + ShellQuote(scifact + "/qrels/test.tsv") + " --run " + ShellQuote(tmp / "run") +
                      " --metrics ndcg@10,recall@100");
  EXPECT_EQ(again.out, r.out) << "evaluating the written run gives the same figures";

  // The batch search writes every query's top 1000 (Pyserini's --hits default); evaluated, the judged
  // queries give eval's figures, under trec_eval's names with -m.
  auto batch = Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(scifact + "/queries.jsonl") +
                      " --run-out " + ShellQuote(tmp / "batch.trec") + " --threads 2 --json");
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  auto b = nlohmann::json::parse(batch.out);
  EXPECT_EQ(b["queries"], 1109);
  EXPECT_EQ(b["k"], 1000);
  EXPECT_EQ(b["tag"], "quarry-bm25");
  EXPECT_FALSE(std::filesystem::exists(tmp / "batch.trec.partial"));
  auto batch_eval = Quarry("eval --qrels " + ShellQuote(scifact + "/qrels/test.tsv") + " --run " +
                           ShellQuote(tmp / "batch.trec") + " -m ndcg_cut.10 -m recall.100");
  EXPECT_EQ(batch_eval.out, r.out);
  auto per_query = Quarry("eval --qrels " + ShellQuote(scifact + "/qrels/test.tsv") + " --run " +
                          ShellQuote(tmp / "batch.trec") + " -m ndcg_cut.10 --per-query");
  ASSERT_EQ(per_query.exit_code, 0) << per_query.err;
  std::istringstream lines(per_query.out);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  ASSERT_EQ(got.size(), 301u) << "300 queries and the mean";
  EXPECT_EQ(got.back(), "ndcg_cut_10           \tall\t0.6789");
  EXPECT_EQ(got[0].rfind("ndcg_cut_10           \t", 0), 0u) << got[0];

  // A = the full run, B = the same queries cut to 5 hits: A's Recall@100 is higher, and says so.
  ASSERT_EQ(Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(scifact + "/queries.jsonl") + " --run-out " +
                   ShellQuote(tmp / "top5.trec") + " -k 5").exit_code, 0);
  auto cmp = Quarry("eval --qrels " + ShellQuote(scifact + "/qrels/test.tsv") + " --run " + ShellQuote(tmp / "batch.trec") +
                    " --compare " + ShellQuote(tmp / "top5.trec") + " -m recall.100 --permutations 1000 --json");
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  const auto recall = nlohmann::json::parse(cmp.out)["compare"]["metrics"]["Recall@100"];
  EXPECT_NEAR(recall["a"].get<double>(), 0.9253, 5e-5);
  EXPECT_GT(recall["a"].get<double>(), recall["b"].get<double>());
  EXPECT_NEAR(recall["diff"].get<double>(), recall["a"].get<double>() - recall["b"].get<double>(), 1e-12);
  EXPECT_GT(recall["t"].get<double>(), 0);
  EXPECT_LT(recall["p_randomization"].get<double>(), 0.01);
}

// Batch search reads the three query formats, the run holds -k hits per query, and bad input leaves
// no run behind.
TEST(Cli, BatchSearchReadsEveryQueryFormat) {
  testing::TempDir tmp;
  const std::string dir = tmp / "col";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny)).exit_code, 0);
  testing::WriteFile(tmp / "q.jsonl", "{\"_id\": \"a\", \"text\": \"cholesterol heart disease\"}\n{\"_id\": \"b\", \"text\": \"statins\"}\n");
  testing::WriteFile(tmp / "q.tsv", "a\tcholesterol heart disease\nb\tstatins\n");
  testing::WriteFile(tmp / "q.topics", "<top>\n<num> Number: a\n<title> cholesterol\nheart disease\n<desc> ignored words\n</top>\n"
                                       "<top>\n<num> b\n<title> statins\n</top>\n");
  std::string first;
  for (const char* file : {"q.jsonl", "q.tsv", "q.topics"}) {
    auto r = Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(tmp / file) + " --run-out " +
                    ShellQuote(tmp / "run") + " -k 2 --tag t");
    ASSERT_EQ(r.exit_code, 0) << file << r.err;
    EXPECT_EQ(r.out.rfind("wrote " + (tmp / "run") + ": 2 queries, 4 hits (k=2) in ", 0), 0u) << r.out;
    const std::string run = testing::ReadFile(tmp / "run");
    EXPECT_EQ(run.substr(0, run.find('\n')), "a Q0 d0 1 0.980755 t") << file;
    if (first.empty()) first = run;
    EXPECT_EQ(run, first) << file;
  }
  testing::WriteFile(tmp / "bad.tsv", "a\tcholesterol\nno tab here\n");
  auto bad = Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(tmp / "bad.tsv") + " --run-out " +
                    ShellQuote(tmp / "bad.run"));
  EXPECT_EQ(bad.exit_code, 5) << bad.err;
  EXPECT_NE(bad.err.find("bad.tsv:2"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "bad.run"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "bad.run.partial"));
  EXPECT_EQ(Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(tmp / "q.tsv")).exit_code, 2) << "no --run-out";
  EXPECT_EQ(Quarry("search " + ShellQuote(dir) + " statins --run-out x").exit_code, 2);
  auto stdout_run = Quarry("search " + ShellQuote(dir) + " --queries " + ShellQuote(tmp / "q.tsv") +
                           " --run-out /dev/stdout -k 1 --tag t --json");
  ASSERT_EQ(stdout_run.exit_code, 0) << stdout_run.err;
  EXPECT_EQ(stdout_run.out.rfind("a Q0 d0 1 0.980755 t\nb Q0 d4 1 0.834376 t\n{", 0), 0u) << stdout_run.out;
}

// The flag vocabulary's checks and the errors a typing user meets.
TEST(Cli, CountsTyposAndMissingInputsGetClearErrors) {
  testing::TempDir tmp;
  const std::string dir = tmp / "col";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny)).exit_code, 0);
  auto zero = Quarry("search " + ShellQuote(dir) + " statins -k 0");
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("must be at least 1 (got 0)"), std::string::npos) << zero.err;
  auto typo = Quarry("serch " + ShellQuote(dir) + " statins");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("unknown command 'serch' (did you mean 'search'?)"), std::string::npos) << typo.err;
  auto nested = Quarry("hr trian " + ShellQuote(dir));
  EXPECT_EQ(nested.exit_code, 2);
  EXPECT_NE(nested.err.find("unknown command 'hr trian' (did you mean 'hr train'?); `quarry hr --help`"),
            std::string::npos) << nested.err;
  auto mode = Quarry("search " + ShellQuote(dir) + " statins --mode hybird");
  EXPECT_EQ(mode.exit_code, 2);
  EXPECT_NE(mode.err.find("--mode: 'hybird' is not one of bm25, dense, hybrid (did you mean 'hybrid'?)"),
            std::string::npos) << mode.err;
  EXPECT_EQ(Quarry("search " + ShellQuote(dir) + " statins --mode BM25 -k 1").exit_code, 0) << "names ignore case";
  auto wrong_dir = Quarry("stats " + ShellQuote(tmp / "cool"));
  EXPECT_EQ(wrong_dir.exit_code, 3);
  EXPECT_NE(wrong_dir.err.find("no such collection directory (did you mean " + dir + "?)"), std::string::npos)
      << wrong_dir.err;
  auto no_input = Quarry("ingest " + ShellQuote(tmp / "new") + " --beir " + ShellQuote(tmp / "absent.jsonl"));
  EXPECT_EQ(no_input.exit_code, 3);
  EXPECT_NE(no_input.err.find("absent.jsonl"), std::string::npos) << no_input.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "new")) << "a failed ingest creates no collection";
  auto version = Quarry("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("quarry ", 0), 0u) << version.out;
}

// Every command that changes a collection can say what it did as one JSON object.
TEST(Cli, StoreCommandsPrintJson) {
  testing::TempDir tmp;
  const std::string dir = tmp / "col";
  auto init = Quarry("init " + ShellQuote(dir) + " --json");
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(nlohmann::json::parse(init.out)["created"], dir);
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny)).exit_code, 0);
  auto del = Quarry("delete " + ShellQuote(dir) + " d5 --json");
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(nlohmann::json::parse(del.out)["deleted"], "d5");
  auto compact = Quarry("compact " + ShellQuote(dir) + " --json");
  ASSERT_EQ(compact.exit_code, 0) << compact.err;
  EXPECT_TRUE(nlohmann::json::parse(compact.out).contains("seconds")) << compact.out;
  auto check = Quarry("check " + ShellQuote(dir) + " --json");
  ASSERT_EQ(check.exit_code, 0) << check.err;
  auto c = nlohmann::json::parse(check.out);
  EXPECT_EQ(c["ok"], true);
  EXPECT_EQ(c["problems"].size(), 0u);
}

// The memory is built from training judgements only: replacing the test qrels changes nothing in it,
// and a build from the test split is refused.
TEST(Cli, ResMemNeverSeesTestJudgements) {
  testing::TempDir tmp;
  const std::string beir = tmp / "beir";
  testing::WriteFile(beir + "/corpus.jsonl", testing::ReadFile(kTiny));
  testing::WriteFile(beir + "/queries.jsonl",
                     "{\"_id\": \"1\", \"text\": \"statins and cholesterol\"}\n"
                     "{\"_id\": \"2\", \"text\": \"coronary heart disease in women\"}\n"
                     "{\"_id\": \"3\", \"text\": \"heart muscle\"}\n");
  testing::WriteFile(beir + "/qrels/train.tsv", "query-id\tcorpus-id\tscore\n1\td4\t1\n2\td3\t1\n");
  const std::string dir = tmp / "col";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(beir)).exit_code, 0);
  auto memory_bytes = [&] {
    auto store = Store::Open(dir, {.read_only = true});
    EXPECT_TRUE(store.ok());
    auto bytes = (*store)->Get("resmem", "memory");
    EXPECT_TRUE(bytes.ok() && bytes->has_value());
    return bytes.ok() && bytes->has_value() ? **bytes : std::string();
  };
  std::string first;
  for (const char* test_qrels : {"query-id\tcorpus-id\tscore\n3\td2\t1\n1\td0\t1\n", "garbage that is no qrels\n"}) {
    testing::WriteFile(beir + "/qrels/test.tsv", test_qrels);
    auto r = Quarry("resmem build " + ShellQuote(dir) + " --beir " + ShellQuote(beir) + " --knn 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out,
              "stored a ResMem memory of 2 training queries: knn=2 sigma=1 temperature=1 lambda=1 correct-depth=100 "
              "neighbours=bm25\n");
    const std::string bytes = memory_bytes();
    EXPECT_EQ(bytes.find("heart muscle"), std::string::npos) << "test query 3 must not be in the memory";
    if (first.empty()) first = bytes;
    else EXPECT_EQ(bytes, first) << "the test qrels changed the memory";
  }
  auto refused = Quarry("resmem build " + ShellQuote(dir) + " --beir " + ShellQuote(beir) + " --split test");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("refusing"), std::string::npos) << refused.err;
  auto refused2 = Quarry("resmem build " + ShellQuote(dir) + " --queries " + ShellQuote(beir + "/queries.jsonl") +
                         " --qrels " + ShellQuote(beir + "/qrels/test.tsv"));
  EXPECT_EQ(refused2.exit_code, 2);
  auto info = Quarry("resmem info " + ShellQuote(dir));
  EXPECT_EQ(info.out, "2 training queries: knn=2 sigma=1 temperature=1 lambda=1 correct-depth=100 neighbours=bm25\n");
  auto info_json = nlohmann::json::parse(Quarry("resmem info " + ShellQuote(dir) + " --json").out);
  EXPECT_EQ(info_json["training_queries"], 2);
  EXPECT_EQ(info_json["options"]["knn"], 2);
  // The old spellings still work, with a note.
  auto old = Quarry("resmem build " + ShellQuote(dir) + " --beir " + ShellQuote(beir) + " --k 3 --depth 50");
  ASSERT_EQ(old.exit_code, 0) << old.err;
  EXPECT_NE(old.out.find("knn=3 "), std::string::npos) << old.out;
  EXPECT_NE(old.out.find("correct-depth=50 "), std::string::npos) << old.out;
  EXPECT_NE(old.err.find("--k is deprecated; use --knn"), std::string::npos) << old.err;
  // With the memory on, query 1's judged-relevant d4 ranks first for a near-duplicate query.
  auto search = Quarry("search " + ShellQuote(dir) + " 'statins cholesterol' --resmem --json");
  ASSERT_EQ(search.exit_code, 0) << search.err;
  EXPECT_EQ(nlohmann::json::parse(search.out)["hits"][0]["id"], "d4");
}

// DL 2019 reranked end to end with the tiny random-weight Mistral: the numbers mean nothing, the
// plumbing is what is checked (a complete, valid run that `quarry eval` scores).
TEST(Cli, RerankDl2019WithTheTinyMistral) {
  QUARRY_REQUIRE_SHARED(dl19, "datasets/trec-dl-2019-passage");
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-mistral");
  testing::TempDir tmp;
  const std::string dir = tmp / "dl19";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --msmarco " + ShellQuote(dl19 + "/collection.tsv") + " --no-sync").exit_code, 0);
  auto r = Quarry("rerank " + ShellQuote(dir) + " --rerank-model " + ShellQuote(model) + " --run " +
                  ShellQuote(dl19 + "/run.bm25.trec") + " --queries " + ShellQuote(dl19 + "/queries.tsv") +
                  " --rerank-depth 20 --scoring-layer 2 --run-out " + ShellQuote(tmp / "reranked.trec"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reranked 43 queries (860 documents)"), std::string::npos) << r.out;
  // Same queries and documents as the input run, each query's list complete and strictly ordered.
  std::map<std::string, std::set<std::string>> before, after;
  std::map<std::string, std::vector<double>> scores;
  for (const auto& [path, into] : {std::pair{dl19 + "/run.bm25.trec", &before}, std::pair{tmp / "reranked.trec", &after}}) {
    std::istringstream lines(testing::ReadFile(path));
    std::string q, q0, doc, tag;
    int rank;
    double score;
    while (lines >> q >> q0 >> doc >> rank >> score >> tag) {
      (*into)[q].insert(doc);
      if (into == &after) scores[q].push_back(score);
    }
  }
  EXPECT_EQ(after, before);
  for (const auto& [q, s] : scores) EXPECT_TRUE(std::is_sorted(s.rbegin(), s.rend())) << q;
  auto eval = Quarry("eval --qrels " + ShellQuote(dl19 + "/qrels.txt") + " --run " + ShellQuote(tmp / "reranked.trec"));
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("queries      43"), std::string::npos) << eval.out;
  // A run naming a document the collection lacks is an error naming it.
  testing::WriteFile(tmp / "bad.trec", "156493 Q0 no-such-passage 1 9.0 x\n");
  auto bad = Quarry("rerank " + ShellQuote(dir) + " --rerank-model " + ShellQuote(model) + " --run " +
                    ShellQuote(tmp / "bad.trec") + " --queries " + ShellQuote(dl19 + "/queries.tsv") +
                    " --scoring-layer 2 --run-out " + ShellQuote(tmp / "x.trec"));
  EXPECT_EQ(bad.exit_code, 3) << "not found";
  EXPECT_NE(bad.err.find("'no-such-passage'"), std::string::npos) << bad.err;
}

// A real GGUF model (SmolLM2-135M-Instruct, scripts/models.sh) through every path: search and shell with
// --rerank-model, the decoupled caches, `quarry rerank` at several layers with calibration, and a
// last-token dual encoder. The tiny corpus keeps it to seconds.
TEST(Cli, RealGgufModelThroughEveryPath) {
  QUARRY_REQUIRE_MODEL(model_dir, "SmolLM2-135M-Instruct-Q4_1");
  const std::string gguf = ShellQuote(model_dir + "/model.gguf");
  testing::TempDir tmp;
  const std::string dir = ShellQuote(tmp / "c");
  ASSERT_EQ(Quarry("ingest " + dir + " --beir " + ShellQuote(testing::kTiny) + " --no-sync").exit_code, 0);
  auto hits_of = [](const std::string& json) {
    std::vector<std::pair<std::string, double>> hits;
    const auto answer = nlohmann::json::parse(json);
    for (const auto& h : answer["hits"]) hits.emplace_back(h["id"], h["score"]);
    return hits;
  };
  // Search with the reranker: every BM25 candidate scored, in descending order of the attention score.
  auto reranked = Quarry("search " + dir + " 'heart muscle' --json --rerank-model " + gguf + " --scoring-layer 10");
  ASSERT_EQ(reranked.exit_code, 0) << reranked.err;
  const auto hits = hits_of(reranked.out);
  ASSERT_GE(hits.size(), 3u) << reranked.out;
  double sum = 0;
  for (size_t i = 0; i < hits.size(); ++i) {
    sum += hits[i].second;
    if (i > 0) {
      EXPECT_GE(hits[i - 1].second, hits[i].second);
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-3) << "one pass: the documents' attention shares sum to one";

  // Decoupled mode: the cached blocks give the uncached scores.
  const std::string decoupled = " --json --rerank-model " + gguf + " --scoring-layer 10 --query-in-instruction false";
  auto uncached = Quarry("search " + dir + " 'heart muscle'" + decoupled);
  ASSERT_EQ(uncached.exit_code, 0) << uncached.err;
  auto index = Quarry("index " + dir + " --rerank-cache " + gguf + " --scoring-layer 10");
  ASSERT_EQ(index.exit_code, 0) << index.err;
  auto cached = Quarry("search " + dir + " 'heart muscle'" + decoupled);
  ASSERT_EQ(cached.exit_code, 0) << cached.err;
  const auto a = hits_of(uncached.out), b = hits_of(cached.out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << i;
    EXPECT_NEAR(a[i].second, b[i].second, 1e-4) << i;
  }

  // --quantized-activations (8-bit activations, int8 dot products): scores move by the activations'
  // rounding only; caches built with it serve it, and the float32 reranker does not read them (their
  // config differs), so each gets its own uncached scores back.
  if (model::HasInt8Dot()) {
    const std::string quantized = decoupled + " --quantized-activations";
    auto q_uncached = Quarry("search " + dir + " 'heart muscle'" + quantized);  // the float32 caches do not serve it
    ASSERT_EQ(q_uncached.exit_code, 0) << q_uncached.err;
    auto q_index = Quarry("index " + dir + " --rerank-cache " + gguf + " --scoring-layer 10 --quantized-activations");
    ASSERT_EQ(q_index.exit_code, 0) << q_index.err;
    auto q_cached = Quarry("search " + dir + " 'heart muscle'" + quantized);
    auto float_again = Quarry("search " + dir + " 'heart muscle'" + decoupled);
    ASSERT_EQ(q_cached.exit_code, 0) << q_cached.err;
    ASSERT_EQ(float_again.exit_code, 0) << float_again.err;
    const auto qa = hits_of(q_uncached.out), qb = hits_of(q_cached.out), fa = hits_of(float_again.out);
    ASSERT_EQ(qa.size(), a.size());
    ASSERT_EQ(qb.size(), a.size());
    ASSERT_EQ(fa.size(), a.size());
    std::map<std::string, double> float_score(a.begin(), a.end());
    double moved = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(qa[i].first, qb[i].first) << i;
      EXPECT_NEAR(qa[i].second, qb[i].second, 1e-4) << i;
      EXPECT_EQ(fa[i].first, a[i].first) << i;
      EXPECT_NEAR(fa[i].second, a[i].second, 1e-4) << i;
      moved = std::max(moved, std::fabs(qa[i].second - float_score.at(qa[i].first)));
    }
    EXPECT_GT(moved, 0.0) << "8-bit activations should not give the float32 scores exactly";
    EXPECT_LT(moved, 0.02) << "attention shares moved by more than the activations' rounding explains";
    std::printf("quantized activations: largest attention-share change %.2e\n", moved);
  }

  // The shell, with the reranker on.
  auto shell = testing::RunCommand("printf ':rerank on\\nheart muscle\\n' | " + testing::kCli + " shell " + dir +
                                   " --rerank-model " + gguf + " --scoring-layer 10 --no-timings");
  ASSERT_EQ(shell.exit_code, 0) << shell.err;
  std::istringstream lines(shell.out);
  std::string line;
  std::getline(lines, line);
  std::getline(lines, line);
  const auto answer = hits_of(line);
  ASSERT_EQ(answer.size(), hits.size()) << shell.out;
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(answer[i].first, hits[i].first) << i;

  // quarry rerank at two layers from one pass, calibrated: one complete run per layer.
  testing::WriteFile(tmp / "q.tsv", "q1\theart muscle\n");
  testing::WriteFile(tmp / "in.trec", "q1 Q0 d0 1 3.0 x\nq1 Q0 d2 2 2.0 x\nq1 Q0 d3 3 1.0 x\n");
  // (In the old spelling, --model and --collection: still accepted, with a deprecation note.)
  auto rerank = Quarry("rerank --model " + gguf + " --collection " + dir + " --run " + ShellQuote(tmp / "in.trec") +
                       " --queries " + ShellQuote(tmp / "q.tsv") + " --scoring-layers 5,10 --calibrate --run-out " +
                       ShellQuote(tmp / "out.trec"));
  ASSERT_EQ(rerank.exit_code, 0) << rerank.err;
  EXPECT_NE(rerank.err.find("--collection is deprecated"), std::string::npos) << rerank.err;
  for (const char* layer : {".layer5", ".layer10"}) {
    auto run = eval::LoadRun(tmp / (std::string("out.trec") + layer));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_EQ(run->at("q1").size(), 3u) << layer;
  }
  EXPECT_EQ(Quarry("rerank " + dir + " --rerank-model " + gguf + " --run " + ShellQuote(tmp / "in.trec") +
                   " --queries " + ShellQuote(tmp / "q.tsv") + " --scoring-layers 10,5 --run-out x").exit_code, 2);

  // A last-token dual encoder from the same file: 576-dimensional, L2-normalised vectors.
  auto dense = Quarry("index " + dir + " --encoder " + gguf + " --pooling last");
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_NE(dense.out.find("7 vectors of dim 576"), std::string::npos) << dense.out;
  auto search = Quarry("search " + dir + " 'heart muscle' --mode dense --json");
  ASSERT_EQ(search.exit_code, 0) << search.err;
  for (const auto& [id, score] : hits_of(search.out)) EXPECT_LE(std::fabs(score), 1.0 + 1e-5) << id;
}

// Gemma 3 (SentencePiece-style GGUF tokenizer, sliding-window local layers) through every path: a
// last-token dual encoder; BlockRank in one pass and from decoupled caches (the same scores), with the
// query block placed after the documents so that the 512-token window hides nothing, and a clear error
// when a prompt would reach past the window.
TEST(Cli, Gemma3ThroughEveryPath) {
  QUARRY_REQUIRE_MODEL(model_dir, "gemma-3-270m-Q4_K_M");
  const std::string gguf = ShellQuote(model_dir + "/model.gguf");
  testing::TempDir tmp;
  const std::string dir = ShellQuote(tmp / "c");
  ASSERT_EQ(Quarry("ingest " + dir + " --beir " + ShellQuote(testing::kTiny) + " --no-sync").exit_code, 0);
  auto dense = Quarry("index " + dir + " --encoder " + gguf + " --pooling last --json");
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_EQ(nlohmann::json::parse(dense.out)["dense"]["dim"], 640);
  auto search = Quarry("search " + dir + " 'heart muscle' --mode dense --json");
  ASSERT_EQ(search.exit_code, 0) << search.err;
  EXPECT_EQ(nlohmann::json::parse(search.out)["hits"].size(), 7u);

  auto scores_of = [](const std::string& json) {
    std::vector<std::pair<std::string, double>> hits;
    const auto answer = nlohmann::json::parse(json);  // (a named object: the loop below reads into it)
    for (const auto& h : answer["hits"]) hits.emplace_back(h["id"], h["stages"]["rerank"]);
    return hits;
  };
  // Blocks of 256 tokens: with the instruction and the query block, the prompt stays within the window.
  const std::string decoupled =
      " --json --rerank-model " + gguf + " --scoring-layer 11 --max-block-length 256 --query-in-instruction false";
  auto uncached = Quarry("search " + dir + " 'heart muscle'" + decoupled);
  ASSERT_EQ(uncached.exit_code, 0) << uncached.err;
  const auto a = scores_of(uncached.out);
  ASSERT_GE(a.size(), 3u);
  double sum = 0;
  for (const auto& [id, score] : a) sum += score;
  EXPECT_NEAR(sum, 1.0, 1e-3) << "one pass: the documents' attention shares sum to one";
  auto index = Quarry("index " + dir + " --rerank-cache " + gguf + " --scoring-layer 11 --max-block-length 256");
  ASSERT_EQ(index.exit_code, 0) << index.err;
  auto cached = Quarry("search " + dir + " 'heart muscle'" + decoupled);
  ASSERT_EQ(cached.exit_code, 0) << cached.err;
  const auto b = scores_of(cached.out);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << i;
    EXPECT_NEAR(a[i].second, b[i].second, 1e-4) << i;
  }
  // The default blocks of 384 tokens put the query block's end past position 512: refused, naming the window.
  auto too_long = Quarry("search " + dir + " 'heart muscle' --rerank-model " + gguf + " --scoring-layer 11");
  EXPECT_EQ(too_long.exit_code, 5) << too_long.err;
  EXPECT_NE(too_long.err.find("sliding window of 512"), std::string::npos) << too_long.err;
}

// Kill an ingest with SIGKILL part-way: every acknowledged batch must be there, no batch half there,
// and `quarry check` must pass.
TEST(Cli, IngestSurvivesSigkill) {
  testing::TempDir tmp;
  const std::string corpus = tmp / "big.jsonl";
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 400000; ++i) {
      out << "{\"_id\": \"doc" << i << "\", \"title\": \"title " << i << "\", \"text\": \"body text number " << i
          << " with some words to index and \\u00e9 accents\"}\n";
    }
  }
  const std::string dir = tmp / "col";
  const auto run = testing::RunCliUntil({"ingest", dir, "--beir", corpus, "--batch-docs", "1000", "--log-batches"},
                                        [](const auto& lines) { return testing::ParseAcknowledged(lines).batches >= 25; });
  ASSERT_TRUE(run.killed) << "the ingest finished before it could be killed";
  const auto acknowledged = testing::ParseAcknowledged(run.lines);
  ASSERT_EQ(acknowledged.batches, 25u);
  const unsigned long long acknowledged_through = acknowledged.through_line;

  auto check = Quarry("check " + ShellQuote(dir));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  auto c = Collection::Open(dir, {.read_only = true});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->n_docs, acknowledged_through);
  EXPECT_EQ(stats->n_docs % 1000, 0u) << "a batch is applied whole or not at all";
  for (unsigned long long i = 0; i < stats->n_docs; i += 997) {
    auto doc = (*c)->Get("doc" + std::to_string(i));
    ASSERT_TRUE(doc.ok() && doc->has_value()) << i;
    EXPECT_EQ((*doc)->text, "body text number " + std::to_string(i) + " with some words to index and \xc3\xa9 accents");
  }
  EXPECT_FALSE((*c)->Get("doc" + std::to_string(stats->n_docs))->has_value());
  auto hits = (*c)->Search("number", {.k = 5, .hydrate = false});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 5u);
}

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

TEST(Cli, ImportVectorsIndexTuneAndCheck) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  // 600 documents whose 8-d vectors are one-hot-ish around 8 directions, so neighbours are predictable.
  std::string corpus, ids;
  std::vector<float> vectors;
  for (int i = 0; i < 600; ++i) {
    corpus += "{\"_id\": \"v" + std::to_string(i) + "\", \"text\": \"vector " + std::to_string(i) + "\"}\n";
    ids += "v" + std::to_string(i) + "\n";
    for (int k = 0; k < 8; ++k) vectors.push_back(k == i % 8 ? 1.0f : 0.01f * static_cast<float>((i * 7 + k) % 13));
  }
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  testing::WriteFile(tmp / "ids.txt", ids);
  testing::WriteNpy(tmp / "vectors.npy", "<f4", "(600, 8)",
                    std::string(reinterpret_cast<const char*>(vectors.data()), vectors.size() * sizeof(float)));
  ASSERT_EQ(Quarry("ingest " + dir + " --beir " + tmp / "corpus.jsonl").exit_code, 0);

  testing::WriteFile(tmp / "short_ids.txt", "v0\nv1\n");
  auto wrong = Quarry("import-vectors " + dir + " " + tmp / "vectors.npy --ids " + tmp / "short_ids.txt");
  EXPECT_EQ(wrong.exit_code, 5);
  EXPECT_NE(wrong.err.find("2 ids for 600 rows"), std::string::npos) << wrong.err;

  auto imported = Quarry("import-vectors " + dir + " " + tmp / "vectors.npy --ids " + tmp / "ids.txt");
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("stored 600 document vectors of dim 8"), std::string::npos) << imported.out;
  auto imported_json = Quarry("import-vectors " + dir + " " + tmp / "vectors.npy --ids " + tmp / "ids.txt --json");
  ASSERT_EQ(imported_json.exit_code, 0) << imported_json.err;
  EXPECT_EQ(nlohmann::json::parse(imported_json.out),
            nlohmann::json({{"stored", 600}, {"dim", 8}, {"table", "documents"}}));

  auto indexed = Quarry("index " + dir + " --faiss IVF16,Flat --tune-recall 0.9");
  ASSERT_EQ(indexed.exit_code, 0) << indexed.err;
  EXPECT_NE(indexed.out.find("dense index: 600 vectors of dim 8, IVF16,Flat (ip)"), std::string::npos) << indexed.out;
  EXPECT_NE(indexed.out.find("chose nprobe="), std::string::npos) << indexed.out;

  auto reindexed = Quarry("index " + dir + " --faiss Flat --json");
  ASSERT_EQ(reindexed.exit_code, 0) << reindexed.err;
  auto built = nlohmann::json::parse(reindexed.out)["dense"];
  EXPECT_EQ(built["vectors"], 600);
  EXPECT_EQ(built["factory"], "Flat");
  EXPECT_EQ(built["metric"], "ip");

  auto check = Quarry("check " + dir);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // A text query in a dense mode needs an encoder, which imported vectors lack; the error names the
  // way that works: a query vector.
  auto dense = Quarry("search " + dir + " vector --mode dense");
  EXPECT_EQ(dense.exit_code, 9) << "failed precondition";
  EXPECT_NE(dense.err.find("no encoder"), std::string::npos) << dense.err;
  EXPECT_NE(dense.err.find("--vector"), std::string::npos) << dense.err;
  EXPECT_EQ(Quarry("search " + dir + " vector --mode sparse").exit_code, 2);
  // Vector 5 as the query (1-D, as numpy.save writes a vector): documents around direction 5, each
  // scored by its inner product with the query.
  testing::WriteNpy(tmp / "q.npy", "<f4", "(8,)", std::string(reinterpret_cast<const char*>(&vectors[5 * 8]), 8 * sizeof(float)));
  auto by_vector = Quarry("search " + dir + " --vector " + tmp / "q.npy -k 5 --json");
  ASSERT_EQ(by_vector.exit_code, 0) << by_vector.err;
  auto hits = nlohmann::json::parse(by_vector.out)["hits"];
  ASSERT_EQ(hits.size(), 5u);
  for (const auto& h : hits) {
    const int i = std::stoi(h["id"].get<std::string>().substr(1));
    EXPECT_EQ(i % 8, 5) << h;
    float dot = 0;
    for (int k = 0; k < 8; ++k) dot += vectors[5 * 8 + k] * vectors[i * 8 + k];
    EXPECT_NEAR(h["score"].get<double>(), dot, 1e-5) << h;
  }
  testing::WriteNpy(tmp / "two.npy", "<f4", "(2, 8)", std::string(reinterpret_cast<const char*>(vectors.data()), 16 * sizeof(float)));
  auto two = Quarry("search " + dir + " --vector " + tmp / "two.npy");
  EXPECT_EQ(two.exit_code, 5);
  EXPECT_NE(two.err.find("holds 2 vectors; --vector takes one"), std::string::npos) << two.err;
  // Not a hierarchy: hr search says so instead of failing on a missing embedding.
  auto hr = Quarry("hr search " + dir + " vector");
  EXPECT_EQ(hr.exit_code, 9) << hr.err;
  EXPECT_NE(hr.err.find("holds no hierarchy"), std::string::npos) << hr.err;
}

// quarry rerank on the tiny random-weight fixture: --json says what was written, and the run holds the
// input's documents.
TEST(Cli, RerankPrintsJsonAndWritesACompleteRun) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-mistral");
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  ASSERT_EQ(Quarry("ingest " + ShellQuote(dir) + " --beir " + ShellQuote(kTiny)).exit_code, 0);
  testing::WriteFile(tmp / "q.tsv", "q1\theart muscle\n");
  testing::WriteFile(tmp / "in.trec", "q1 Q0 d0 1 3.0 x\nq1 Q0 d2 2 2.0 x\nq1 Q0 d3 3 1.0 x\n");
  auto r = Quarry("rerank " + ShellQuote(dir) + " --rerank-model " + ShellQuote(model) + " --scoring-layer 2 --run " +
                  ShellQuote(tmp / "in.trec") + " --queries " + ShellQuote(tmp / "q.tsv") + " --run-out " +
                  ShellQuote(tmp / "out.trec") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["queries"], 1);
  EXPECT_EQ(j["documents"], 3);
  ASSERT_EQ(j["runs"].size(), 1u);
  EXPECT_EQ(j["runs"][0]["run"], tmp / "out.trec");
  EXPECT_EQ(j["runs"][0]["scoring_layer"], 2);
  auto run = eval::LoadRun(tmp / "out.trec");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  std::set<std::string> docs;
  for (const auto& e : run->at("q1")) docs.insert(e.doc);
  EXPECT_EQ(docs, (std::set<std::string>{"d0", "d2", "d3"}));
}

// `eval --candidates RUN --mode dense` reorders a run by the encoder: a run holding every document,
// worst first, comes back in dense retrieval's order.
TEST(Cli, EvalRerankCandidatesByDenseSimilarity) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-bert");
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  std::string corpus;
  const char* texts[] = {"statins lower cholesterol", "heart disease and diet", "the liver makes cholesterol",
                         "running shoes for marathons", "a history of rome", "cholesterol in eggs"};
  for (size_t i = 0; i < std::size(texts); ++i) {
    corpus += "{\"_id\": \"t" + std::to_string(i) + "\", \"text\": \"" + texts[i] + "\"}\n";
  }
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  testing::WriteFile(tmp / "q.tsv", "q1\tcholesterol in the liver\n");
  testing::WriteFile(tmp / "qrels.txt", "q1 0 t2 1\n");
  ASSERT_EQ(Quarry("ingest " + dir + " --beir " + tmp / "corpus.jsonl").exit_code, 0);
  auto indexed = Quarry("index " + dir + " --encoder " + ShellQuote(model));
  ASSERT_EQ(indexed.exit_code, 0) << indexed.err;
  const std::string files = " --queries " + tmp / "q.tsv" + " --qrels " + tmp / "qrels.txt";
  auto dense = Quarry("eval " + dir + files + " --mode dense --run-out " + tmp / "dense.run");
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  auto dense_run = eval::LoadRun(tmp / "dense.run");
  ASSERT_TRUE(dense_run.ok());
  ASSERT_EQ(dense_run->at("q1").size(), std::size(texts));
  std::string reversed;
  const auto& order = dense_run->at("q1");
  for (size_t r = 0; r < order.size(); ++r) {
    reversed += "q1 Q0 " + order[order.size() - 1 - r].doc + " " + std::to_string(r + 1) + " " +
                std::to_string(10.0 - r) + " bm25\n";
  }
  testing::WriteFile(tmp / "candidates.run", reversed);
  auto reranked = Quarry("eval " + dir + files + " --mode dense --candidates " + tmp / "candidates.run" +
                         " --run-out " + tmp / "reranked.run");
  ASSERT_EQ(reranked.exit_code, 0) << reranked.err;
  auto reranked_run = eval::LoadRun(tmp / "reranked.run");
  ASSERT_TRUE(reranked_run.ok());
  ASSERT_EQ(reranked_run->at("q1").size(), order.size());
  for (size_t r = 0; r < order.size(); ++r) EXPECT_EQ(reranked_run->at("q1")[r].doc, order[r].doc) << r;
  // Only dense similarity reranks candidates.
  auto refused = Quarry("eval " + dir + files + " --candidates " + tmp / "candidates.run");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--mode dense"), std::string::npos) << refused.err;
}

TEST(Cli, HierarchicalTrainStoreEvalAndSearch) {
  testing::TempDir tmp;
  // A complete binary tree of height 4 as an edge list.
  std::string edges;
  for (int node = 1; node < 31; ++node) edges += "n" + std::to_string(node) + "\tn" + std::to_string((node - 1) / 2) + "\n";
  testing::WriteFile(tmp / "edges.tsv", edges);
  const std::string dir = tmp / "hr";
  const std::string source = " --edges " + tmp / "edges.tsv" + " --test-fraction 0.2 --validation-fraction 0";
  auto train = Quarry("hr train " + dir + source +
                      " --dim 16 --epochs 40 --finetune-epochs 0 --batch 32 --negatives 32 --mask --quiet --json");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto j = nlohmann::json::parse(train.out);
  EXPECT_EQ(j["nodes"], 31);
  const double trained = j["all"]["standard"]["overall"];
  EXPECT_GE(trained, 0.9);

  // hr eval reads the stored embeddings back and searches them through FAISS: the same table.
  auto eval = Quarry("hr eval " + dir + source + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  auto e = nlohmann::json::parse(eval.out);
  EXPECT_DOUBLE_EQ(e["all"]["stored"]["overall"].get<double>(), trained);
  EXPECT_DOUBLE_EQ(e["all"]["stored"]["per_query"].get<double>(), j["all"]["standard"]["per_query"].get<double>());
  auto bad_softmax = Quarry("hr train" + source + " --softmax full --quiet");
  EXPECT_EQ(bad_softmax.exit_code, 2);
  EXPECT_NE(bad_softmax.err.find("in-batch or corpus"), std::string::npos) << bad_softmax.err;
  auto hnsw = Quarry("hr eval " + dir + source + " --faiss HNSW8 --ef-search 64 --json");
  ASSERT_EQ(hnsw.exit_code, 0) << hnsw.err;
  EXPECT_EQ(nlohmann::json::parse(hnsw.out)["ef_search"], 64);
  auto flat_nprobe = Quarry("hr eval " + dir + source + " --nprobe 4");
  EXPECT_EQ(flat_nprobe.exit_code, 5);
  EXPECT_NE(flat_nprobe.err.find("nprobe"), std::string::npos) << flat_nprobe.err;

  // A leaf's nearest documents are its ancestors (depth 4: itself and 4 ancestors) when recall is 1.
  auto search = Quarry("hr search " + dir + " n30 -k 5 --json");
  ASSERT_EQ(search.exit_code, 0) << search.err;
  std::set<std::string> got;
  const auto hits = nlohmann::json::parse(search.out);
  for (const auto& h : hits["hits"]) got.insert(h["id"].get<std::string>());
  const auto& leaf = e["all"]["stored"];
  if (leaf["overall"].get<double>() == 1.0) {
    EXPECT_EQ(got, (std::set<std::string>{"n30", "n14", "n6", "n2", "n0"}));
  }
  EXPECT_TRUE(got.count("n30")) << search.out;
  EXPECT_EQ(Quarry("check " + dir).exit_code, 0);
  auto missing = Quarry("hr eval " + tmp / "nowhere" + source);
  EXPECT_EQ(missing.exit_code, 3);
}

}  // namespace
}  // namespace quarry
