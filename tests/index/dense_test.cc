#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "index/dense/dual_encoder.h"
#include "index/dense/autotune.h"
#include "index/dense/faiss_index.h"
#include "index/dense/soar_ivf.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

// tiny-bert embeddings against transformers' (../shared/fixtures/golden/bert.json), within 1e-4, for
// the text whose golden ids this vocab.txt reproduces (the empty text: [CLS] [SEP]; the golden's other
// ids map every word to [UNK], see model_test); pooling and normalisation as configured.
TEST(DualEncoder, ReproducesTheHfEmbeddings) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-bert");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/bert.json");
  std::ifstream in(golden_path);
  const auto cases = nlohmann::json::parse(in)["cases"];
  const nlohmann::json* empty = nullptr;
  for (const auto& c : cases) {
    if (c["text"] == "") empty = &c;
  }
  ASSERT_NE(empty, nullptr);
  for (Pooling pooling : {Pooling::kCls, Pooling::kMean}) {
    for (bool normalize : {false, true}) {
      auto encoder = DualEncoder::Load(model_dir, {.pooling = pooling, .normalize = normalize});
      ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
      auto emb = (*encoder)->EncodeDocuments({"", "Hello, World!"});
      ASSERT_TRUE(emb.ok());
      const size_t d = (*encoder)->dim();
      auto want = (*empty)[pooling == Pooling::kCls ? "cls" : "mean"].get<std::vector<double>>();
      if (normalize) {
        double norm = 0;
        for (double v : want) norm += v * v;
        for (double& v : want) v /= std::sqrt(norm);
      }
      for (size_t j = 0; j < d; ++j) ASSERT_NEAR((*emb)[j], want[j], 1e-4) << "dim " << j;
      double norm = 0;
      for (size_t j = 0; j < d; ++j) norm += (*emb)[d + j] * (*emb)[d + j];
      if (normalize) EXPECT_NEAR(norm, 1.0, 1e-5);
      else EXPECT_GT(std::fabs(norm - 1.0), 1e-3);
    }
  }
  // Per-tower prefixes: the same text embeds differently as a query.
  auto prefixed = DualEncoder::Load(model_dir, {.query_prefix = "query: ", .document_prefix = "passage: "});
  ASSERT_TRUE(prefixed.ok());
  auto q = (*prefixed)->EncodeQueries({"hello world"});
  auto p = (*prefixed)->EncodeDocuments({"hello world"});
  ASSERT_TRUE(q.ok() && p.ok());
  EXPECT_NE(*q, *p);
}

// Every bert.json case from its golden token ids (the tokenizer question is model_test's): CLS and mean
// pooling equal transformers' within 1e-4.
TEST(DualEncoder, ReproducesEveryHfEmbeddingFromTheGoldenIds) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-bert");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/bert.json");
  std::ifstream in(golden_path);
  const auto cases = nlohmann::json::parse(in)["cases"];
  ASSERT_GE(cases.size(), 2u);
  for (Pooling pooling : {Pooling::kCls, Pooling::kMean}) {
    auto encoder = DualEncoder::Load(model_dir, {.pooling = pooling, .normalize = false});
    ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
    std::vector<std::vector<int32_t>> ids;
    for (const auto& c : cases) ids.push_back(c["ids"].get<std::vector<int32_t>>());
    auto emb = (*encoder)->EncodeIds(ids);
    ASSERT_TRUE(emb.ok()) << emb.status().ToString();
    const size_t d = (*encoder)->dim();
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto want = cases[i][pooling == Pooling::kCls ? "cls" : "mean"].get<std::vector<double>>();
      ASSERT_EQ(want.size(), d);
      for (size_t j = 0; j < d; ++j) {
        ASSERT_NEAR((*emb)[i * d + j], want[j], 1e-4) << "case " << i << " dim " << j;
      }
    }
  }
}

// A Llama-family embedder: last-token pooling of tiny-mistral equals transformers' final hidden state
// (after the final RMSNorm) at the last position of mistral_causal.json's sequence, within 1e-4.
TEST(DualEncoder, LlamaFamilyLastTokenPoolingMatchesTheHfHiddenState) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/mistral_causal.json");
  std::ifstream in(golden_path);
  const auto golden = nlohmann::json::parse(in);
  const auto ids = golden["input_ids"].get<std::vector<int32_t>>();
  const auto want = golden["hidden_states_last_position"].back().get<std::vector<double>>();
  auto encoder = DualEncoder::Load(model_dir, {.normalize = false});
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  EXPECT_EQ((*encoder)->options().pooling, Pooling::kLastToken);  // the default for decoders
  ASSERT_EQ((*encoder)->dim(), want.size());
  auto emb = (*encoder)->EncodeIds({ids});
  ASSERT_TRUE(emb.ok()) << emb.status().ToString();
  for (size_t j = 0; j < want.size(); ++j) ASSERT_NEAR((*emb)[j], want[j], 1e-4) << "dim " << j;
  // Text goes through SentencePiece with <s> first; normalised rows have unit length.
  auto normalized = DualEncoder::Load(model_dir, {.query_prefix = "query: "});
  ASSERT_TRUE(normalized.ok());
  EXPECT_EQ((*normalized)->Tokenize("hello").front(), 1);
  auto q = (*normalized)->EncodeQueries({"statins lower cholesterol", "a history of rome"});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  double norm = 0;
  for (size_t j = 0; j < want.size(); ++j) norm += (*q)[j] * (*q)[j];
  EXPECT_NEAR(norm, 1.0, 1e-5);
}

// A sentence-transformers directory (tiny-bert's files linked under the layout SentenceTransformer.save
// writes, with the weights in 0_Transformer/): its modules decide pooling, normalisation, length and
// prompts unless the caller sets them; what Quarry cannot compute is refused, naming file and module.
TEST(DualEncoder, FollowsASentenceTransformersDirectory) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-bert");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/bert.json");
  testing::TempDir st;
  std::filesystem::create_directories(st / "0_Transformer");
  std::filesystem::create_directories(st / "1_Pooling");
  for (const auto& f : std::filesystem::directory_iterator(model_dir)) {
    std::filesystem::create_symlink(f.path(), st / ("0_Transformer/" + f.path().filename().string()));
  }
  const std::string modules =
      R"([{"idx":0,"name":"0","path":"0_Transformer","type":"sentence_transformers.models.Transformer"},
          {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
          {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}])";
  testing::WriteFile(st / "modules.json", modules);
  testing::WriteFile(st / "1_Pooling/config.json",
                     R"({"word_embedding_dimension": 64, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true})");
  testing::WriteFile(st / "0_Transformer/sentence_bert_config.json", R"({"max_seq_length": 7, "do_lower_case": false})");
  testing::WriteFile(st / "config_sentence_transformers.json", R"({"prompts": {"query": "query: ", "document": ""}})");

  auto encoder = DualEncoder::Load(st.path());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  const DualEncoderOptions& o = (*encoder)->options();
  EXPECT_EQ(o.pooling, Pooling::kMean);
  EXPECT_EQ(o.normalize, true);
  EXPECT_EQ(o.max_length, 7u);
  EXPECT_EQ(o.query_prefix, "query: ");
  EXPECT_EQ(o.document_prefix, "");
  EXPECT_EQ((*encoder)->Tokenize("one two three four five six seven eight").size(), 7u);
  // The empty text's golden ids are right (see model_test), so its mean embedding is transformers'.
  std::ifstream in(golden_path);
  const auto golden = nlohmann::json::parse(in);  // named: a range-for over a temporary's member dangles
  for (const auto& c : golden["cases"]) {
    if (c["text"] != "") continue;
    auto want = c["mean"].get<std::vector<double>>();
    double norm = 0;
    for (double v : want) norm += v * v;
    auto emb = (*encoder)->EncodeDocuments({""});
    ASSERT_TRUE(emb.ok()) << emb.status().ToString();
    for (size_t j = 0; j < want.size(); ++j) ASSERT_NEAR((*emb)[j], want[j] / std::sqrt(norm), 1e-4) << "dim " << j;
  }
  // The caller's choices win over the model's.
  auto overridden = DualEncoder::Load(st.path(), {.query_prefix = "", .pooling = Pooling::kCls, .normalize = false, .max_length = 512});
  ASSERT_TRUE(overridden.ok()) << overridden.status().ToString();
  EXPECT_EQ((*overridden)->options().pooling, Pooling::kCls);
  EXPECT_EQ((*overridden)->options().normalize, false);
  EXPECT_EQ((*overridden)->options().max_length, 512u);
  EXPECT_EQ((*overridden)->options().query_prefix, "");

  // Without a Normalize module sentence-transformers does not normalise; nor does Quarry.
  testing::WriteFile(st / "modules.json", modules.substr(0, modules.rfind("},") + 1) + "]");
  auto raw = DualEncoder::Load(st.path());
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ((*raw)->options().normalize, false);

  auto refused = [&](const std::string& needle) {
    auto e = DualEncoder::Load(st.path());
    ASSERT_FALSE(e.ok()) << needle;
    EXPECT_NE(e.status().message().find(needle), std::string::npos) << e.status().ToString();
  };
  testing::WriteFile(st / "modules.json", modules.substr(0, modules.rfind(']')) +
                                              R"(,{"idx":3,"name":"3","path":"3_Dense","type":"sentence_transformers.models.Dense"}])");
  refused("modules.json: module 3: module 'sentence_transformers.models.Dense' is not supported");
  testing::WriteFile(st / "modules.json", modules);
  testing::WriteFile(st / "1_Pooling/config.json", R"({"pooling_mode_max_tokens": true})");
  refused("1_Pooling/config.json: pooling_mode_max_tokens is not supported");
  testing::WriteFile(st / "1_Pooling/config.json", R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true})");
  refused("several pooling modes");
  testing::WriteFile(st / "1_Pooling/config.json", R"({"pooling_mode_mean_tokens": "yes"})");
  refused("field 'pooling_mode_mean_tokens' has the wrong type");
  testing::WriteFile(st / "1_Pooling/config.json", R"({"pooling_mode_mean_tokens": true})");
  testing::WriteFile(st / "0_Transformer/sentence_bert_config.json", R"({"max_seq_length": -3})");
  refused("max_seq_length is negative");
  testing::WriteFile(st / "0_Transformer/sentence_bert_config.json", "{");
  refused("sentence_bert_config.json: malformed JSON");
}

// Flat search is exact: the same neighbours as brute force, with the same scores.
TEST(FaissIndex, FlatSearchEqualsBruteForce) {
  const size_t n = 2000, d = 32, n_queries = 25, k = 10;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> base(n * d), queries(n_queries * d);
  for (float& v : base) v = normal(rng);
  for (float& v : queries) v = normal(rng);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = 1000 + static_cast<int64_t>(i) * 3;  // ids are not positions
  for (DenseMetric metric : {DenseMetric::kInnerProduct, DenseMetric::kL2}) {
    auto index = FaissIndex::Create(d, "Flat", metric);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    ASSERT_TRUE((*index)->Add(ids, base).ok());
    EXPECT_EQ((*index)->size(), n);
    auto hits = (*index)->Search(queries, k);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    for (size_t q = 0; q < n_queries; ++q) {
      std::vector<std::pair<double, int64_t>> brute;
      for (size_t i = 0; i < n; ++i) {
        double s = 0;
        for (size_t j = 0; j < d; ++j) {
          const double a = queries[q * d + j], b = base[i * d + j];
          s += metric == DenseMetric::kInnerProduct ? a * b : (a - b) * (a - b);
        }
        brute.emplace_back(metric == DenseMetric::kInnerProduct ? -s : s, ids[i]);
      }
      std::sort(brute.begin(), brute.end());
      ASSERT_EQ((*hits)[q].size(), k);
      for (size_t r = 0; r < k; ++r) {
        EXPECT_EQ((*hits)[q][r].id, brute[r].second) << "query " << q << " rank " << r;
        EXPECT_NEAR((*hits)[q][r].score, std::fabs(brute[r].first), 1e-4) << "query " << q << " rank " << r;
      }
    }
  }
}

TEST(FaissIndex, ErrorsAreStatuses) {
  auto bad = FaissIndex::Create(16, "NoSuchIndexType", DenseMetric::kL2);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("dense index: ", 0), 0u) << bad.status().message();
  auto index = FaissIndex::Create(4, "Flat", DenseMetric::kL2);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->Add({1, 2}, std::vector<float>(7)).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE((*index)->Search(std::vector<float>(5), 1).ok());
  auto ivf = FaissIndex::Create(4, "IVF4,Flat", DenseMetric::kL2);
  ASSERT_TRUE(ivf.ok());
  EXPECT_FALSE((*ivf)->is_trained());
  EXPECT_FALSE((*ivf)->Add({1}, std::vector<float>(4)).ok()) << "an untrained IVF index refuses vectors";
}

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

// Overlapping clusters of unit vectors (seeded), as bench_dense makes them.
std::vector<float> ClusteredUnitVectors(size_t n, size_t dim, size_t clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(clusters * dim);
  for (auto& x : centres) x = normal(rng) / std::sqrt(static_cast<float>(dim));
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng() % clusters;
    float norm = 0;
    for (size_t k = 0; k < dim; ++k) {
      out[i * dim + k] = centres[c * dim + k] + 1.5f / std::sqrt(static_cast<float>(dim)) * normal(rng);
      norm += out[i * dim + k] * out[i * dim + k];
    }
    for (size_t k = 0; k < dim; ++k) out[i * dim + k] /= std::sqrt(norm);
  }
  return out;
}

TEST(SoarIvf, SpillsOnceSearchesExactlyAtFullNprobeAndBeatsPlainIvfAtEqualNprobe) {
  const size_t n = 4000, dim = 32, lists = 32;
  const auto base = ClusteredUnitVectors(n, dim, 40, 1);
  const auto queries = ClusteredUnitVectors(200, dim, 40, 2);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(1000 + i);
  auto exact = FaissIndex::Create(dim, "Flat", DenseMetric::kInnerProduct);
  ASSERT_TRUE(exact.ok());
  ASSERT_TRUE((*exact)->Add(ids, base).ok());
  auto truth_hits = (*exact)->Search(queries, 10);
  ASSERT_TRUE(truth_hits.ok());
  std::vector<std::vector<int64_t>> truth;
  for (const auto& row : *truth_hits) {
    truth.emplace_back();
    for (const auto& h : row) truth.back().push_back(h.id);
  }
  SoarIvfOptions o;
  o.n_lists = lists;
  o.spill = false;
  auto plain = SoarIvf::Build(dim, ids, base, o);
  o.spill = true;
  auto soar = SoarIvf::Build(dim, ids, base, o);
  ASSERT_TRUE(plain.ok() && soar.ok()) << soar.status().ToString();
  EXPECT_EQ((*plain)->n_entries(), n);
  EXPECT_EQ((*soar)->n_entries(), 2 * n);  // every vector spilled once
  // All lists probed: exact, and each id once although it sits in two lists.
  auto all = (*soar)->Search(queries, 10, lists);
  ASSERT_TRUE(all.ok());
  EXPECT_DOUBLE_EQ(RecallAtK(*all, truth, 10), 1.0);
  for (const auto& row : *all) {
    std::set<int64_t> unique;
    for (const auto& h : row) unique.insert(h.id);
    EXPECT_EQ(unique.size(), row.size());
  }
  for (size_t nprobe : {1, 2, 4}) {
    auto p = (*plain)->Search(queries, 10, nprobe);
    auto s = (*soar)->Search(queries, 10, nprobe);
    ASSERT_TRUE(p.ok() && s.ok());
    EXPECT_GT(RecallAtK(*s, truth, 10), RecallAtK(*p, truth, 10)) << "nprobe " << nprobe;
  }
  // The serialised index answers identically; damaged bytes are Corruption.
  const std::string bytes = (*soar)->Serialize();
  auto back = SoarIvf::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto again = (*back)->Search(queries, 10, 3);
  auto before = (*soar)->Search(queries, 10, 3);
  ASSERT_TRUE(again.ok() && before.ok());
  for (size_t q = 0; q < queries.size() / dim; ++q) {
    ASSERT_EQ((*again)[q].size(), (*before)[q].size());
    for (size_t j = 0; j < (*again)[q].size(); ++j) EXPECT_EQ((*again)[q][j].id, (*before)[q][j].id);
  }
  EXPECT_EQ(SoarIvf::Deserialize(bytes.substr(0, bytes.size() - 3)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(SoarIvf::Deserialize("QSOAR\x09").status().code(), StatusCode::kCorruption);
  // Through the FaissIndex interface, as collections use it.
  auto f = FaissIndex::Create(dim, "SOAR16,lambda=1.5", DenseMetric::kInnerProduct);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE((*f)->HasSearchParameter("nprobe"));
  EXPECT_FALSE((*f)->is_trained());
  ASSERT_TRUE((*f)->Train(base).ok());
  ASSERT_TRUE((*f)->Add(ids, base).ok());
  ASSERT_TRUE((*f)->SetSearchParameter("nprobe", 16).ok());
  auto via = (*f)->Search(queries, 10);
  ASSERT_TRUE(via.ok());
  EXPECT_DOUBLE_EQ(RecallAtK(*via, truth, 10), 1.0);
  auto round = FaissIndex::Deserialize(*(*f)->Serialize());
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_EQ((*round)->size(), n);
  EXPECT_FALSE(FaissIndex::Create(dim, "SOAR16", DenseMetric::kL2).ok());
  EXPECT_FALSE(FaissIndex::Create(dim, "SOARx", DenseMetric::kInnerProduct).ok());
}

}  // namespace
}  // namespace quarry
