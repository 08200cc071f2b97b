#include "rerank/resmem.h"

#include "common/coding.h"

#include <gtest/gtest.h>

#include <cmath>

namespace quarry {
namespace {

TEST(ResMem, TrainingResidualsAreTargetMinusCalibratedScore) {
  const std::vector<ScoredDoc> candidates = {{"a", 2.0}, {"b", 1.0}};
  const std::map<std::string, int> judgements = {{"b", 1}, {"c", 2}, {"d", 0}};
  const auto r = TrainingResiduals(candidates, judgements, 1.0);
  const double pa = std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), pb = 1 - pa;
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, "a");
  EXPECT_NEAR(r[0].second, 0 - pa, 1e-12);
  EXPECT_EQ(r[1].first, "b");
  EXPECT_NEAR(r[1].second, 0.5 - pb, 1e-12);  // two relevant documents: target 1/2 each
  EXPECT_EQ(r[2].first, "c");                 // relevant but not retrieved: residual = target
  EXPECT_NEAR(r[2].second, 0.5, 1e-12);
  // A higher temperature flattens the calibration.
  const auto flat = TrainingResiduals(candidates, judgements, 1e9);
  EXPECT_NEAR(flat[0].second, -0.5, 1e-6);
}

TEST(ResMem, CorrectionFollowsTheFormulaAndAddsMemoryDocuments) {
  std::vector<MemoryQuery> memory = {
      {"t1", "statin heart", {{"x", 0.4}, {"y", -0.2}}},
      {"t2", "liver enzyme", {{"y", 0.3}, {"z", 0.9}}},
  };
  auto r = ResMem::Create(memory, {.k = 2, .sigma = 1, .temperature = 1, .lambda = 0.5, .depth = 3});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::vector<ScoredDoc> candidates = {{"x", 1.0}, {"y", 1.0}, {"w", 0.0}, {"v", -5.0}};
  const std::vector<std::pair<size_t, double>> neighbours = {{0, 2.0}, {1, 1.0}};
  const auto out = (*r)->Correct(candidates, neighbours);
  // Calibration over the top depth=3 candidates; weights softmax(2, 1).
  const double z = 2 * std::exp(1.0) + 1, px = std::exp(1.0) / z, pw = 1 / z;
  const double w0 = std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), w1 = 1 - w0;
  const std::map<std::string, double> want = {
      {"x", px + 0.5 * w0 * 0.4},
      {"y", px + 0.5 * (w0 * -0.2 + w1 * 0.3)},
      {"w", pw},
      {"z", 0.5 * w1 * 0.9}};  // added by the memory with base score 0
  ASSERT_EQ(out.size(), 3u) << "cut back to depth";
  std::vector<std::pair<double, std::string>> ranked;
  for (const auto& [doc, score] : want) ranked.emplace_back(score, doc);
  std::sort(ranked.rbegin(), ranked.rend());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].id, ranked[i].second) << i;
    EXPECT_NEAR(out[i].score, ranked[i].first, 1e-12) << i;
    EXPECT_NEAR(out[i].base + out[i].correction, out[i].score, 1e-15) << i;
  }
  // lambda = 0 keeps the base order.
  ResMemOptions off = (*r)->params();
  off.lambda = 0;
  const auto base = (*r)->Correct(candidates, neighbours, off);
  ASSERT_EQ(base.size(), 3u);
  EXPECT_EQ(base[0].id, "x");
  EXPECT_EQ(base[1].id, "y");
  EXPECT_EQ(base[2].id, "w");
  EXPECT_EQ(base[0].correction, 0.0);
}

TEST(ResMem, NeighboursAreTheMostSimilarTrainingQueries) {
  auto r = ResMem::Create({{"t1", "statins lower cholesterol", {}},
                           {"t2", "liver enzymes in hepatitis", {}},
                           {"t3", "cholesterol transport in the liver", {}}},
                          {});
  ASSERT_TRUE(r.ok());
  auto found = (*r)->Neighbours("cholesterol lowering statins", 5);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  const auto& n = *found;
  ASSERT_EQ(n.size(), 2u) << "t2 shares no term";
  EXPECT_EQ(n[0].first, 0u);
  EXPECT_EQ(n[1].first, 2u);
  EXPECT_GT(n[0].second, n[1].second);
}

TEST(ResMem, EncodeDecodeRoundTripAndCorruption) {
  auto r = ResMem::Create({{"q1", "text one", {{"d1", 0.25}, {"d2", -1e-9}}}, {"q2", "two", {}}},
                          {.k = 7, .sigma = 0.5f, .temperature = 4, .lambda = 2, .depth = 50});
  ASSERT_TRUE(r.ok());
  const std::string bytes = (*r)->Encode();
  auto back = ResMem::Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->Encode(), bytes);
  EXPECT_EQ((*back)->params().k, 7u);
  EXPECT_EQ((*back)->memory()[0].residuals[1].second, -1e-9);
  for (size_t n : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_EQ(ResMem::Decode(bytes.substr(0, n)).status().code(), StatusCode::kCorruption) << n;
  }
  EXPECT_FALSE(ResMem::Create({}, {.k = 0}).ok());
}

TEST(ResMem, DenseNeighboursAreTheLargestInnerProducts) {
  const ResMemParams dense{.neighbours = ResMemNeighbours::kDense};
  auto r = ResMem::Create({{"a", "", {}, {1, 0, 0}}, {"b", "", {}, {0.6f, 0.8f, 0}}, {"c", "", {}, {0, 0, 1}},
                           {"d", "", {}, {0.6f, 0.8f, 0}}},
                          dense, "encoder-x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto found = (*r)->Neighbours(std::vector<float>{0.8f, 0.6f, 0}, 3);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 3u);
  // a: 0.8; b and d: 0.96 (tied: memory order); c: 0.
  EXPECT_EQ((*found)[0].first, 1u);
  EXPECT_EQ((*found)[1].first, 3u);
  EXPECT_EQ((*found)[2].first, 0u);
  EXPECT_NEAR((*found)[0].second, 0.96, 1e-6);
  // Each memory answers only its own kind of query, and dimensions must agree.
  EXPECT_EQ((*r)->Neighbours("text", 3).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*r)->Neighbours(std::vector<float>{1, 0}, 3).status().code(), StatusCode::kInvalidArgument);
  auto lexical = ResMem::Create({{"a", "statins", {}}}, {});
  ASSERT_TRUE(lexical.ok());
  EXPECT_EQ((*lexical)->Neighbours(std::vector<float>{1}, 1).status().code(), StatusCode::kFailedPrecondition);
  // Every query needs an embedding of the same dimension.
  EXPECT_FALSE(ResMem::Create({{"a", "", {}, {1, 0}}, {"b", "", {}, {1}}}, dense).ok());
  EXPECT_FALSE(ResMem::Create({{"a", "", {}, {}}}, dense).ok());
}

TEST(ResMem, DenseMemoriesRoundTripAndVersionOneStillDecodes) {
  auto r = ResMem::Create({{"q1", "one", {{"d1", 0.5}}, {0.25f, -1.5f}}, {"q2", "two", {}, {3, 4}}},
                          {.k = 3, .neighbours = ResMemNeighbours::kDense}, "{\"model\":\"m\"}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string bytes = (*r)->Encode();
  auto back = ResMem::Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->Encode(), bytes);
  EXPECT_EQ((*back)->params().neighbours, ResMemNeighbours::kDense);
  EXPECT_EQ((*back)->encoder(), "{\"model\":\"m\"}");
  EXPECT_EQ((*back)->memory()[1].embedding, (std::vector<float>{3, 4}));
  for (size_t n : {bytes.size() - 1, bytes.size() - 4, bytes.size() - 8}) {
    EXPECT_EQ(ResMem::Decode(bytes.substr(0, n)).status().code(), StatusCode::kCorruption) << n;
  }
  EXPECT_EQ(ResMem::Decode(bytes + "x").status().code(), StatusCode::kCorruption);
  // A version 1 memory (written before dense neighbours): BM25 neighbours, no embeddings.
  std::string v1(1, '\x01');
  PutLengthPrefixed(&v1, R"({"k":2,"sigma":1.0,"temperature":1.0,"lambda":1.0,"depth":100})");
  PutVarint64(&v1, 1);
  PutLengthPrefixed(&v1, "q1");
  PutLengthPrefixed(&v1, "statins lower cholesterol");
  PutVarint64(&v1, 0);
  auto old = ResMem::Decode(v1);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ((*old)->params().neighbours, ResMemNeighbours::kBm25);
  auto n = (*old)->Neighbours("statins", 2);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->size(), 1u);
}

}  // namespace
}  // namespace quarry
