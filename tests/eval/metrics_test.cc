#include "quarry/eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace quarry::eval {
namespace {

double Metric1(const std::string& spec, const Qrels& qrels, const ::quarry::eval::Run& run, EvalOptions options = {}) {
  auto m = ParseMetrics(spec);
  EXPECT_TRUE(m.ok()) << spec;
  return Evaluate(qrels, run, *m, options).mean[0];
}

class Conventions : public ::testing::Test {
 protected:
  // q1: graded judgements and an unjudged hit; q2: one relevant doc found first; q3: no relevant
  // document (evaluated, as trec_eval -c does: scores 0); q4: judged but absent from the run (scores 0).
  Qrels qrels_ = {{"q1", {{"a", 1}, {"b", 2}, {"c", 0}}},
                  {"q2", {{"x", 1}}},
                  {"q3", {{"y", 0}}},
                  {"q4", {{"z", 1}}}};
  // q1 ranks c (3), then the tie a/b broken by docid descending: b, a; then unjudged d.
  ::quarry::eval::Run run_ = {{"q1", {{"a", 2.0}, {"d", 1.0}, {"c", 3.0}, {"b", 2.0}}},
              {"q2", {{"x", 5.0}}},
              {"q3", {{"y", 1.0}}},
              {"extra", {{"x", 1.0}}}};
};

TEST_F(Conventions, TableOfMetrics) {
  const double ndcg3_q1 = (2 / std::log2(3.0) + 1 / std::log2(4.0)) / (2 + 1 / std::log2(3.0));
  const struct {
    std::string metric;
    double q1;  // q2 scores 1 on every metric below, q3 and q4 score 0
  } cases[] = {
      {"ndcg@3", ndcg3_q1},
      {"ndcg@1", 0.0},
      {"recall@2", 0.5},
      {"recall@3", 1.0},
      {"mrr@10", 0.5},
      {"mrr@1", 0.0},
      {"map", (1.0 / 2 + 2.0 / 3) / 2},
      {"map@2", (1.0 / 2) / 2},
  };
  for (const auto& c : cases) {
    EXPECT_NEAR(Metric1(c.metric, qrels_, run_), (c.q1 + 1 + 0 + 0) / 4, 1e-12) << c.metric;
  }
  // P@k divides by k even when fewer documents were retrieved (q2 has one).
  EXPECT_NEAR(Metric1("p@2", qrels_, run_), (0.5 + 0.5 + 0 + 0) / 4, 1e-12);
  EXPECT_NEAR(Metric1("p@5", qrels_, run_), (0.4 + 0.2 + 0 + 0) / 4, 1e-12);
}

// trec_eval -l 2: only grade >= 2 is relevant for recall, MRR, MAP and P (q1's b alone; q2's x is not),
// while nDCG's gains stay the grades (q2 still scores 1).
TEST_F(Conventions, RelevanceLevelDecidesBinaryMeasuresNotNdcg) {
  const EvalOptions level2{.relevance_level = 2};
  const double ndcg3_q1 = (2 / std::log2(3.0) + 1 / std::log2(4.0)) / (2 + 1 / std::log2(3.0));
  EXPECT_NEAR(Metric1("ndcg@3", qrels_, run_, level2), (ndcg3_q1 + 1) / 4, 1e-12);
  EXPECT_NEAR(Metric1("recall@1", qrels_, run_, level2), 0.0, 1e-12);
  EXPECT_NEAR(Metric1("recall@2", qrels_, run_, level2), 1.0 / 4, 1e-12);
  EXPECT_NEAR(Metric1("mrr@10", qrels_, run_, level2), 0.5 / 4, 1e-12);
  EXPECT_NEAR(Metric1("map", qrels_, run_, level2), 0.5 / 4, 1e-12);
  EXPECT_NEAR(Metric1("p@2", qrels_, run_, level2), 0.5 / 4, 1e-12);
  // Level 3: nothing is relevant; nDCG is unchanged.
  EXPECT_EQ(Metric1("recall@10", qrels_, run_, {.relevance_level = 3}), 0.0);
  EXPECT_NEAR(Metric1("ndcg@3", qrels_, run_, {.relevance_level = 3}), (ndcg3_q1 + 1) / 4, 1e-12);
}

// trec_eval -c: every query of the qrels, also one judged only non-relevant (the run's "extra" query
// has no judgements and is not evaluated).
TEST_F(Conventions, EvaluatesEveryJudgedQuery) {
  auto m = ParseMetrics("ndcg@10");
  ASSERT_TRUE(m.ok());
  const auto ev = Evaluate(qrels_, run_, *m);
  EXPECT_EQ(ev.qids, (std::vector<std::string>{"q1", "q2", "q3", "q4"}));
  EXPECT_EQ(ev.per_query[0][2], 0.0) << "a query without a relevant document scores 0";
  EXPECT_EQ(ev.per_query[0][3], 0.0) << "a judged query with no results scores 0";
}

TEST(Metrics, TiesBreakByDocidDescendingAsStrings) {
  // trec_eval compares docids with strcmp: "9" > "10", so "9" ranks first.
  const Qrels qrels = {{"q", {{"10", 1}}}};
  const ::quarry::eval::Run run = {{"q", {{"10", 1.0}, {"9", 1.0}}}};
  EXPECT_DOUBLE_EQ(Metric1("mrr@10", qrels, run), 0.5);
  const ::quarry::eval::Run untied = {{"q", {{"10", 1.5}, {"9", 1.0}}}};
  EXPECT_DOUBLE_EQ(Metric1("mrr@10", qrels, untied), 1.0);
}

TEST(Metrics, UnjudgedDocumentsAreNonRelevant) {
  const Qrels qrels = {{"q", {{"rel", 1}, {"judged-no", 0}}}};
  const ::quarry::eval::Run run = {{"q", {{"unjudged", 3.0}, {"judged-no", 2.0}, {"rel", 1.0}}}};
  EXPECT_NEAR(Metric1("ndcg@10", qrels, run), 1 / std::log2(4.0), 1e-12);
  EXPECT_NEAR(Metric1("mrr@10", qrels, run), 1.0 / 3, 1e-12);
}

TEST(Metrics, IgnoreSelfDropsHitsNamedLikeTheQuery) {
  const Qrels qrels = {{"q", {{"x", 1}}}};
  const ::quarry::eval::Run run = {{"q", {{"q", 9.0}, {"x", 1.0}}}};
  EXPECT_DOUBLE_EQ(Metric1("mrr@10", qrels, run), 0.5);
  EXPECT_DOUBLE_EQ(Metric1("mrr@10", qrels, run, {.ignore_self = true}), 1.0);
}

TEST(Metrics, ParseRejectsUnknownOrMalformedMetrics) {
  auto ok = ParseMetrics("nDCG@10, Recall@100,mrr@10,P@5,map,MAP@1000");
  ASSERT_TRUE(ok.ok());
  std::vector<std::string> names;
  for (const auto& m : *ok) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"nDCG@10", "Recall@100", "MRR@10", "P@5", "MAP", "MAP@1000"}));
  for (const char* bad : {"ndcg", "ndcg@0", "ndcg@x", "recall@10x", "bleu@4", ""}) {
    EXPECT_FALSE(ParseMetrics(bad).ok()) << bad;
  }
}

TEST(Metrics, ParsesTrecEvalAndPytrecEvalNames) {
  auto ok = ParseMetrics("ndcg_cut.10,recall.100,P.5,map,map_cut.100,recip_rank,ndcg_cut_10,P_5");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  std::vector<std::string> names;
  for (const auto& m : *ok) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"nDCG@10", "Recall@100", "P@5", "MAP", "MAP@100", "MRR", "nDCG@10", "P@5"}));
  EXPECT_EQ((*ok)[5].kind, MetricKind::kMrr);
  EXPECT_EQ((*ok)[5].k, 0u);
  for (const char* bad : {"ndcg_cut.", "ndcg_cut.0", "recall.x", "recip_rank.10", "P.5x", "map,10", "10"}) {
    EXPECT_FALSE(ParseMetrics(bad).ok()) << bad;
  }
}

// trec_eval's -m: "ndcg_cut.5,10" is two cut-offs of one measure, a bare "P" its default nine; each
// prints under trec_eval's name.
TEST(Metrics, ParsesTrecEvalMeasureListsAndNamesThemAsTrecEvalDoes) {
  auto many = ParseMetrics("ndcg_cut.5,10,recall.100,1000,recip_rank,map");
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  std::vector<std::string> names, trec;
  for (const auto& m : *many) {
    names.push_back(m.name);
    trec.push_back(TrecEvalName(m));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"nDCG@5", "nDCG@10", "Recall@100", "Recall@1000", "MRR", "MAP"}));
  EXPECT_EQ(trec, (std::vector<std::string>{"ndcg_cut_5", "ndcg_cut_10", "recall_100", "recall_1000", "recip_rank", "map"}));
  auto bare = ParseMetrics("P");
  ASSERT_TRUE(bare.ok());
  std::vector<size_t> cutoffs;
  for (const auto& m : *bare) {
    EXPECT_EQ(m.kind, MetricKind::kPrecision);
    cutoffs.push_back(m.k);
  }
  EXPECT_EQ(cutoffs, (std::vector<size_t>{5, 10, 15, 20, 30, 100, 200, 500, 1000}));
  auto quarry_names = ParseMetrics("map@100,mrr@10,p@5");
  ASSERT_TRUE(quarry_names.ok());
  EXPECT_EQ(TrecEvalName((*quarry_names)[0]), "map_cut_100");
  EXPECT_EQ(TrecEvalName((*quarry_names)[1]), "recip_rank_cut_10");
  EXPECT_EQ(TrecEvalName((*quarry_names)[2]), "P_5");
}

TEST(Metrics, RecipRankReadsTheWholeRanking) {
  const Qrels qrels = {{"q", {{"d15", 1}}}};
  ::quarry::eval::Run run;
  for (int i = 0; i < 20; ++i) run["q"].push_back({"d" + std::to_string(i), 100.0 - i});
  EXPECT_DOUBLE_EQ(Metric1("recip_rank", qrels, run), 1.0 / 16);
  EXPECT_DOUBLE_EQ(Metric1("mrr@10", qrels, run), 0.0);
}

}  // namespace
}  // namespace quarry::eval
