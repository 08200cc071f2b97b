#include "quarry/collection.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "tests/test_util.h"

namespace quarry {
namespace {

std::unique_ptr<Collection> NewCollection(const testing::TempDir& tmp) {
  auto c = Collection::Open(tmp / "c", {.create_if_missing = true});
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

std::string BeirLine(const std::string& id, const std::string& text) {
  return "{\"_id\": \"" + id + "\", \"title\": \"\", \"text\": \"" + text + "\"}\n";
}

TEST(Collection, RoundTripsEveryFieldAndSurvivesReopen) {
  testing::TempDir tmp;
  const Document unicode{"ü-1", "Tïtle 標題 😀", "Text\twith\nnewlines and \"quotes\"", R"({"a":[1,{"b":null}]})"};
  {
    auto c = NewCollection(tmp);
    ASSERT_TRUE(c->Upsert({unicode, {"plain", "", "", ""}}).ok());
  }
  auto c = Collection::Open(tmp / "c", {.read_only = true});
  ASSERT_TRUE(c.ok());
  auto got = (*c)->Get("ü-1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, unicode);
  auto plain = (*c)->Get("plain");
  ASSERT_TRUE(plain.ok() && plain->has_value());
  EXPECT_EQ((*plain)->text, "");
  auto none = (*c)->Get("absent");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->n_docs, 2u);
}

TEST(Collection, UpsertReplacesAndDeleteRemoves) {
  testing::TempDir tmp;
  auto c = NewCollection(tmp);
  ASSERT_TRUE(c->Upsert({{"a", "", "old text about apples", ""}, {"b", "", "bananas", ""}}).ok());
  ASSERT_TRUE(c->Upsert({{"a", "", "new text about cherries", ""}}).ok());
  EXPECT_EQ((*c->Get("a"))->text, "new text about cherries");
  auto apples = c->Search("apples");
  ASSERT_TRUE(apples.ok());
  EXPECT_TRUE(apples->empty()) << "the replaced version must not be searchable";
  auto cherries = c->Search("cherries");
  ASSERT_TRUE(cherries.ok());
  ASSERT_EQ(cherries->size(), 1u);
  EXPECT_EQ((*cherries)[0].id, "a");
  EXPECT_EQ(c->Stats()->n_docs, 2u);

  auto deleted = c->Delete("b");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
  EXPECT_FALSE(c->Get("b")->has_value());
  EXPECT_TRUE(c->Search("bananas")->empty());
  auto again = c->Delete("b");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(c->Stats()->n_docs, 1u);

  // A duplicate id inside one batch: the later one wins.
  ASSERT_TRUE(c->Upsert({{"d", "", "first", ""}, {"d", "", "second", ""}}).ok());
  EXPECT_EQ((*c->Get("d"))->text, "second");
  EXPECT_TRUE(c->Search("first")->empty());
  EXPECT_EQ(c->Stats()->n_docs, 2u);
  auto check = c->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->problems[0];
}

TEST(Collection, RejectsBadDocumentsWithoutApplyingTheBatch) {
  testing::TempDir tmp;
  auto c = NewCollection(tmp);
  EXPECT_EQ(c->Upsert({{"ok", "", "fine", ""}, {"", "", "no id", ""}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Upsert({{"ok", "", "fine", ""}, {"bad", "", "\xff", ""}}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(c->Get("ok")->has_value());
  EXPECT_EQ(c->Stats()->n_docs, 0u);
  ASSERT_TRUE(c->Upsert({{"ok", "", "fine", ""}}).ok());
  EXPECT_TRUE(c->Check()->ok());
}

TEST(Collection, IngestStopsAtABadLineKeepingEarlierBatches) {
  testing::TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 25; ++i) corpus += BeirLine("d" + std::to_string(i), "text " + std::to_string(i));
  corpus += "{\"_id\": \"broken\", \"text\": \n";
  for (int i = 25; i < 30; ++i) corpus += BeirLine("d" + std::to_string(i), "more");
  testing::WriteFile(tmp / "corpus.jsonl", corpus);
  auto c = NewCollection(tmp);
  auto r = c->IngestFile(tmp / "corpus.jsonl", {}, {.batch_docs = 10});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("corpus.jsonl:26: malformed JSON"), std::string::npos) << r.status().message();
  // Batches of 10: d0..d19 were committed; d20..d24 were in the failing batch.
  EXPECT_EQ(c->Stats()->n_docs, 20u);
  EXPECT_TRUE(c->Get("d19")->has_value());
  EXPECT_FALSE(c->Get("d20")->has_value());
  EXPECT_TRUE(c->Check()->ok());

  // --skip-invalid: everything else goes in, and the bad line is reported.
  auto skipped = c->IngestFile(tmp / "corpus.jsonl", {},
                               {.batch_docs = 10, .skip_invalid = true, .report_path = tmp / "report.txt"});
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->n_skipped, 1u);
  EXPECT_EQ(skipped->n_read, 30u);
  EXPECT_EQ(skipped->n_replaced, 20u);
  EXPECT_EQ(skipped->n_added, 10u);
  EXPECT_EQ(c->Stats()->n_docs, 30u);
  const std::string report = testing::ReadFile(tmp / "report.txt");
  EXPECT_NE(report.find("corpus.jsonl:26: malformed JSON"), std::string::npos) << report;
}

TEST(Collection, ReadOnlyOpenRefusesWrites) {
  testing::TempDir tmp;
  { ASSERT_NE(NewCollection(tmp), nullptr); }
  auto c = Collection::Open(tmp / "c", {.read_only = true});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Upsert({{"a", "", "t", ""}}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*c)->Delete("a").status().code(), StatusCode::kFailedPrecondition);
}

// BlockRank in the search pipeline (tiny random-weight Mistral): the top `depth` hits are reordered
// by their in-context scores, and the tail keeps BM25's order below them.
TEST(Collection, RerankStageReordersTheHead) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-mistral");
  testing::TempDir tmp;
  auto c = NewCollection(tmp);
  std::vector<Document> docs;
  for (int i = 0; i < 12; ++i) docs.push_back({"d" + std::to_string(i), "", "heart disease study number " + std::to_string(i) + std::string(i, '!'), ""});
  ASSERT_TRUE(c->Upsert(docs).ok());
  SearchOptions plain{.k = 12, .hydrate = false};
  EXPECT_EQ(c->Search("heart", {.k = 3, .rerank = true}).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(c->rerank().Load(model, {.scoring_layer = 2, .depth = 5}).ok());
  EXPECT_TRUE(c->rerank().loaded());
  auto base = c->Search("heart disease", plain);
  SearchOptions reranked = plain;
  reranked.rerank = true;
  SearchTimings timings;
  auto hits = c->Search("heart disease", reranked, &timings);
  ASSERT_TRUE(base.ok() && hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 12u);
  EXPECT_GT(timings.rerank_ms, 0.0);
  std::set<std::string> head_before, head_after;
  for (int i = 0; i < 5; ++i) {
    head_before.insert((*base)[i].id);
    head_after.insert((*hits)[i].id);
    EXPECT_FALSE(std::isnan((*hits)[i].stages.rerank)) << i;
    if (i > 0) {
      EXPECT_GE((*hits)[i - 1].stages.rerank, (*hits)[i].stages.rerank);
    }
  }
  EXPECT_EQ(head_after, head_before) << "reranking reorders the top 5, it does not change them";
  for (size_t i = 5; i < 12; ++i) {
    EXPECT_EQ((*hits)[i].id, (*base)[i].id) << "the tail keeps BM25's order";
    EXPECT_TRUE(std::isnan((*hits)[i].stages.rerank));
    EXPECT_LT((*hits)[i].score, (*hits)[i - 1].score);
  }
  EXPECT_FALSE(c->rerank().Load(model, {.scoring_layer = 9}).ok()) << "tiny-mistral has 4 layers";
}

// Decoupled mode: caching the document blocks in the collection changes nothing in the scores.
TEST(Collection, RerankCacheGivesTheUncachedScores) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-mistral");
  testing::TempDir tmp;
  auto c = NewCollection(tmp);
  std::vector<Document> docs;
  for (int i = 0; i < 8; ++i) docs.push_back({"d" + std::to_string(i), "T" + std::to_string(i), "heart disease and cholesterol study " + std::string(i, 'x'), ""});
  ASSERT_TRUE(c->Upsert(docs).ok());
  const RerankOptions options{.scoring_layer = 2, .max_block_length = 64, .query_in_instruction = false, .depth = 8};
  ASSERT_TRUE(c->rerank().Load(model, options).ok());
  const SearchOptions search{.k = 8, .hydrate = false, .rerank = true};
  auto uncached = c->Search("heart cholesterol", search);
  ASSERT_TRUE(uncached.ok()) << uncached.status().ToString();
  const std::vector<std::string> ids = {"d5", "d1", "d7"};
  auto layers_uncached = c->rerank().ScoresAtLayers("heart cholesterol", ids, {0, 2});
  ASSERT_TRUE(layers_uncached.ok()) << layers_uncached.status().ToString();
  std::vector<uint64_t> progress;
  auto built = c->rerank().BuildCache(model, options, false, [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 8u);
    progress.push_back(done);
  });
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ(*built, 8u);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 8u);
  // Several layers from the caches: the uncached scores.
  auto layers_cached = c->rerank().ScoresAtLayers("heart cholesterol", ids, {0, 2});
  ASSERT_TRUE(layers_cached.ok()) << layers_cached.status().ToString();
  for (size_t l = 0; l < 2; ++l) {
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_NEAR((*layers_cached)[l][i], (*layers_uncached)[l][i], 1e-5) << l << " " << i;
  }
  SearchTimings timings;
  auto cached = c->Search("heart cholesterol", search, &timings);
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  ASSERT_EQ(cached->size(), uncached->size());
  for (size_t i = 0; i < cached->size(); ++i) {
    EXPECT_EQ((*cached)[i].id, (*uncached)[i].id) << i;
    EXPECT_NEAR((*cached)[i].stages.rerank, (*uncached)[i].stages.rerank, 1e-5) << i;
  }
  // A replaced document loses its cache entry and is encoded on the fly.
  ASSERT_TRUE(c->Upsert({{"d3", "T3", "heart disease and cholesterol study xxx", ""}}).ok());
  auto after = c->Search("heart cholesterol", search);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  for (size_t i = 0; i < after->size(); ++i) EXPECT_NEAR((*after)[i].stages.rerank, (*uncached)[i].stages.rerank, 1e-5) << i;
  EXPECT_TRUE(c->Check()->ok());
}

// Readers running beside a writer see whole batches only: every batch adds 50 documents that share
// one term, so a consistent view always holds a multiple of 50 documents and every batch term it
// can see matches exactly 50 of them.
TEST(Collection, ConcurrentReadersSeeWholeBatches) {
  testing::TempDir tmp;
  auto c = NewCollection(tmp);
  constexpr int kBatches = 40, kPerBatch = 50;
  std::atomic<bool> done{false};
  std::atomic<int> checks{0}, problems{0};
  auto reader = [&] {
    while (!done.load()) {
      auto stats = c->Stats();
      if (!stats.ok() || stats->n_docs % kPerBatch != 0) ++problems;
      auto check = c->Check();
      if (!check.ok() || !check->ok() || check->n_docs % kPerBatch != 0) ++problems;
      auto hits = c->Search("batchword" + std::to_string(stats->n_docs / kPerBatch - 1), {.k = 100, .hydrate = false});
      if (stats->n_docs > 0 && (!hits.ok() || hits->size() != kPerBatch)) ++problems;
      ++checks;
    }
  };
  std::thread r1(reader), r2(reader);
  for (int b = 0; b < kBatches; ++b) {
    std::vector<Document> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      batch.push_back({"b" + std::to_string(b) + "-" + std::to_string(i), "", "batchword" + std::to_string(b) + " filler", ""});
    }
    ASSERT_TRUE(c->Upsert(batch).ok());
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_GT(checks.load(), 0);
  EXPECT_EQ(problems.load(), 0);
  EXPECT_EQ(c->Stats()->n_docs, static_cast<uint64_t>(kBatches * kPerBatch));
}

}  // namespace
}  // namespace quarry
