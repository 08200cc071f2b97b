// Dense retrieval in a collection: stored vectors, the persisted FAISS index, sync with upserts and
// deletes, corruption handling, hybrid fusion.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "index/dense/dual_encoder.h"
#include "quarry/npy.h"
#include "quarry/collection.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

constexpr size_t kDim = 16;

// A collection of n documents "doc<i>" (text "word<i % 7> common") with seeded random vectors.
struct Fixture {
  testing::TempDir tmp;
  std::unique_ptr<Collection> c;
  std::vector<std::string> ids;
  std::vector<float> vectors;

  explicit Fixture(size_t n, uint64_t seed = 7) {
    auto opened = Collection::Open(tmp / "c", {.create_if_missing = true});
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    c = std::move(*opened);
    std::vector<Document> docs;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    for (size_t i = 0; i < n; ++i) {
      ids.push_back("doc" + std::to_string(i));
      docs.push_back({ids.back(), "", "word" + std::to_string(i % 7) + " common", ""});
      for (size_t k = 0; k < kDim; ++k) vectors.push_back(normal(rng));
    }
    EXPECT_TRUE(c->Upsert(docs).ok());
    EXPECT_TRUE(c->dense().PutVectors(ids, vectors, kDim).ok());
  }
  void Reopen() {
    c.reset();
    auto opened = Collection::Open(tmp / "c", {});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    c = std::move(*opened);
  }
};

float Dot(const float* a, const float* b) {
  float s = 0;
  for (size_t k = 0; k < kDim; ++k) s += a[k] * b[k];
  return s;
}

// Ids of the brute-force top k by inner product over `live` rows.
std::vector<std::string> BruteForce(const Fixture& f, const std::vector<float>& q, size_t k,
                                    const std::set<std::string>& excluded = {}) {
  std::vector<std::pair<float, std::string>> scored;
  for (size_t i = 0; i < f.ids.size(); ++i) {
    if (!excluded.count(f.ids[i])) scored.emplace_back(-Dot(&f.vectors[i * kDim], q.data()), f.ids[i]);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < k && i < scored.size(); ++i) out.push_back(scored[i].second);
  return out;
}

std::vector<std::string> Ids(const std::vector<SearchHit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.id);
  return out;
}

std::vector<float> RandomQuery(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> q(kDim);
  for (auto& x : q) x = normal(rng);
  return q;
}

TEST(Dense, FlatSearchOfImportedVectorsEqualsBruteForce) {
  Fixture f(300);
  auto n = f.c->dense().Build({.factory = "Flat"});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 300u);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto q = RandomQuery(seed);
    auto hits = f.c->SearchVector(q, {.k = 10});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    EXPECT_EQ(Ids(*hits), BruteForce(f, q, 10)) << "query seed " << seed;
    for (const auto& h : *hits) EXPECT_FLOAT_EQ(h.score, h.stages.dense);
  }
}

TEST(Dense, DeletesAndReplacementsLeaveTheIndexAndStoreConsistent) {
  Fixture f(200);
  ASSERT_TRUE(f.c->dense().Build({.factory = "Flat"}).ok());
  const auto q = RandomQuery(3);
  const auto before = BruteForce(f, q, 5);
  // Delete the best hit; replace the second (imported vectors: a replaced document has no vector until
  // new ones are imported).
  ASSERT_TRUE(*f.c->Delete(before[0]));
  ASSERT_TRUE(f.c->Upsert({{before[1], "", "replaced text", ""}}).ok());
  auto hits = f.c->SearchVector(q, {.k = 5});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(Ids(*hits), BruteForce(f, q, 5, {before[0], before[1]}));
  auto gone = f.c->dense().GetVector(before[0]);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto info = f.c->dense().Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->n_vectors, 198u);
  // New vectors for the replaced document come back into the index.
  std::vector<float> v(&f.vectors[std::stoul(before[1].substr(3)) * kDim],
                       &f.vectors[std::stoul(before[1].substr(3)) * kDim] + kDim);
  ASSERT_TRUE(f.c->dense().PutVectors({before[1]}, v, kDim).ok());
  hits = f.c->SearchVector(q, {.k = 5});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(Ids(*hits), BruteForce(f, q, 5, {before[0]}));
}

// The base index file in the collection directory (dense-<generation>.faiss), or "".
std::string DenseFile(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("dense-") && name.ends_with(".faiss")) return e.path().string();
  }
  return "";
}

TEST(Dense, PersistedIndexIsReusedAndACorruptOneIsRebuilt) {
  Fixture f(500);
  ASSERT_TRUE(f.c->dense().Build({.factory = "IVF8,Flat", .nprobe = 8}).ok());
  const auto q = RandomQuery(11);
  auto expected = f.c->SearchVector(q, {.k = 10});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(Ids(*expected), BruteForce(f, q, 10));  // nprobe = nlist: exhaustive
  // The index is loaded by the first dense search; dense().Info() then says whether it had to be rebuilt.
  auto search_then_info = [&] {
    EXPECT_TRUE(f.c->SearchVector(q, {.k = 10}).ok());
    return f.c->dense().Info();
  };

  f.Reopen();
  auto info = search_then_info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->rebuilt);
  EXPECT_EQ(info->nprobe, 8u);

  // Flip bytes in the middle of the file: the checksum no longer matches.
  const std::string path = DenseFile(f.tmp / "c");
  ASSERT_FALSE(path.empty());
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(info->file_bytes / 2));
    file.write("\xde\xad\xbe\xef", 4);
  }
  f.Reopen();
  info = search_then_info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->rebuilt);
  auto hits = f.c->SearchVector(q, {.k = 10});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(Ids(*hits), Ids(*expected));

  // Searches write nothing: the damaged file is still there, and the next open rebuilds again...
  const std::string damaged = testing::ReadFile(path);
  f.Reopen();
  info = search_then_info();
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->rebuilt);
  EXPECT_EQ(testing::ReadFile(DenseFile(f.tmp / "c")), damaged) << "a search wrote the dense index file";
  // ...until a repair (or the next write) writes the rebuilt index back: the next open uses it.
  auto repaired = f.c->Check(/*repair=*/true);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(repaired->ok());
  f.Reopen();
  info = search_then_info();
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->rebuilt);
  hits = f.c->SearchVector(q, {.k = 10});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(Ids(*hits), Ids(*expected));

  // A missing file is rebuilt too, and the next write persists it.
  std::filesystem::remove(DenseFile(f.tmp / "c"));
  f.Reopen();
  info = search_then_info();
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->rebuilt);
  EXPECT_TRUE(DenseFile(f.tmp / "c").empty()) << "a search wrote the dense index file";
  auto deleted = f.c->Delete("doc0");
  ASSERT_TRUE(deleted.ok() && *deleted) << deleted.status().ToString();
  EXPECT_FALSE(DenseFile(f.tmp / "c").empty()) << "the write after the rebuild persists it";
  f.Reopen();
  info = search_then_info();
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->rebuilt);
}

TEST(Dense, SoarIndexInACollectionIsExactAtFullNprobePersistsAndTunes) {
  Fixture f(400);
  ASSERT_TRUE(f.c->dense().Build({.factory = "SOAR8", .nprobe = 8}).ok());
  const auto q = RandomQuery(21);
  auto hits = f.c->SearchVector(q, {.k = 10});
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(Ids(*hits), BruteForce(f, q, 10));
  f.Reopen();
  hits = f.c->SearchVector(q, {.k = 10});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(Ids(*hits), BruteForce(f, q, 10));
  auto info = f.c->dense().Info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->rebuilt);
  EXPECT_EQ(info->factory, "SOAR8");
  auto tuned = f.c->dense().Tune(0.9, 10, 100);
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->knob, "nprobe");
  EXPECT_TRUE(tuned->reached);
  EXPECT_GE(tuned->recall_low, 0.9);
  info = f.c->dense().Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->nprobe, tuned->chosen);
}

TEST(Dense, TextQueriesNeedAnEncoder) {
  Fixture f(100);
  ASSERT_TRUE(f.c->dense().Build({}).ok());
  // Imported vectors: a vector query works, a text query in a dense mode says what is missing.
  auto v = f.c->SearchVector(RandomQuery(5), {.k = 10});
  ASSERT_TRUE(v.ok());
  auto text = f.c->Search("word3", {.k = 10, .mode = RetrievalMode::kHybrid});
  EXPECT_FALSE(text.ok());  // imported vectors: no encoder for a text query
  EXPECT_NE(text.status().message().find("no encoder"), std::string::npos) << text.status().message();
}

TEST(Dense, VectorErrorsNameTheProblem) {
  Fixture f(10);
  EXPECT_NE(f.c->dense().PutVectors({"doc1"}, std::vector<float>(kDim + 1), kDim + 1).message().find("dim 17"), std::string::npos);
  EXPECT_NE(f.c->dense().PutVectors({"nope"}, std::vector<float>(kDim), kDim).message().find("'nope'"), std::string::npos);
  std::vector<float> nan(kDim, 0.0f);
  nan[3] = std::nanf("");
  EXPECT_NE(f.c->dense().PutVectors({"doc2"}, nan, kDim).message().find("non-finite"), std::string::npos);
  EXPECT_FALSE(f.c->dense().PutVectors({"doc1", "doc2"}, std::vector<float>(kDim), kDim).ok());  // too few floats
  ASSERT_TRUE(f.c->dense().Build({}).ok());
  EXPECT_FALSE(f.c->SearchVector(std::vector<float>(kDim - 1), {}).ok());
  EXPECT_FALSE(f.c->dense().Build({.factory = "NoSuchIndex"}).ok());
}

// Six short documents t0..t5 for the encoder tests (tiny-bert).
std::vector<Document> SixDocuments() {
  const char* texts[] = {"statins lower cholesterol", "heart disease and diet", "the liver makes cholesterol",
                         "running shoes for marathons", "a history of rome", "cholesterol in eggs"};
  std::vector<Document> docs;
  for (size_t i = 0; i < std::size(texts); ++i) docs.push_back({"t" + std::to_string(i), "", texts[i], ""});
  return docs;
}

// A new collection at `dir` holding `docs`; null if that fails.
std::unique_ptr<Collection> CollectionOf(const std::string& dir, const std::vector<Document>& docs) {
  auto opened = Collection::Open(dir, {.create_if_missing = true});
  if (!opened.ok() || !(*opened)->Upsert(docs).ok()) return nullptr;
  return std::move(*opened);
}

// With an encoder, upserts embed new documents in the same batch and text queries work in every mode.
TEST(Dense, EncoderKeepsVectorsInSyncAndHybridFusesByRank) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-bert");
  testing::TempDir tmp;
  const std::vector<Document> docs = SixDocuments();
  auto c = CollectionOf(tmp / "c", docs);
  ASSERT_NE(c, nullptr);
  auto n = c->dense().Build({.factory = "Flat", .encoder = model});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, docs.size());

  auto encoder = DualEncoder::Load(model);
  ASSERT_TRUE(encoder.ok());
  ASSERT_TRUE(c->Upsert({{"new", "", "cholesterol and statins in the heart", ""}}).ok());
  auto stored = c->dense().GetVector("new");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  auto direct = (*encoder)->EncodeDocuments({"cholesterol and statins in the heart"});
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ((*stored)->size(), direct->size());
  for (size_t k = 0; k < direct->size(); ++k) EXPECT_FLOAT_EQ((**stored)[k], (*direct)[k]);
  auto self = c->SearchVector(**stored, {.k = 1});
  ASSERT_TRUE(self.ok());
  ASSERT_EQ(self->size(), 1u);
  EXPECT_EQ((*self)[0].id, "new");

  // Hybrid RRF equals the fusion of the two separate lists computed here.
  const std::string query = "cholesterol";
  auto bm25 = c->Search(query, {.k = 100, .hydrate = false});
  auto dense = c->Search(query, {.k = 100, .hydrate = false, .mode = RetrievalMode::kDense});
  auto hybrid = c->Search(query, {.k = 100, .hydrate = false, .mode = RetrievalMode::kHybrid});
  ASSERT_TRUE(bm25.ok() && dense.ok() && hybrid.ok()) << hybrid.status().ToString();
  std::map<std::string, double> expected;
  for (size_t r = 0; r < bm25->size(); ++r) expected[(*bm25)[r].id] += 1.0 / (60 + r + 1);
  for (size_t r = 0; r < dense->size(); ++r) expected[(*dense)[r].id] += 1.0 / (60 + r + 1);
  ASSERT_EQ(hybrid->size(), expected.size());
  for (size_t r = 0; r < hybrid->size(); ++r) {
    EXPECT_NEAR((*hybrid)[r].score, expected[(*hybrid)[r].id], 1e-6) << (*hybrid)[r].id;
    if (r > 0) {
      EXPECT_GE((*hybrid)[r - 1].score, (*hybrid)[r].score);
    }
  }

  // dense().Scores gives, for any list of ids, what dense search scored them (Flat: exact).
  std::vector<std::string> ids;
  for (auto it = dense->rbegin(); it != dense->rend(); ++it) ids.push_back(it->id);  // worst first
  auto scores = c->dense().Scores(query, ids);
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  ASSERT_EQ(scores->size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_NEAR((*scores)[i], (*dense)[dense->size() - 1 - i].stages.dense, 1e-6) << ids[i];
  }
  auto unknown = c->dense().Scores(query, {"t0", "nope"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("'nope'"), std::string::npos) << unknown.status().message();

  // Deleting a document removes it from dense results at once.
  ASSERT_TRUE(*c->Delete("new"));
  auto after = c->Search(query, {.k = 100, .hydrate = false, .mode = RetrievalMode::kDense});
  ASSERT_TRUE(after.ok());
  for (const auto& h : *after) EXPECT_NE(h.id, "new");
  EXPECT_EQ(after->size(), docs.size());

  // An ingest leaves the base index file current: a reader process loads it, with nothing written
  // since it to hold in memory.
  testing::WriteFile(tmp / "more.jsonl", "{\"_id\": \"m1\", \"text\": \"eggs and cholesterol\"}\n");
  ASSERT_TRUE(c->IngestFile(tmp / "more.jsonl", {}, {}).ok());
  auto reader = Collection::Open(tmp / "c", {.read_only = true});
  ASSERT_TRUE(reader.ok());
  auto m1 = (*reader)->dense().GetVector("m1");
  ASSERT_TRUE(m1.ok() && m1->has_value());
  auto found = (*reader)->SearchVector(**m1, {.k = 3, .hydrate = false});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ((*found)[0].id, "m1");  // unit vectors: the nearest is itself
  auto info = (*reader)->dense().Info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->rebuilt);
  EXPECT_EQ(info->n_unindexed, 0u);
  EXPECT_EQ(info->n_vectors, docs.size() + 1);
}

// ResMem can find neighbouring training queries with the collection's encoder; the memory records
// which encoder embedded them and refuses a search once the index uses another.
TEST(Dense, ResMemWithDenseNeighboursCorrectsAndTracksItsEncoder) {
  QUARRY_REQUIRE_SHARED(model, "fixtures/tiny-bert");
  testing::TempDir tmp;
  auto c = CollectionOf(tmp / "c", SixDocuments());
  ASSERT_NE(c, nullptr);
  const std::vector<LabeledQuery> training = {{"q1", "cholesterol", {{"t4", 1}}},
                                              {"q2", "marathon shoes", {{"t3", 1}}}};
  const ResMemOptions options{.k = 1, .lambda = 4, .neighbours = ResMemNeighbours::kDense};
  EXPECT_FALSE(c->resmem().Build(training, options).ok()) << "no dense index, no encoder";
  ASSERT_TRUE(c->dense().Build({.factory = "Flat", .encoder = model}).ok());
  ASSERT_TRUE(c->resmem().Build(training, options).ok());
  auto info = c->resmem().Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->first.neighbours, ResMemNeighbours::kDense);
  // The query equals q1's text, so q1 is its nearest neighbour (inner product 1 of unit vectors) and
  // lifts q1's relevant t4, which BM25 does not retrieve for "cholesterol", to the top.
  auto plain = c->Search("cholesterol", {.k = 10, .hydrate = false});
  auto corrected = c->Search("cholesterol", {.k = 10, .hydrate = false, .resmem = true});
  ASSERT_TRUE(plain.ok() && corrected.ok()) << corrected.status().ToString();
  for (const auto& h : *plain) EXPECT_NE(h.id, "t4");
  ASSERT_FALSE(corrected->empty());
  EXPECT_EQ((*corrected)[0].id, "t4");
  EXPECT_GT((*corrected)[0].stages.resmem_correction, 0);
  // Re-indexed with another encoder configuration: the stored neighbours no longer match.
  ASSERT_TRUE(c->dense().Build({.factory = "Flat", .encoder = model, .max_length = 8}).ok());
  auto stale = c->Search("cholesterol", {.k = 10, .hydrate = false, .resmem = true});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("rebuild"), std::string::npos) << stale.status().message();
  auto tuned = c->resmem().Tune({training[0], training[1], training[0], training[1], training[0], training[1],
                              training[0], training[1], training[0], training[1]},
                             0.2, 42, ResMemNeighbours::kDense);
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->best.neighbours, ResMemNeighbours::kDense);
  EXPECT_LT(tuned->best.sigma, 0.5f) << "the dense grid of sigma";
}

TEST(Npy, ReadsFloat32AndFloat64AndRejectsBadFiles) {
  testing::TempDir tmp;
  auto write = [&](const std::string& name, const std::string& descr, const std::string& shape, const std::string& data) {
    testing::WriteNpy(tmp / name, descr, shape, data);
    return tmp / name;
  };
  const float f32[] = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.5f};
  auto m = ReadNpy(write("a.npy", "<f4", "(3, 2)", std::string(reinterpret_cast<const char*>(f32), sizeof f32)));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, 3u);
  EXPECT_EQ(m->cols, 2u);
  EXPECT_EQ(m->data, std::vector<float>(std::begin(f32), std::end(f32)));
  const double f64[] = {0.5, 0.25};
  m = ReadNpy(write("b.npy", "<f8", "(1, 2)", std::string(reinterpret_cast<const char*>(f64), sizeof f64)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->data, (std::vector<float>{0.5f, 0.25f}));
  auto truncated = ReadNpy(write("c.npy", "<f4", "(3, 2)", std::string(8, '\0')));
  EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos);
  auto ints = ReadNpy(write("d.npy", "<i8", "(1, 1)", std::string(8, '\0')));
  EXPECT_NE(ints.status().message().find("<i8"), std::string::npos);
  const float one[] = {1, 2, 3, 4};
  auto flat = ReadNpy(write("e.npy", "<f4", "(4,)", std::string(reinterpret_cast<const char*>(one), sizeof one)));
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->rows, 1u) << "a 1-D array is one vector";
  EXPECT_EQ(flat->data, std::vector<float>(std::begin(one), std::end(one)));
  auto cube = ReadNpy(write("g.npy", "<f4", "(1, 2, 2)", std::string(16, '\0')));
  EXPECT_NE(cube.status().message().find("2-D"), std::string::npos) << cube.status().ToString();
  testing::WriteFile(tmp / "f.npy", "not numpy");
  EXPECT_NE(ReadNpy(tmp / "f.npy").status().message().find("magic"), std::string::npos);
}

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

// Writes after the index was built (deletes, replacements, new and changed vectors) are searched at
// once without rebuilding the index, and give what an index rebuilt from the final vectors gives:
// in the writing process, in a reader process that loads the base and the changes since it, and
// after the changes pass the threshold and are folded into a new base.
TEST(Dense, IncrementalUpdatesGiveWhatARebuildGives) {
  for (const std::string factory : {"Flat", "IVF4,Flat", "HNSW16", "SOAR4"}) {
    SCOPED_TRACE(factory);
    Fixture f(300, 13);
    const size_t knob = factory.starts_with("HNSW") ? 1000 : 4;  // exhaustive: nprobe = nlist, efSearch >= n
    ASSERT_TRUE(f.c->dense().Build({.factory = factory, .nprobe = knob, .ef_search = knob}).ok());
    std::mt19937_64 rng(5);
    std::normal_distribution<float> normal;
    std::map<std::string, std::vector<float>> truth;
    for (size_t i = 0; i < f.ids.size(); ++i) truth[f.ids[i]] = std::vector<float>(&f.vectors[i * kDim], &f.vectors[(i + 1) * kDim]);
    auto random_vector = [&] {
      std::vector<float> v(kDim);
      for (auto& x : v) x = normal(rng);
      return v;
    };
    auto expect_brute_force = [&](const Collection& c, const std::string& when) {
      for (uint64_t seed = 1; seed <= 8; ++seed) {
        const auto q = RandomQuery(seed);
        std::vector<std::pair<float, std::string>> scored;
        for (const auto& [id, v] : truth) scored.emplace_back(-Dot(v.data(), q.data()), id);
        std::sort(scored.begin(), scored.end());
        std::vector<std::string> want;
        for (size_t i = 0; i < 10 && i < scored.size(); ++i) want.push_back(scored[i].second);
        auto hits = c.SearchVector(q, {.k = 10});
        ASSERT_TRUE(hits.ok()) << hits.status().ToString();
        EXPECT_EQ(Ids(*hits), want) << when << ", query " << seed;
      }
    };
    for (int step = 0; step < 40; ++step) {
      const std::string id = "doc" + std::to_string(rng() % 300);
      switch (rng() % 4) {
        case 0:  // deleted
          ASSERT_TRUE(f.c->Delete(id).ok());
          truth.erase(id);
          break;
        case 1:  // replaced: imported vectors do not follow a replaced text
          ASSERT_TRUE(f.c->Upsert({{id, "", "new text", ""}}).ok());
          truth.erase(id);
          break;
        default: {  // a new vector for an existing document (given back after a replacement, or changed)
          if (!f.c->Get(id)->has_value()) break;
          const auto v = random_vector();
          ASSERT_TRUE(f.c->dense().PutVectors({id}, v, kDim).ok());
          truth[id] = v;
        }
      }
    }
    expect_brute_force(*f.c, "in the writer");
    auto info = f.c->dense().Info();
    ASSERT_TRUE(info.ok());
    EXPECT_GT(info->n_unindexed, 0u) << "the changes are searched from memory, not rebuilt";
    EXPECT_EQ(info->n_vectors, truth.size());
    {
      auto reader = Collection::Open(f.tmp / "c", {.read_only = true});
      ASSERT_TRUE(reader.ok());
      expect_brute_force(**reader, "in a reader process");
      EXPECT_FALSE((*reader)->dense().Info()->rebuilt);
    }
    // Past the threshold the changes become a new base file.
    std::vector<std::string> all;
    std::vector<float> rows;
    for (auto& [id, v] : truth) {
      v = random_vector();
      all.push_back(id);
      rows.insert(rows.end(), v.begin(), v.end());
    }
    for (int round = 0; round < 20; ++round) ASSERT_TRUE(f.c->dense().PutVectors(all, rows, kDim).ok());
    info = f.c->dense().Info();
    ASSERT_TRUE(info.ok());
    EXPECT_LT(info->n_unindexed, all.size() * 20) << "folded into a new base";
    expect_brute_force(*f.c, "after the refresh");
    auto check = f.c->Check();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
    f.Reopen();
    expect_brute_force(*f.c, "reopened");
  }
}

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

// HNSW cannot remove vectors: a new base keeps the deleted documents' entries and filters them at
// search ('s' marks) until they pass a tenth of the index, when it is rebuilt from the vectors.
TEST(Dense, IndexesThatCannotRemoveFilterStaleEntriesThenRebuild) {
  Fixture f(400, 21);
  ASSERT_TRUE(f.c->dense().Build({.factory = "HNSW16", .ef_search = 1000, .max_unindexed = 8}).ok());
  std::set<std::string> deleted;
  auto expect_brute_force = [&](const Collection& c, const std::string& when) {
    for (uint64_t seed = 1; seed <= 8; ++seed) {
      const auto q = RandomQuery(seed);
      auto hits = c.SearchVector(q, {.k = 10});
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      EXPECT_EQ(Ids(*hits), BruteForce(f, q, 10, deleted)) << when << ", query " << seed;
    }
  };
  for (int i = 0; i < 30; ++i) {  // 30 deletes: several new bases, stale entries below a tenth of 400
    const std::string id = "doc" + std::to_string(i * 13 % 400);
    ASSERT_TRUE(*f.c->Delete(id));
    deleted.insert(id);
  }
  expect_brute_force(*f.c, "stale entries filtered");
  auto info = f.c->dense().Info();
  ASSERT_TRUE(info.ok());
  EXPECT_LE(info->n_unindexed, 8u);
  EXPECT_EQ(info->n_vectors, 370u);
  {
    auto reader = Collection::Open(f.tmp / "c", {.read_only = true});
    ASSERT_TRUE(reader.ok());
    expect_brute_force(**reader, "reader");
  }
  for (int i = 30; i < 60; ++i) {  // past a tenth of the index: rebuilt without them
    const std::string id = "doc" + std::to_string(i * 13 % 400);
    ASSERT_TRUE(*f.c->Delete(id));
    deleted.insert(id);
  }
  expect_brute_force(*f.c, "after the rebuild");
  f.Reopen();
  expect_brute_force(*f.c, "reopened");
  auto check = f.c->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->problems.empty() ? "" : check->problems[0]);
}

}  // namespace
}  // namespace quarry
