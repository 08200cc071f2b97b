#include "index/lexical/bm25.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>

#include "quarry/eval.h"
#include "index/lexical/lexical_index.h"
#include "quarry/collection.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

// {value, SmallFloat.intToByte4(value), SmallFloat.byte4ToInt(byte)} as Lucene 8.7 computes them.
const struct {
  uint32_t value;
  uint32_t byte;
  uint32_t decoded;
} kSmallFloat[] = {
  {0, 0, 0},
  {1, 1, 1},
  {23, 23, 23},
  {24, 24, 24},
  {25, 25, 25},
  {31, 31, 31},
  {32, 32, 32},
  {40, 40, 40},
  {100, 57, 96},
  {161, 64, 152},
  {255, 70, 248},
  {1000, 87, 984},
  {12345, 116, 12312},
  {1000000, 167, 983064},
  {2147483647, 255, 2013265944},
};

TEST(Bm25, NormEncodingMatchesLuceneSmallFloat) {
  for (const auto& c : kSmallFloat) {
    EXPECT_EQ(IntToByte4(c.value), c.byte) << c.value;
    EXPECT_EQ(Byte4ToInt(static_cast<uint8_t>(c.byte)), c.decoded) << c.value;
  }
  for (uint32_t i = 0; i < 100000; i += 7) EXPECT_LE(Byte4ToInt(IntToByte4(i)), i);
}

// Lucene 8.7 (EnglishAnalyzer, BM25Similarity(0.9, 0.4), classic QueryParser) over these documents,
// ids d0..d6 in this order: the exact float scores it returned.
const char* kTinyCorpus[] = {
    "Statins lower cholesterol in patients with heart disease.",
    "Cholesterol cholesterol cholesterol: a review of lipid metabolism and cholesterol transport in the liver and the heart.",
    "The heart is a muscle.",
    "Dietary fat, cholesterol and coronary heart disease: a prospective cohort study of 80,000 women followed for fourteen years.",
    "Statins statins statins.",
    "the of and",
    "Exercise reduces the risk of coronary disease."};

const struct {
  std::string query;
  std::vector<std::pair<std::string, float>> hits;
} kLuceneScores[] = {
  {"cholesterol heart disease", {{"d0", 0.98075485f}, {"d3", 0.7962226f}, {"d1", 0.7582048f}, {"d6", 0.38295424f}, {"d2", 0.2681024f}, }},
  {"statins", {{"d4", 0.83437556f}, {"d0", 0.5523709f}, }},
  {"heart heart", {{"d2", 0.5362048f}, {"d0", 0.47406945f}, {"d1", 0.4248392f}, {"d3", 0.38487175f}, }},
  {"coronary disease risk women", {{"d6", 1.8028793f}, {"d3", 1.4212595f}, {"d0", 0.37186006f}, }},
  {"the", {}},
};

TEST(Bm25, ScoresEqualLucenesBitForBit) {
  testing::TempDir tmp;
  auto c = Collection::Open(tmp / "c", {.create_if_missing = true});
  ASSERT_TRUE(c.ok());
  std::vector<Document> docs;
  for (size_t i = 0; i < std::size(kTinyCorpus); ++i) docs.push_back({"d" + std::to_string(i), "", kTinyCorpus[i], ""});
  ASSERT_TRUE((*c)->Upsert(docs).ok());
  for (const auto& q : kLuceneScores) {
    for (bool exhaustive : {false, true}) {
      auto hits = (*c)->Search(q.query, {.k = 10, .exhaustive = exhaustive});
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), q.hits.size()) << q.query;
      for (size_t i = 0; i < hits->size(); ++i) {
        EXPECT_EQ((*hits)[i].id, q.hits[i].first) << q.query << " rank " << i;
        EXPECT_EQ((*hits)[i].score, q.hits[i].second) << q.query << " rank " << i;
      }
    }
  }
}

// Runs SciFact's test queries; returns the run (scores as a run file holds them).
eval::Run RetrieveAll(const Collection& c, const std::vector<eval::Query>& queries, size_t k, bool exhaustive) {
  std::vector<std::string> texts;
  for (const auto& q : queries) texts.push_back(q.text);
  auto results = c.SearchBatch(texts, {.k = k, .exhaustive = exhaustive, .hydrate = false});
  EXPECT_TRUE(results.ok());
  eval::Run run;
  for (size_t i = 0; i < queries.size(); ++i) {
    for (const auto& h : (*results)[i]) run[queries[i].id].push_back({h.id, eval::RunFileScore(h.score)});
  }
  return run;
}

class SciFact : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = testing::SharedPath("datasets/scifact");
    if (dir.empty()) return;
    tmp_ = new testing::TempDir();
    auto c = Collection::Open(*tmp_ / "scifact", {.create_if_missing = true});
    ASSERT_TRUE(c.ok());
    auto r = (*c)->IngestFile(dir + "/corpus.jsonl", {}, {.batch_docs = 1000, .sync = false});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    collection_ = c->release();
    auto qrels = eval::LoadQrels(dir + "/qrels/test.tsv");
    auto queries = eval::LoadQueries(dir + "/queries.jsonl");
    ASSERT_TRUE(qrels.ok() && queries.ok());
    qrels_ = new eval::Qrels(*qrels);
    queries_ = new std::vector<eval::Query>;
    for (const auto& q : *queries) {
      if (qrels->count(q.id)) queries_->push_back(q);
    }
  }
  static void TearDownTestSuite() {
    delete collection_;
    delete qrels_;
    delete queries_;
    delete tmp_;
  }
  void SetUp() override {
    if (!collection_) GTEST_SKIP() << "../shared/datasets/scifact is missing; skipping";
  }
  static testing::TempDir* tmp_;
  static Collection* collection_;
  static eval::Qrels* qrels_;
  static std::vector<eval::Query>* queries_;
};
testing::TempDir* SciFact::tmp_ = nullptr;
Collection* SciFact::collection_ = nullptr;
eval::Qrels* SciFact::qrels_ = nullptr;
std::vector<eval::Query>* SciFact::queries_ = nullptr;

TEST_F(SciFact, ReproducesPyseriniBm25Flat) {
  ASSERT_EQ(queries_->size(), 300u);
  auto metrics = eval::ParseMetrics("ndcg@10,recall@100");
  ASSERT_TRUE(metrics.ok());
  const auto ev = eval::Evaluate(*qrels_, RetrieveAll(*collection_, *queries_, 1000, false), *metrics);
  // Published Pyserini BM25 flat figures (../shared/datasets/README.md).
  EXPECT_NEAR(ev.mean[0], 0.6789, 0.002);
  EXPECT_NEAR(ev.mean[1], 0.9253, 0.003);
}

TEST_F(SciFact, MaxScoreReturnsExactlyWhatExhaustiveScoringReturns) {
  for (size_t k : {1, 10, 100, 1000}) {
    const eval::Run pruned = RetrieveAll(*collection_, *queries_, k, false);
    const eval::Run full = RetrieveAll(*collection_, *queries_, k, true);
    ASSERT_EQ(pruned.size(), full.size());
    for (const auto& [qid, entries] : full) {
      const auto& other = pruned.at(qid);
      ASSERT_EQ(other.size(), entries.size()) << qid << " k=" << k;
      for (size_t i = 0; i < entries.size(); ++i) {
        EXPECT_EQ(other[i].doc, entries[i].doc) << qid << " k=" << k << " rank " << i;
        EXPECT_EQ(other[i].score, entries[i].score) << qid << " k=" << k << " rank " << i;
      }
    }
  }
}

// Upserts and deletes leave garbage postings behind instead of rewriting blocks; the results must
// still equal those of a collection built fresh from the final documents.
TEST(Bm25, IncrementalChangesGiveTheSameResultsAsAFreshBuild) {
  std::mt19937 rng(7);
  const std::vector<std::string> words = {"heart", "disease", "statin", "cholesterol", "liver", "cell",
                                          "protein", "gene", "cancer", "risk", "trial", "dose"};
  auto random_text = [&](int n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += words[rng() % words.size()] + " ";
    return t;
  };
  testing::TempDir tmp;
  auto incremental = Collection::Open(tmp / "inc", {.create_if_missing = true});
  ASSERT_TRUE(incremental.ok());
  std::map<std::string, Document> truth;
  for (int round = 0; round < 6; ++round) {
    std::vector<Document> batch;
    for (int i = 0; i < 40; ++i) {
      Document d{"d" + std::to_string(rng() % 120), "", random_text(3 + rng() % 20), ""};
      batch.push_back(d);
      truth[d.id] = d;
    }
    ASSERT_TRUE((*incremental)->Upsert(batch).ok());
    for (int i = 0; i < 8; ++i) {
      const std::string id = "d" + std::to_string(rng() % 120);
      auto deleted = (*incremental)->Delete(id);
      ASSERT_TRUE(deleted.ok());
      EXPECT_EQ(*deleted, truth.erase(id) == 1) << id;
    }
  }
  auto check = (*incremental)->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);

  // The fresh collection gets the surviving documents in the incremental one's doc-number order, so
  // that ties break the same way.
  auto fresh = Collection::Open(tmp / "fresh", {.create_if_missing = true});
  ASSERT_TRUE(fresh.ok());
  auto all = (*incremental)->Search(random_text(0) + "heart disease statin cholesterol liver cell protein gene cancer risk trial dose",
                                    {.k = 1000});
  ASSERT_TRUE(all.ok());
  std::vector<std::pair<uint32_t, std::string>> order;
  for (const auto& h : *all) order.emplace_back(h.doc, h.id);
  std::sort(order.begin(), order.end());
  ASSERT_EQ(order.size(), truth.size());
  std::vector<Document> docs;
  for (const auto& [doc, id] : order) docs.push_back(truth.at(id));
  ASSERT_TRUE((*fresh)->Upsert(docs).ok());

  auto expect_same_results = [&](const std::string& when) {
    for (const std::string q : {"heart", "statin dose", "cancer gene protein risk", "trial trial liver", "missing"}) {
      auto a = (*incremental)->Search(q, {.k = 50});
      auto b = (*fresh)->Search(q, {.k = 50});
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->size(), b->size()) << q << " " << when;
      for (size_t i = 0; i < a->size(); ++i) {
        EXPECT_EQ((*a)[i].id, (*b)[i].id) << q << " rank " << i << " " << when;
        EXPECT_EQ((*a)[i].score, (*b)[i].score) << q << " rank " << i << " " << when;
      }
    }
  };
  expect_same_results("before compaction");
  // Compaction drops the garbage postings and changes no result.
  auto dropped = (*incremental)->Compact();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_GT(*dropped, 0u);
  expect_same_results("after compaction");
  EXPECT_TRUE((*incremental)->Check()->ok());
  auto again = (*incremental)->Compact();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u) << "nothing left to drop";
}

}  // namespace
}  // namespace quarry
