#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "quarry/eval.h"
#include "eval/significance.h"
#include "tests/test_util.h"

namespace quarry::eval {
namespace {

TEST(Qrels, ReadsBeirAndTrecFormatsAndNamesBadLines) {
  quarry::testing::TempDir tmp;
  quarry::testing::WriteFile(tmp / "beir.tsv", "query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n");
  quarry::testing::WriteFile(tmp / "trec.txt", "19335 0 7 3\n19335 Q0 8 0\n");
  auto beir = LoadQrels(tmp / "beir.tsv");
  ASSERT_TRUE(beir.ok());
  EXPECT_EQ(*beir, (Qrels{{"1", {{"d1", 1}, {"d2", 0}}}}));
  auto trec = LoadQrels(tmp / "trec.txt");
  ASSERT_TRUE(trec.ok());
  EXPECT_EQ(*trec, (Qrels{{"19335", {{"7", 3}, {"8", 0}}}}));
  quarry::testing::WriteFile(tmp / "bad.txt", "1 0 d1 1\n1 0 d2 high\n");
  auto bad = LoadQrels(tmp / "bad.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.txt:2"), std::string::npos) << bad.status().message();
}

TEST(Run, WritesAndReadsTrecRuns) {
  quarry::testing::TempDir tmp;
  ::quarry::eval::Run run = {{"q1", {{"d2", 2.5}, {"d1", 1.25}}}, {"q2", {{"d9", -1.0}}}};
  ASSERT_TRUE(WriteRun(tmp / "run", run, "tag").ok());
  EXPECT_EQ(quarry::testing::ReadFile(tmp / "run"),
            "q1 Q0 d2 1 2.500000 tag\nq1 Q0 d1 2 1.250000 tag\nq2 Q0 d9 1 -1.000000 tag\n");
  auto back = LoadRun(tmp / "run");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->at("q1").size(), 2u);
  EXPECT_EQ(back->at("q1")[1].doc, "d1");
  EXPECT_EQ(back->at("q1")[1].score, 1.25);
  quarry::testing::WriteFile(tmp / "bad", "q1 Q0 d1 1 1.0 t\nq1 Q0 d2\n");
  auto bad = LoadRun(tmp / "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad:2"), std::string::npos);
  quarry::testing::WriteFile(tmp / "bad2", "q1 Q0 d1 1 1.0x t\n");
  EXPECT_FALSE(LoadRun(tmp / "bad2").ok());
  // A file starting with two byte order marks reads as a query id that is one; written back first, it
  // would be stripped (found by the run fuzz target), so writing refuses it.
  quarry::testing::WriteFile(tmp / "boms", "\xEF\xBB\xBF\xEF\xBB\xBF q Q0 d1 1 1.0\n");
  auto boms = LoadRun(tmp / "boms");
  ASSERT_TRUE(boms.ok());
  ASSERT_EQ(boms->count("\xEF\xBB\xBF"), 1u);
  auto refused = WriteRun(tmp / "out", *boms, "t");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("byte order mark"), std::string::npos) << refused.message();
}

// A run written query by query appears under its name only once closed; abandoned, it leaves nothing.
TEST(Run, RunWriterPublishesOnlyAFinishedRun) {
  quarry::testing::TempDir tmp;
  {
    auto writer = RunWriter::Create(tmp / "run", "t");
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Write("q1", {{"d1", 1.5}}).ok());
    EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
    EXPECT_TRUE(std::filesystem::exists(tmp / "run.partial"));
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "run")) << "abandoned";
  EXPECT_FALSE(std::filesystem::exists(tmp / "run.partial"));
  auto writer = RunWriter::Create(tmp / "run", "t");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("q1", {{"d1", 1.5}, {"d2", 0.5}}).ok());
  ASSERT_TRUE((*writer)->Write("q2", {{"d3", 2.0}}).ok());
  auto bad = (*writer)->Write("q 3", {{"d1", 1.0}});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("query id 'q 3'"), std::string::npos) << bad.message();
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_EQ(quarry::testing::ReadFile(tmp / "run"), "q1 Q0 d1 1 1.500000 t\nq1 Q0 d2 2 0.500000 t\nq2 Q0 d3 1 2.000000 t\n");
  EXPECT_FALSE(std::filesystem::exists(tmp / "run.partial"));
  EXPECT_FALSE(RunWriter::Create(tmp / "no-such-dir/run", "t").ok());
  EXPECT_FALSE(RunWriter::Create(tmp / "run2", "bad tag").ok());
}

// TREC topics (as the TREC DL and Robust04 topic files are laid out): the title is the query, and may
// run over several lines; <desc> and <narr> are not read.
TEST(Queries, ReadsTrecTopicsAndNamesBadOnes) {
  quarry::testing::TempDir tmp;
  quarry::testing::WriteFile(tmp / "topics.txt",
                             "<top>\n<num> Number: 301\n<title> International Organized Crime\n\n<desc> Description:\n"
                             "Identify organizations.\n<narr> Narrative:\nA relevant document.\n</top>\n\n"
                             "<top>\n<num> 302\n<title>\nPoliomyelitis and\nPost-Polio\n</top>\n");
  auto topics = LoadQueries(tmp / "topics.txt");
  ASSERT_TRUE(topics.ok()) << topics.status().ToString();
  ASSERT_EQ(topics->size(), 2u);
  EXPECT_EQ((*topics)[0].id, "301");
  EXPECT_EQ((*topics)[0].text, "International Organized Crime");
  EXPECT_EQ((*topics)[1].id, "302");
  EXPECT_EQ((*topics)[1].text, "Poliomyelitis and Post-Polio");
  const struct {
    const char* text;
    const char* error;
  } bad[] = {
      {"<top>\n<num> 1\n<title> a\n", "t.txt:1: <top> without </top>"},
      {"<top>\n<title> a\n</top>\n", "t.txt:1: topic without <num>"},
      {"<top>\n<num> 1\n<desc> a\n</top>\n", "t.txt:1: topic 1 has no <title>"},
      {"<top>\n<num> 1\n<title> a\n</top>\n<top>\n<num> 1\n<title> b\n</top>\n", "topic 1 repeats"},
      {"<top>\n<num> 1\n<title> a\n</top>\nstray\n", "t.txt:5: text outside <top>"},
      {"<top>\n<num> 1\n<title> a \xc3\x28\n</top>\n", "t.txt:3: invalid UTF-8"},
  };
  for (const auto& b : bad) {
    quarry::testing::WriteFile(tmp / "t.txt", b.text);
    auto r = LoadQueries(tmp / "t.txt");
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_NE(r.status().message().find(b.error), std::string::npos) << r.status().message();
  }
}

TEST(Significance, StudentTMatchesTables) {
  // Two-sided critical values from standard t tables.
  EXPECT_NEAR(StudentTwoSidedP(2.228, 10), 0.05, 2e-4);
  EXPECT_NEAR(StudentTwoSidedP(2.045, 29), 0.05, 2e-4);
  EXPECT_NEAR(StudentTwoSidedP(3.169, 10), 0.01, 1e-4);
  EXPECT_NEAR(StudentTwoSidedP(1.96, 1e6), 0.05, 1e-4);
  EXPECT_NEAR(StudentTwoSidedP(0.0, 5), 1.0, 1e-12);
}

TEST(Significance, RandomisationTestSeparatesEqualFromDifferentSystems) {
  std::vector<double> a, b, c;
  for (int i = 0; i < 40; ++i) {
    a.push_back((i % 7) / 7.0);
    b.push_back((i % 7) / 7.0);
    c.push_back((i % 7) / 7.0 + 0.1 + (i % 3) * 0.01);
  }
  const auto same = ComparePaired(a, b, 2000);
  EXPECT_EQ(same.p_randomization, 1.0);
  EXPECT_EQ(same.mean_diff, 0.0);
  const auto differ = ComparePaired(a, c, 2000);
  EXPECT_NEAR(differ.p_randomization, 1.0 / 2001, 1e-12);
  EXPECT_LT(differ.p_t, 1e-10);
  EXPECT_NEAR(differ.mean_diff, -(0.1 + (13 * 0.01 + 13 * 0.02) / 40), 1e-12) << "a - b";
  EXPECT_LT(differ.t, 0) << "the t statistic of a - b";
  EXPECT_NEAR(differ.mean_b - differ.mean_a, 0.1 + (13 * 0.01 + 13 * 0.02) / 40, 1e-12);
}

// ../shared/tools/treceval.py is an independent evaluator; Quarry's metrics must agree with it to
// 4 decimals, on real runs and on a run made of ties.
TEST(Treceval, AgreesWithTheIndependentEvaluator) {
  QUARRY_REQUIRE_SHARED(tool, "tools/treceval.py");
  QUARRY_REQUIRE_SHARED(dl19, "datasets/trec-dl-2019-passage");
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 is missing; skipping";
  quarry::testing::TempDir tmp;
  auto original = LoadRun(dl19 + "/run.bm25.trec");
  ASSERT_TRUE(original.ok());
  ::quarry::eval::Run ties = *original;  // scores rounded to integers: most of a query's hits tie
  for (auto& [qid, entries] : ties) {
    for (auto& e : entries) e.score = std::round(e.score);
  }
  ASSERT_TRUE(WriteRun(tmp / "ties.trec", ties, "ties").ok());
  ::quarry::eval::Run truncated = *original;  // fewer than 10 hits for some queries, none for one
  int n = 0;
  for (auto it = truncated.begin(); it != truncated.end();) {
    if (n++ == 0) {
      it = truncated.erase(it);
      continue;
    }
    it->second.resize(std::min<size_t>(it->second.size(), n % 12));
    ++it;
  }
  ASSERT_TRUE(WriteRun(tmp / "short.trec", truncated, "short").ok());

  auto qrels = LoadQrels(dl19 + "/qrels.txt");
  ASSERT_TRUE(qrels.ok());
  auto metrics = ParseMetrics("ndcg@10,recall@100,recall@1000,mrr@10");
  ASSERT_TRUE(metrics.ok());
  for (const std::string& run_path : {dl19 + "/run.bm25.trec", tmp / "ties.trec", tmp / "short.trec"}) {
    auto run = LoadRun(run_path);
    ASSERT_TRUE(run.ok());
    const auto ev = Evaluate(*qrels, *run, *metrics);
    auto r = quarry::testing::RunCommand("python3 " + quarry::testing::ShellQuote(tool) + " " +
                                         quarry::testing::ShellQuote(dl19 + "/qrels.txt") + " " +
                                         quarry::testing::ShellQuote(run_path));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    std::map<std::string, double> reference;
    std::string name;
    double value;
    while (lines >> name >> value) reference[name] = value;
    ASSERT_EQ(reference.size(), 5u) << r.out;
    EXPECT_EQ(reference["queries"], ev.qids.size());
    for (size_t m = 0; m < metrics->size(); ++m) {
      ASSERT_TRUE(reference.count((*metrics)[m].name)) << (*metrics)[m].name;
      EXPECT_NEAR(ev.mean[m], reference[(*metrics)[m].name], 5e-5) << run_path << " " << (*metrics)[m].name;
    }
  }
  // The published Anserini figure for this run.
  EXPECT_NEAR(Evaluate(*qrels, *original, *metrics).mean[0], 0.5058, 5e-5);
}

}  // namespace
}  // namespace quarry::eval
