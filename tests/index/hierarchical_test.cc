// Hierarchical retrieval: loading hierarchies, closures, splits, and the pretrain-finetune recipe on a
// small synthetic tree.
#include <gtest/gtest.h>

#include <random>

#include <filesystem>
#include <set>

#include "index/hierarchical/hierarchy.h"
#include "index/hierarchical/trainer.h"
#include "tests/test_util.h"

namespace quarry::hr {
namespace {

TEST(Hierarchy, EdgeListErrorsNameFileAndLine) {
  testing::TempDir tmp;
  testing::WriteFile(tmp / "ok.tsv", "# comment\nb\ta\nc\tb\n");
  auto h = LoadEdgeList(tmp / "ok.tsv");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->size(), 3u);
  const std::pair<const char*, const char*> bad[] = {
      {"b\ta\nno tab here\n", ":2: expected child<TAB>parent"},
      {"b\ta\tz\n", ":1: expected child<TAB>parent"},
      {"b\t\n", ":1: empty node name"},
      {"a\ta\n", ":1: node 'a' is its own parent"},
  };
  for (const auto& [content, message] : bad) {
    testing::WriteFile(tmp / "bad.tsv", content);
    auto r = LoadEdgeList(tmp / "bad.tsv");
    ASSERT_FALSE(r.ok()) << content;
    EXPECT_NE(r.status().message().find(tmp / std::string("bad.tsv") + message), std::string::npos)
        << r.status().message();
  }
  EXPECT_FALSE(LoadEdgeList(tmp / "missing.tsv").ok());
}

TEST(Hierarchy, ClosureGivesShortestDistancesAndRejectsCycles) {
  testing::TempDir tmp;
  // d has two paths to a: d-b-a (2) and d-c-e-a (3); the closure keeps the shorter.
  testing::WriteFile(tmp / "dag.tsv", "b\ta\nc\te\ne\ta\nd\tb\nd\tc\n");
  auto h = LoadEdgeList(tmp / "dag.tsv");
  ASSERT_TRUE(h.ok());
  auto c = ComputeClosure(*h);
  ASSERT_TRUE(c.ok());
  auto id = [&](const std::string& key) {
    return static_cast<NodeId>(std::find(h->keys.begin(), h->keys.end(), key) - h->keys.begin());
  };
  std::map<std::string, int> got;
  for (const auto& [node, d] : c->ancestors[id("d")]) got[h->keys[node]] = d;
  EXPECT_EQ(got, (std::map<std::string, int>{{"d", 0}, {"b", 1}, {"c", 1}, {"e", 2}, {"a", 2}}));
  EXPECT_TRUE(c->IsRelevant(id("d"), id("a")));
  EXPECT_FALSE(c->IsRelevant(id("a"), id("d")));
  EXPECT_EQ(c->max_distance(), 2);

  testing::WriteFile(tmp / "cycle.tsv", "b\ta\nc\tb\na\tc\n");
  auto cyclic = LoadEdgeList(tmp / "cycle.tsv");
  ASSERT_TRUE(cyclic.ok());
  auto closure = ComputeClosure(*cyclic);
  ASSERT_FALSE(closure.ok());
  EXPECT_NE(closure.status().message().find("cycle"), std::string::npos);
}

TEST(Hierarchy, ReadsWordNetRecordsAndReportsBadOnes) {
  testing::TempDir tmp;
  const std::string header = "  1 This software and database is being provided\n";
  const std::string good =
      "00001740 03 n 01 entity 0 001 ~ 00001930 n 0000 | that which is perceived\n"
      "00001930 03 n 01 physical_entity 0 001 @ 00001740 n 0000 | an entity that has physical existence\n"
      "00002000 03 n 02 Rome 0 Roma 0 002 @i 00001930 n 0000 + 00000001 v 0000 | a city\n";
  testing::WriteFile(tmp / "data.noun", header + good);
  auto h = LoadWordNetNouns(tmp / "data.noun");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ(h->keys[2], "n00002000");
  EXPECT_EQ(h->labels[1], "physical entity");
  EXPECT_EQ(h->labels[2], "Rome, Roma");
  EXPECT_EQ(h->glosses[2], "a city");
  EXPECT_EQ(h->parents[2], std::vector<NodeId>{1});  // the instance hypernym; the verb pointer is ignored
  EXPECT_TRUE(h->parents[0].empty());

  testing::WriteFile(tmp / "dangling.noun", header + good + "00003000 03 n 01 x 0 001 @ 09999999 n 0000 | y\n");
  auto dangling = LoadWordNetNouns(tmp / "dangling.noun");
  ASSERT_FALSE(dangling.ok());
  EXPECT_NE(dangling.status().message().find("dangling.noun:5: hypernym 09999999"), std::string::npos)
      << dangling.status().message();
  testing::WriteFile(tmp / "truncated.noun", header + "00003000 03 n 02 x 0\n");
  auto truncated = LoadWordNetNouns(tmp / "truncated.noun");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("truncated.noun:2: truncated word list"), std::string::npos)
      << truncated.status().message();
}

// The figures of the Poincaré-embeddings paper (Nickel & Kiela 2017) for the same closure: 82,115
// noun synsets and 743,241 hypernymy pairs.
TEST(Hierarchy, WordNetNounClosureHasThePublishedSize) {
  if (!std::filesystem::exists(kDefaultWordNetNouns)) GTEST_SKIP() << kDefaultWordNetNouns << " missing (wordnet-base)";
  auto h = LoadWordNetNouns(kDefaultWordNetNouns);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->size(), 82115u);
  auto c = ComputeClosure(*h);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_pairs() - h->size(), 743241u);
}

TEST(Hierarchy, SplitIsSeededAndKeepsSelfAndDirectPairsInTrain) {
  const Hierarchy h = CompleteTree(4, 3);
  auto c = ComputeClosure(h);
  ASSERT_TRUE(c.ok());
  const Split a = SplitPairs(*c, 0.1, 0.2, 5), b = SplitPairs(*c, 0.1, 0.2, 5), other = SplitPairs(*c, 0.1, 0.2, 6);
  auto key = [](const std::vector<Pair>& v) {
    std::vector<std::pair<NodeId, NodeId>> out;
    for (const auto& p : v) out.emplace_back(p.query, p.doc);
    return out;
  };
  EXPECT_EQ(key(a.test), key(b.test));
  EXPECT_NE(key(a.test), key(other.test));
  EXPECT_EQ(a.train.size() + a.validation.size() + a.test.size(), c->n_pairs());
  for (const auto* held_out : {&a.validation, &a.test}) {
    for (const auto& p : *held_out) EXPECT_GE(p.distance, 2);
  }
  size_t direct = 0;
  for (const auto& p : a.train) direct += p.distance <= 1;
  EXPECT_EQ(direct, h.size() * 2 - 1);  // every node's self pair and every edge
}

// The recipe on a complete tree of height 4, branching 5 (781 nodes): plain in-batch softmax loses the
// long-distance pairs (the generic ancestors are other rows' positives, pushed away as negatives);
// finetuning on pairs at distance >= 3 with false negatives masked brings them back.
TEST(HierarchicalTraining, PretrainFinetuneRecoversLongDistancePairs) {
  const Hierarchy h = CompleteTree(4, 5);
  auto c = ComputeClosure(h);
  ASSERT_TRUE(c.ok());
  const Split split = SplitPairs(*c, 0.0, 0.0, 1);  // every pair trains; recall measures the fit
  TrainOptions o;
  o.dim = 16;
  o.batch = 64;
  o.negatives = 64;
  o.scale = 20;  // on this small tree the loss is plainest at a softer scale than WordNet's default
  o.epochs = 20;
  o.mask_false_negatives = false;
  o.finetune_epochs = 20;
  o.finetune_min_distance = 3;
  auto r = Train(*c, split, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto standard = EvaluateRecall(r->standard, *c, split.train);
  auto tuned = EvaluateRecall(r->finetuned, *c, split.train);
  ASSERT_TRUE(standard.ok() && tuned.ok());
  EXPECT_GE(standard->Recall(0), 0.95);
  EXPECT_LE(standard->Recall(4), 0.2) << "the standard recipe should lose the root";
  EXPECT_GE(tuned->Recall(4), standard->Recall(4) + 0.5);
  EXPECT_GE(tuned->Overall(), standard->Overall() + 0.15);
  EXPECT_GE(tuned->Recall(1), 0.95) << "finetuning must keep the short-distance pairs";
  // Masking false negatives while pretraining avoids the loss in the first place.
  o.mask_false_negatives = true;
  o.finetune_epochs = 0;
  auto masked = Train(*c, split, o);
  ASSERT_TRUE(masked.ok());
  auto masked_recall = EvaluateRecall(masked->standard, *c, split.train);
  ASSERT_TRUE(masked_recall.ok());
  EXPECT_GE(masked_recall->Recall(4), 0.9);
  // So does the corpus softmax, unmasked: each document counts once, so the root is one negative among
  // all documents instead of a candidate as often as it is a positive.
  o.mask_false_negatives = false;
  o.softmax = Softmax::kCorpus;
  auto corpus = Train(*c, split, o);
  ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
  auto corpus_recall = EvaluateRecall(corpus->standard, *c, split.train);
  ASSERT_TRUE(corpus_recall.ok());
  EXPECT_GE(corpus_recall->Recall(1), 0.95);
  EXPECT_GE(corpus_recall->Recall(4), standard->Recall(4) + 0.5);
  o.negatives = 0;
  EXPECT_FALSE(Train(*c, split, o).ok()) << "the corpus softmax estimates the other documents from uniform draws";
}

// The trainer's gradients (both softmaxes, masked or not, through the row normalisation) against
// central finite differences of its own loss, on a 13-node tree with raw rows of varied length.
TEST(HierarchicalTraining, GradientsMatchFiniteDifferences) {
  const Hierarchy h = CompleteTree(2, 3);
  auto c = ComputeClosure(h);
  ASSERT_TRUE(c.ok());
  const size_t n = h.size(), dim = 4;
  Embeddings raw;
  raw.dim = dim;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (size_t i = 0; i < n * dim; ++i) raw.queries.push_back(uniform(rng) * (1.0f + static_cast<float>(i % 3)));
  for (size_t i = 0; i < n * dim; ++i) raw.docs.push_back(uniform(rng) * (1.0f + static_cast<float>(i % 5)));
  // Leaves 4..12 have the root (0) and a level-1 node as ancestors; two pairs share document 0, and the
  // draws repeat a node and include relevant documents, so every masking rule is exercised.
  const std::vector<Pair> pairs{{4, 1, 1}, {4, 0, 2}, {9, 0, 2}, {12, 12, 0}, {2, 0, 1}};
  const std::vector<NodeId> draws{0, 5, 5, 3, 11, 1};
  for (Softmax softmax : {Softmax::kInBatch, Softmax::kCorpus}) {
    for (bool mask : {false, true}) {
      SCOPED_TRACE(std::string(SoftmaxName(softmax)) + (mask ? " masked" : ""));
      std::vector<float> dq, dd, unused_q, unused_d;
      StepGradient(*c, raw, pairs, draws, softmax, 5.0f, mask, &dq, &dd);
      ASSERT_EQ(dq.size(), n * dim);
      ASSERT_EQ(dd.size(), n * dim);
      double largest = 0;
      for (auto* table : {&raw.queries, &raw.docs}) {
        const auto& analytic = table == &raw.queries ? dq : dd;
        for (size_t k = 0; k < table->size(); ++k) {
          const float saved = (*table)[k], step = 1e-2f;
          (*table)[k] = saved + step;
          const double up = StepGradient(*c, raw, pairs, draws, softmax, 5.0f, mask, &unused_q, &unused_d);
          (*table)[k] = saved - step;
          const double down = StepGradient(*c, raw, pairs, draws, softmax, 5.0f, mask, &unused_q, &unused_d);
          (*table)[k] = saved;
          const double numeric = (up - down) / (2.0 * step);
          EXPECT_NEAR(analytic[k], numeric, 1e-4 + 1e-3 * std::abs(numeric)) << "entry " << k;
          largest = std::max(largest, std::abs(numeric));
        }
      }
      EXPECT_GT(largest, 0.05) << "the check must see gradients";
    }
  }
}

TEST(HierarchicalTraining, SoftmaxNamesRoundTrip) {
  for (Softmax s : {Softmax::kInBatch, Softmax::kCorpus}) {
    auto parsed = ParseSoftmax(SoftmaxName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(ParseSoftmax("full").ok());
}

TEST(HierarchicalTraining, RecallOfPerfectEmbeddingsIsOneAndBadInputIsAnError) {
  // Embeddings built by hand: query i equals the normalised sum of its relevant documents' one-hot
  // vectors, so every relevant document outranks every other one.
  const Hierarchy h = CompleteTree(2, 2);
  auto c = ComputeClosure(h);
  ASSERT_TRUE(c.ok());
  const size_t n = h.size();
  Embeddings e;
  e.dim = n;
  e.docs.assign(n * n, 0.0f);
  e.queries.assign(n * n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    e.docs[i * n + i] = 1.0f;
    for (const auto& [doc, d] : c->ancestors[i]) e.queries[i * n + doc] = 1.0f;
  }
  std::vector<Pair> all;
  for (NodeId q = 0; q < n; ++q) {
    for (const auto& [doc, d] : c->ancestors[q]) all.push_back({q, doc, d});
  }
  auto t = EvaluateRecall(e, *c, all);
  ASSERT_TRUE(t.ok());
  EXPECT_DOUBLE_EQ(t->Overall(), 1.0);
  EXPECT_DOUBLE_EQ(t->PerQuery(), 1.0);
  // Swap the queries of leaves 3 and 5 (cousins): each then finds only the root of its 3
  // relevant documents, so 2 of 7 queries score 1/3 and 4 of the 17 pairs are lost.
  std::swap_ranges(&e.queries[3 * n], &e.queries[4 * n], &e.queries[5 * n]);
  t = EvaluateRecall(e, *c, all);
  ASSERT_TRUE(t.ok());
  EXPECT_LT(t->Recall(1), 1.0);
  EXPECT_LT(t->Recall(0), 1.0);
  EXPECT_NEAR(t->Overall(), 13.0 / 17.0, 1e-12);
  EXPECT_NEAR(t->PerQuery(), (5.0 + 2.0 / 3.0) / 7.0, 1e-12);

  e.docs.pop_back();
  EXPECT_FALSE(EvaluateRecall(e, *c, all).ok());
  EXPECT_FALSE(Train(*c, Split{}, TrainOptions{}).ok());
}

}  // namespace
}  // namespace quarry::hr
