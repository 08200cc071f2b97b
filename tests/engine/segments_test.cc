// The lexical index's segments inside a collection: merges, rebuilds of missing and damaged files,
// concurrency with writes, the format 1 upgrade, and SIGKILL while batches and merges are written.
#include <rocksdb/db.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "common/coding.h"
#include "quarry/collection.h"
#include "storage/document_codec.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kWords = {"heart", "disease", "statin", "cholesterol", "liver", "cell",
                                         "protein", "gene", "cancer", "risk", "trial", "dose"};
const std::vector<std::string> kQueries = {"heart", "statin dose", "cancer gene protein risk", "trial trial liver",
                                           "cell cell cell disease", "missing"};

std::string RandomText(std::mt19937& rng, int n) {
  std::string t;
  for (int i = 0; i < n; ++i) t += kWords[rng() % kWords.size()] + " ";
  return t;
}

using Results = std::vector<std::vector<std::pair<std::string, float>>>;

Results SearchAll(const Collection& c) {
  Results out;
  for (const auto& q : kQueries) {
    auto hits = c.Search(q, {.k = 1000, .hydrate = false});
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    out.emplace_back();
    if (hits.ok()) {
      for (const auto& h : *hits) out.back().emplace_back(h.id, h.score);
    }
  }
  return out;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir + "/lex")) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

void ExpectCheckOk(const Collection& c) {
  auto check = c.Check();
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

// Small batches make a segment each; merges keep their number bounded, drop the dead documents'
// postings, and never change a result: the collection always answers as a fresh build of its live
// documents (in the same doc-number order) does.
TEST(Segments, MergesBoundTheSegmentsAndNeverChangeAResult) {
  testing::TempDir tmp;
  std::mt19937 rng(17);
  auto c = Collection::Open(tmp / "c", {.create_if_missing = true});
  ASSERT_TRUE(c.ok());
  std::map<std::string, Document> truth;
  for (int round = 0; round < 120; ++round) {
    std::vector<Document> batch;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 6); ++i) {
      Document d{"d" + std::to_string(rng() % 150), "", RandomText(rng, 2 + rng() % 15), ""};
      batch.push_back(d);
      truth[d.id] = d;
    }
    ASSERT_TRUE((*c)->Upsert(batch).ok());
    if (rng() % 3 == 0) {
      const std::string id = "d" + std::to_string(rng() % 150);
      ASSERT_TRUE((*c)->Delete(id).ok());
      truth.erase(id);
    }
  }
  ASSERT_TRUE((*c)->WaitForMerges().ok());
  auto stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_LT(stats->lex_segments, 30u) << "120 batches, merged ten at a time";
  EXPECT_EQ(stats->n_docs, truth.size());
  ExpectCheckOk(**c);

  // The fresh build gets the live documents in the incremental one's doc-number order.
  std::vector<std::pair<uint32_t, std::string>> order;
  auto all = (*c)->Search("heart disease statin cholesterol liver cell protein gene cancer risk trial dose", {.k = 1000});
  ASSERT_TRUE(all.ok());
  for (const auto& h : *all) order.emplace_back(h.doc, h.id);
  std::sort(order.begin(), order.end());
  ASSERT_EQ(order.size(), truth.size());
  std::vector<Document> docs;
  for (const auto& [doc, id] : order) docs.push_back(truth.at(id));
  auto fresh = Collection::Open(tmp / "fresh", {.create_if_missing = true});
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE((*fresh)->Upsert(docs).ok());
  const Results expected = SearchAll(**fresh);
  EXPECT_EQ(SearchAll(**c), expected);

  auto dropped = (*c)->Compact();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ((*c)->Stats()->lex_segments, 1u);
  EXPECT_EQ((*c)->Stats()->lex_dead, 0u);
  EXPECT_EQ(SearchAll(**c), expected);
  ExpectCheckOk(**c);
  // Reopened, it still answers the same (segments and dead records are read back).
  c->reset();
  auto reopened = Collection::Open(tmp / "c", {.read_only = true});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(SearchAll(**reopened), expected);
}

// A lost segment file is rebuilt from the stored documents by the next writable open; a damaged one
// is found by check and rebuilt by check --repair. Results stay those of the undamaged collection.
TEST(Segments, MissingAndDamagedFilesAreDetectedAndRebuilt) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  std::mt19937 rng(5);
  Results before;
  {
    auto c = Collection::Open(dir, {.create_if_missing = true});
    ASSERT_TRUE(c.ok());
    for (int b = 0; b < 4; ++b) {
      std::vector<Document> batch;
      for (int i = 0; i < 30; ++i) batch.push_back({"b" + std::to_string(b) + "-" + std::to_string(i), "", RandomText(rng, 8), ""});
      ASSERT_TRUE((*c)->Upsert(batch).ok());
    }
    ASSERT_TRUE((*c)->Delete("b1-3").ok());
    ASSERT_TRUE((*c)->Upsert({{"b2-7", "", "heart heart replaced", ""}}).ok());
    before = SearchAll(**c);
  }
  auto files = SegmentFiles(dir);
  ASSERT_GE(files.size(), 4u);

  fs::remove(files[1]);
  auto read_only = Collection::Open(dir, {.read_only = true});
  ASSERT_FALSE(read_only.ok());
  EXPECT_NE(read_only.status().message().find("--repair"), std::string::npos) << read_only.status().message();
  {
    auto c = Collection::Open(dir);  // writable: rebuilds what is missing
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(SearchAll(**c), before);
    ExpectCheckOk(**c);
  }

  files = SegmentFiles(dir);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    const char junk[4] = {'\x5a', '\x5a', '\x5a', '\x5a'};
    f.write(junk, 4);
  }
  auto check = testing::RunCommand(testing::kCli + " check " + testing::ShellQuote(dir));
  EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
  EXPECT_NE(check.err.find(fs::path(files[0]).filename().string()), std::string::npos) << check.err;
  auto repair = testing::RunCommand(testing::kCli + " check " + testing::ShellQuote(dir) + " --repair");
  EXPECT_NE(repair.err.find("rebuilt"), std::string::npos) << repair.out << repair.err;
  auto again = testing::RunCommand(testing::kCli + " check " + testing::ShellQuote(dir));
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  auto c = Collection::Open(dir, {.read_only = true});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(SearchAll(**c), before);
}

// Searches running while batches are written, documents deleted and segments merged see whole
// batches only: every batch writes 40 documents holding its own term, and deletes remove a whole
// earlier batch in one write, so every batch term matches 0 or 40 documents in any consistent view.
TEST(Segments, SearchesDuringWritesDeletesAndMergesSeeWholeBatches) {
  testing::TempDir tmp;
  auto opened = Collection::Open(tmp / "c", {.create_if_missing = true});
  ASSERT_TRUE(opened.ok());
  Collection& c = **opened;
  constexpr int kBatches = 60, kPerBatch = 40;
  std::atomic<bool> done{false};
  std::atomic<int> written{0}, checks{0}, problems{0};
  auto reader = [&] {
    std::mt19937 rng(std::hash<std::thread::id>()(std::this_thread::get_id()));
    while (!done.load()) {
      const int b = static_cast<int>(rng() % (written.load() + 1));
      auto hits = c.Search("batchword" + std::to_string(b) + " filler", {.k = 5000});
      if (!hits.ok()) {
        ++problems;
        continue;
      }
      int of_batch = 0;
      for (const auto& h : *hits) {
        if (h.id.rfind("b" + std::to_string(b) + "-", 0) == 0) {
          ++of_batch;
          if (h.text.empty()) ++problems;  // hydrated from the same snapshot: never missing
        }
      }
      if (of_batch != 0 && of_batch != kPerBatch) ++problems;
      if (hits->size() % kPerBatch != 0) ++problems;
      ++checks;
    }
  };
  std::thread r1(reader), r2(reader);
  for (int b = 0; b < kBatches; ++b) {
    std::vector<Document> batch;
    for (int i = 0; i < kPerBatch; ++i) {
      batch.push_back({"b" + std::to_string(b) + "-" + std::to_string(i), "", "batchword" + std::to_string(b) + " filler", ""});
    }
    ASSERT_TRUE(c.Upsert(batch).ok());
    written = b;
    if (b % 7 == 6) {  // replace an earlier batch whole: one write of 40 documents
      std::vector<Document> replacement;
      for (int i = 0; i < kPerBatch; ++i) {
        replacement.push_back({"b" + std::to_string(b - 3) + "-" + std::to_string(i), "", "batchword" + std::to_string(b - 3) + " filler again", ""});
      }
      ASSERT_TRUE(c.Upsert(replacement).ok());
    }
  }
  ASSERT_TRUE(c.WaitForMerges().ok());
  done = true;
  r1.join();
  r2.join();
  EXPECT_GT(checks.load(), 0);
  EXPECT_EQ(problems.load(), 0);
  ExpectCheckOk(c);
}

// A collection written by format 1 (postings in RocksDB) is upgraded by a writable open: its
// segments are built from the stored documents; a read-only open asks for that first.
TEST(Segments, FormatOneCollectionsAreUpgraded) {
  testing::TempDir tmp;
  const std::string dir = tmp / "v1";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "meta", "docs", "ids", "lex_postings", "lex_docs"}) families.emplace_back(name, options);
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* raw;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, families, &h, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteBatch batch;
    std::string v;
    PutVarint32(&v, 1);
    batch.Put(h[1], "format_version", v);
    const std::vector<std::string> texts = {"statin therapy", "liver disease", "statin statin dose"};
    for (uint32_t d = 0; d < texts.size(); ++d) {
      batch.Put(h[2], EncodeFixed32BE(d), EncodeDocument({"v1-" + std::to_string(d), "", texts[d], ""}));
      batch.Put(h[3], "v1-" + std::to_string(d), EncodeFixed32BE(d));
      batch.Put(h[4], std::string("stale\0", 6) + EncodeFixed32BE(d), "junk the upgrade must drop");
    }
    std::string n;
    PutFixed64BE(&n, texts.size());
    batch.Put(h[1], "next_docnum", n);
    batch.Put(h[1], "n_docs", n);
    ASSERT_TRUE(db->Write({}, &batch).ok());
    for (auto* handle : h) db->DestroyColumnFamilyHandle(handle);
  }
  auto ro = Collection::Open(dir, {.read_only = true});
  ASSERT_FALSE(ro.ok());
  EXPECT_NE(ro.status().message().find("format version 1"), std::string::npos) << ro.status().message();
  {
    auto c = Collection::Open(dir);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto hits = (*c)->Search("statin", {.k = 10});
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 2u);
    EXPECT_EQ((*hits)[0].id, "v1-2");
    EXPECT_EQ((*hits)[1].id, "v1-0");
    EXPECT_EQ((*c)->Stats()->format_version, 2u);
    ExpectCheckOk(**c);
  }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir, &families).ok());
  EXPECT_EQ(std::count(families.begin(), families.end(), "lex_postings"), 0);
  auto reopened = Collection::Open(dir, {.read_only = true});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
}

// SIGKILL at random moments of an ingest whose small batches keep merges running: every batch the
// ingest acknowledged is there, whole, and the collection checks out and searches.
TEST(Segments, SigkillDuringBatchesAndMergesLosesNothingAcknowledged) {
  testing::TempDir tmp;
  const std::string corpus = tmp / "corpus.jsonl";
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 20000; ++i) {
      out << "{\"_id\": \"doc" << i << "\", \"title\": \"\", \"text\": \"body " << i % 97 << " words statin heart "
          << (i % 13 == 0 ? "rare" : "common") << "\"}\n";
    }
  }
  const std::string dir = tmp / "col";
  std::mt19937 rng(23);
  unsigned long long total_acknowledged = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const unsigned long long kill_after = 15 + rng() % 60;
    const auto run = testing::RunCliUntil({"ingest", dir, "--beir", corpus, "--batch-docs", "100", "--log-batches"},
                                          [&](const auto& lines) { return testing::ParseAcknowledged(lines).batches >= kill_after; });
    ASSERT_TRUE(run.killed) << "the ingest finished before it was killed";
    const unsigned long long acknowledged = testing::ParseAcknowledged(run.lines).through_line;
    // Each attempt re-ingests the file from the start: the first `acknowledged` lines are committed.
    total_acknowledged = std::max(total_acknowledged, acknowledged);
    auto c = Collection::Open(dir, {.read_only = true});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ExpectCheckOk(**c);
    auto stats = (*c)->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_GE(stats->n_docs, total_acknowledged);
    EXPECT_EQ(stats->n_docs % 100, 0u) << "a batch is applied whole or not at all";
    auto hits = (*c)->Search("rare", {.k = 5000, .hydrate = false});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    EXPECT_EQ(hits->size(), (stats->n_docs + 12) / 13);
  }
}

}  // namespace
}  // namespace quarry
