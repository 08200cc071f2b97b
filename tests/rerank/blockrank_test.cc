// BlockRank against the goldens made with the authors' own prompt, collate and scoring functions
// (../shared/fixtures/golden/blockrank_hf_tokenizers_legacy_{false,true}.json): prompt pieces, block
// ids, positions exactly; hidden states and logits within 1e-4; document scores within 1e-5.
#include "rerank/blockrank.h"
#include "model/kernels.h"
#include "model/sp_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "tests/test_util.h"

namespace quarry {
namespace {

nlohmann::json ReadGolden(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The golden's documents, in prompt order; `with_ids` labels them d0, d1, ... (decoupled mode).
std::vector<BlockRankDocument> GoldenDocuments(const nlohmann::json& g, bool with_ids) {
  std::vector<BlockRankDocument> docs;
  for (const auto& text : g["documents_in_prompt_order"]) {
    docs.push_back({"", text.get<std::string>(), with_ids ? "d" + std::to_string(docs.size()) : ""});
  }
  return docs;
}

class BlockRankGolden : public ::testing::TestWithParam<bool> {};

TEST_P(BlockRankGolden, ReproducesTheAuthorsPipeline) {
  const bool legacy = GetParam();
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  const std::string name = std::string("fixtures/golden/blockrank_hf_tokenizers_legacy_") + (legacy ? "true" : "false") + ".json";
  QUARRY_REQUIRE_SHARED(golden_path, name);
  std::ifstream in(golden_path);
  const auto g = nlohmann::json::parse(in);

  auto model = model::LlamaModel::Load(model_dir);
  auto tokenizer = model::SentencePieceTokenizer::Load(model_dir, legacy);
  ASSERT_TRUE(model.ok() && tokenizer.ok());
  BlockRankOptions options;
  options.scoring_layer = g["scoring_layer"];
  options.max_block_length = g["max_block_length"];
  options.n_signal = static_cast<int>(g["signal_positions_in_last_block"].size());
  std::vector<BlockRankDocument> docs;
  for (const auto& text : g["documents_in_prompt_order"]) docs.push_back({"", text.get<std::string>()});

  const BlockRankPrompt prompt = BuildBlockRankPrompt(**tokenizer, g["query"], docs, options);
  EXPECT_EQ(prompt.pieces, g["prompt_text_pieces"].get<std::vector<std::string>>());
  EXPECT_EQ(prompt.piece_ids, g["piece_ids"].get<std::vector<std::vector<int32_t>>>());
  ASSERT_EQ(prompt.blocks.size(), g["blocks"].size());
  for (size_t b = 0; b < prompt.blocks.size(); ++b) {
    EXPECT_EQ(prompt.blocks[b], g["blocks"][b]["ids"].get<std::vector<int32_t>>()) << "block " << b;
    EXPECT_EQ(prompt.positions[b], g["blocks"][b]["positions"].get<std::vector<int32_t>>()) << "block " << b;
  }

  // Hidden states of the signal tokens after each layer, through the block-structured forward.
  std::vector<int32_t> ids, positions;
  for (size_t b = 0; b < prompt.blocks.size(); ++b) {
    ids.insert(ids.end(), prompt.blocks[b].begin(), prompt.blocks[b].end());
    positions.insert(positions.end(), prompt.positions[b].begin(), prompt.positions[b].end());
  }
  const size_t H = (*model)->config().hidden_size;
  std::vector<float> x = (*model)->Embed(ids);
  const auto mask = BlockRankMask(prompt);
  ASSERT_EQ(g["query_block_hidden_after_layer"].size(), 3u);
  int layers_checked = 0;
  for (const auto& [layer, states] : g["query_block_hidden_after_layer"].items()) {
    ++layers_checked;
    const int l = std::stoi(layer);
    (*model)->RunLayer(l, &x, positions, mask);
    for (size_t t = 0; t < states.size(); ++t) {
      const auto want = states[t].get<std::vector<float>>();
      const size_t row = ids.size() - states.size() + t;
      for (size_t i = 0; i < H; ++i) ASSERT_NEAR(x[row * H + i], want[i], 1e-4) << "layer " << l << " token " << t << " dim " << i;
    }
  }
  EXPECT_EQ(layers_checked, 3);

  BlockRanker ranker(std::move(*model), std::move(*tokenizer), options);
  auto scores = ranker.ScorePrompt(prompt);
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  const auto want_logits = g["signal_logits_over_doc_keys"];
  ASSERT_EQ(scores->logits.size(), want_logits.size());
  for (size_t h = 0; h < want_logits.size(); ++h) {
    for (size_t t = 0; t < want_logits[h].size(); ++t) {
      const auto want = want_logits[h][t].get<std::vector<float>>();
      ASSERT_EQ(scores->logits[h][t].size(), want.size());
      for (size_t j = 0; j < want.size(); ++j) ASSERT_NEAR(scores->logits[h][t][j], want[j], 1e-4) << h << "," << t << "," << j;
    }
  }
  const auto want_scores = g["doc_scores"].get<std::vector<double>>();
  ASSERT_EQ(scores->doc_scores.size(), want_scores.size());
  for (size_t i = 0; i < want_scores.size(); ++i) EXPECT_NEAR(scores->doc_scores[i], want_scores[i], 1e-5) << "doc " << i;
  auto dense = ranker.ScorePrompt(prompt, /*dense_reference=*/true);
  ASSERT_TRUE(dense.ok());
  // The dense reference scores every key row by row and masks; the block path is GEMM tiles with an
  // online softmax: the same scores up to float32 rounding.
  ASSERT_EQ(dense->doc_scores.size(), scores->doc_scores.size());
  for (size_t i = 0; i < want_scores.size(); ++i) {
    EXPECT_NEAR(dense->doc_scores[i], scores->doc_scores[i], 1e-6) << "dense masked attention, doc " << i;
  }
  auto via_score = ranker.Score(g["query"], docs);
  ASSERT_TRUE(via_score.ok());
  EXPECT_EQ(*via_score, scores->doc_scores);
}

INSTANTIATE_TEST_SUITE_P(BothTokenizerModes, BlockRankGolden, ::testing::Values(false, true));

}  // namespace
}  // namespace quarry

namespace quarry {
namespace {

// Long candidate lists are scored in windows whose (anchored) scores merge into one ranking.
TEST(BlockRankWindows, WindowsScoreEveryCandidate) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  // The fixture has no tokenizer_config.json, so Load uses HF's default, the legacy mode.
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_true.json");
  const auto g = ReadGolden(golden_path);
  const auto docs = GoldenDocuments(g, false);
  BlockRankOptions options;
  options.scoring_layer = 2;
  options.max_block_length = 128;
  options.window = 6;
  auto one_pass = BlockRanker::Load(model_dir, options);
  options.window = 2;
  auto windows = BlockRanker::Load(model_dir, options);
  ASSERT_TRUE(one_pass.ok() && windows.ok());
  auto a = (*one_pass)->Score(g["query"], docs);
  auto b = (*windows)->Score(g["query"], docs);
  ASSERT_TRUE(a.ok() && b.ok());
  const auto want = g["doc_scores"].get<std::vector<double>>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*a)[i], want[i], 1e-5) << "a window of 6 is one pass";
  ASSERT_EQ(b->size(), 6u);
  for (double s : *b) EXPECT_TRUE(std::isfinite(s));
  // Within one window, the anchored score orders the window's documents as the authors' score does
  // when they share the window: check on the first window (documents 0 and 1) scored alone.
  BlockRankOptions pair = options;
  pair.window = 0;
  auto alone = BlockRanker::Load(model_dir, pair);
  ASSERT_TRUE(alone.ok());
  auto first_two = (*alone)->ScorePrompt(BuildBlockRankPrompt((*alone)->tokenizer(), g["query"], {docs[0], docs[1]}, pair));
  ASSERT_TRUE(first_two.ok());
  EXPECT_EQ((*b)[0], first_two->anchored_scores[0]);
  EXPECT_EQ((*b)[1], first_two->anchored_scores[1]);
  EXPECT_EQ(first_two->doc_scores[0] > first_two->doc_scores[1], (*b)[0] > (*b)[1]);
}

// Decoupled mode: the instruction holds no query, so document blocks can be encoded once. Scoring from
// the cached blocks must give the uncached computation's scores.
TEST(BlockRankCache, CachedScoresEqualUncachedScoresInDecoupledMode) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_false.json");
  const auto g = ReadGolden(golden_path);
  BlockRankOptions options;
  options.scoring_layer = 2;
  options.max_block_length = 128;
  options.query_in_instruction = false;
  auto ranker = BlockRanker::Load(model_dir, options);
  ASSERT_TRUE(ranker.ok()) << ranker.status().ToString();
  const auto docs = GoldenDocuments(g, true);
  const std::string query = g["query"];

  const BlockRankPrompt prompt = BuildBlockRankPrompt((*ranker)->tokenizer(), query, docs, options);
  EXPECT_EQ(prompt.pieces[0].find(query), std::string::npos) << "the instruction must not hold the query";
  EXPECT_NE(prompt.pieces[1].find("ID: d0 |"), std::string::npos) << prompt.pieces[1];
  auto uncached = (*ranker)->Score(query, docs);
  ASSERT_TRUE(uncached.ok()) << uncached.status().ToString();

  std::vector<BlockCache> caches;
  for (const auto& doc : docs) {
    auto c = (*ranker)->EncodeDocument(doc);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    caches.push_back(std::move(*c));
  }
  auto score_with = [&](const std::vector<BlockCache>& cs) {
    std::vector<const BlockCache*> ptrs;
    for (const auto& c : cs) ptrs.push_back(&c);
    auto s = (*ranker)->ScoreCached(query, ptrs);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : std::vector<double>();
  };
  const auto cached = score_with(caches);
  ASSERT_EQ(cached.size(), uncached->size());
  for (size_t d = 0; d < cached.size(); ++d) EXPECT_NEAR(cached[d], (*uncached)[d], 1e-5) << "doc " << d;

  // Stored as f32 the cache round-trips exactly; as f16 the scores move by a measured, small amount.
  std::vector<BlockCache> f32, f16;
  for (const auto& c : caches) {
    auto a = DecodeBlockCache(EncodeBlockCache(c, CacheDType::kF32));
    auto b = DecodeBlockCache(EncodeBlockCache(c, CacheDType::kF16));
    ASSERT_TRUE(a.ok() && b.ok());
    f32.push_back(std::move(*a));
    f16.push_back(std::move(*b));
  }
  EXPECT_EQ(score_with(f32), cached);
  const auto half = score_with(f16);
  double worst = 0;
  for (size_t d = 0; d < half.size(); ++d) worst = std::max(worst, std::fabs(half[d] - cached[d]));
  EXPECT_LT(worst, 1e-3) << "f16 cache error";
  std::printf("[ measured ] f16 block cache: max |score error| %.2e over %zu documents\n", worst, half.size());
  EXPECT_FALSE(DecodeBlockCache(EncodeBlockCache(caches[0], CacheDType::kF32).substr(0, 50)).ok());
}

// Scoring several layers from the caches, with and without calibration, in one pass or in windows,
// must give the uncached decoupled scores.
TEST(BlockRankCache, CachedLayersEqualTheUncachedComputation) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_false.json");
  const auto g = ReadGolden(golden_path);
  const auto docs = GoldenDocuments(g, true);
  const std::string query = g["query"];
  const std::vector<int> layers = {0, 2, 3};
  for (const bool calibrate : {false, true}) {
    for (const size_t window : {size_t{0}, size_t{2}}) {
      BlockRankOptions options;
      options.scoring_layer = 3;
      options.max_block_length = 128;
      options.query_in_instruction = false;
      options.calibrate = calibrate;
      options.window = window;
      auto ranker = BlockRanker::Load(model_dir, options);
      ASSERT_TRUE(ranker.ok()) << ranker.status().ToString();
      std::vector<BlockCache> caches;
      for (const auto& doc : docs) {
        auto c = (*ranker)->EncodeDocument(doc);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
        caches.push_back(std::move(*c));
      }
      std::vector<const BlockCache*> ptrs;
      for (const auto& c : caches) ptrs.push_back(&c);
      auto cached = (*ranker)->ScoreCachedAtLayers(query, ptrs, layers);
      auto uncached = (*ranker)->ScoreAtLayers(query, docs, layers);
      ASSERT_TRUE(cached.ok() && uncached.ok()) << cached.status().ToString() << uncached.status().ToString();
      ASSERT_EQ(cached->size(), layers.size());
      for (size_t l = 0; l < layers.size(); ++l) {
        ASSERT_EQ((*cached)[l].size(), docs.size());
        for (size_t d = 0; d < docs.size(); ++d) {
          EXPECT_NEAR((*cached)[l][d], (*uncached)[l][d], 1e-5)
              << "layer " << layers[l] << " doc " << d << " calibrate " << calibrate << " window " << window;
        }
      }
      // The deepest layer alone is ScoreCached.
      auto single = (*ranker)->ScoreCached(query, ptrs);
      ASSERT_TRUE(single.ok());
      EXPECT_EQ(*single, cached->back());
      EXPECT_FALSE((*ranker)->ScoreCachedAtLayers(query, ptrs, {2, 1}).ok()) << "layers must ascend";
      EXPECT_FALSE((*ranker)->ScoreCachedAtLayers(query, ptrs, {4}).ok()) << "beyond the layers loaded";
    }
  }
}

// Several scoring layers from one pass give what one pass per layer gives.
TEST(BlockRankLayers, OnePassScoresEveryLayerAsSeparatePassesDo) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_true.json");
  const auto g = ReadGolden(golden_path);
  const auto docs = GoldenDocuments(g, false);
  BlockRankOptions options;
  options.scoring_layer = 3;
  options.max_block_length = 128;
  auto deepest = BlockRanker::Load(model_dir, options);
  ASSERT_TRUE(deepest.ok()) << deepest.status().ToString();
  auto all = (*deepest)->ScoreAtLayers(g["query"], docs, {0, 1, 3});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    BlockRankOptions one = options;
    one.scoring_layer = std::vector<int>{0, 1, 3}[i];
    auto ranker = BlockRanker::Load(model_dir, one);
    ASSERT_TRUE(ranker.ok());
    auto want = (*ranker)->Score(g["query"], docs);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ((*all)[i].size(), want->size());
    for (size_t d = 0; d < want->size(); ++d) EXPECT_NEAR((*all)[i][d], (*want)[d], 1e-6) << "layer " << one.scoring_layer;
  }
  EXPECT_NE((*all)[0], (*all)[2]) << "different layers attend differently";
  EXPECT_FALSE((*deepest)->ScoreAtLayers(g["query"], docs, {4}).ok()) << "layer 4 was not loaded";
  EXPECT_FALSE((*deepest)->ScoreAtLayers(g["query"], docs, {2, 1}).ok()) << "layers must ascend";
}

// Chen et al.'s calibration: in the decoupled mode the content-free block sees exactly what a query
// block for "N/A" would, so a calibrated score is the query's score minus "N/A"'s, each scored on its
// own; cached blocks give the same calibrated scores.
// bf16-rounded activations (llama.cpp's BF16 arithmetic) on the bf16 tiny-mistral: scores move, but
// little: within 1e-2 of the exact ones (whose golden tolerance is 1e-5), the same order of documents
// whose exact scores differ by more than that.
TEST(BlockRankBf16, ActivationsRoundedToBf16MoveScoresLittle) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_true.json");
  const auto g = ReadGolden(golden_path);
  const auto docs = GoldenDocuments(g, true);
  BlockRankOptions exact_options;
  exact_options.scoring_layer = 2;
  exact_options.max_block_length = 128;
  BlockRankOptions bf16_options = exact_options;
  bf16_options.bf16_activations = true;
  auto exact = BlockRanker::Load(model_dir, exact_options);
  auto bf16 = BlockRanker::Load(model_dir, bf16_options);
  ASSERT_TRUE(exact.ok() && bf16.ok());
  auto a = (*exact)->Score(g["query"], docs);
  auto b = (*bf16)->Score(g["query"], docs);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().ToString();
  ASSERT_EQ(a->size(), b->size());
  double worst = 0;
  for (size_t d = 0; d < a->size(); ++d) worst = std::max(worst, std::fabs((*a)[d] - (*b)[d]));
  EXPECT_GT(worst, 0.0) << "the bf16 path should not be the exact one";
  EXPECT_LT(worst, 1e-2);
  for (size_t i = 0; i < a->size(); ++i) {
    for (size_t j = 0; j < a->size(); ++j) {
      if ((*a)[i] > (*a)[j] + 2e-2) {
        EXPECT_GT((*b)[i], (*b)[j]) << "documents " << i << " and " << j;
      }
    }
  }
  std::printf("bf16 activations: largest BlockRank score difference %.2e\n", worst);
}

TEST(BlockRankCalibration, SubtractsTheContentFreeQuerysScores) {
  QUARRY_REQUIRE_SHARED(model_dir, "fixtures/tiny-mistral");
  QUARRY_REQUIRE_SHARED(golden_path, "fixtures/golden/blockrank_hf_tokenizers_legacy_true.json");
  const auto g = ReadGolden(golden_path);
  const auto docs = GoldenDocuments(g, true);
  BlockRankOptions plain;
  plain.scoring_layer = 2;
  plain.max_block_length = 128;
  plain.query_in_instruction = false;
  BlockRankOptions calibrated = plain;
  calibrated.calibrate = true;
  auto a = BlockRanker::Load(model_dir, plain);
  auto b = BlockRanker::Load(model_dir, calibrated);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string query = g["query"];
  auto with_query = (*a)->Score(query, docs);
  auto content_free = (*a)->Score("N/A", docs);
  auto got = (*b)->Score(query, docs);
  ASSERT_TRUE(with_query.ok() && content_free.ok() && got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), docs.size());
  for (size_t d = 0; d < docs.size(); ++d) {
    EXPECT_NEAR((*got)[d], (*with_query)[d] - (*content_free)[d], 1e-6) << "doc " << d;
  }
  const BlockRankPrompt prompt = BuildBlockRankPrompt((*b)->tokenizer(), query, docs, calibrated);
  EXPECT_TRUE(prompt.calibrated);
  EXPECT_EQ(prompt.n_docs(), docs.size());
  EXPECT_NE(prompt.pieces.back().find("Query: N/A"), std::string::npos) << prompt.pieces.back();
  EXPECT_EQ(prompt.positions.back()[0], calibrated.query_position);
  const auto mask = BlockRankMask(prompt);
  EXPECT_EQ(mask.sees.back().size(), docs.size() + 1) << "the content-free block sees the instruction and documents only";

  std::vector<BlockCache> caches;
  std::vector<const BlockCache*> ptrs;
  for (const auto& doc : docs) caches.push_back(*(*b)->EncodeDocument(doc));
  for (const auto& c : caches) ptrs.push_back(&c);
  auto cached = (*b)->ScoreCached(query, ptrs);
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  for (size_t d = 0; d < docs.size(); ++d) EXPECT_NEAR((*cached)[d], (*got)[d], 1e-5) << "doc " << d;
}

}  // namespace
}  // namespace quarry
