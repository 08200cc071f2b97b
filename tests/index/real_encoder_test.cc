// Real pretrained dual encoders (fetched by scripts/models.sh) against the goldens that
// tools/goldens/encoders.py made with sentence-transformers on PyTorch: token ids exactly, embeddings
// within 1e-4 absolute. Skips, naming the model, where a model or its golden is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "common/json.h"
#include "index/dense/dual_encoder.h"
#include "model/wordpiece.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

// tests/data/golden/<name>.json, or null (having said why) when it is missing or unreadable.
std::optional<nlohmann::json> Golden(const std::string& name) {
  const std::string path = std::string(QUARRY_SOURCE_DIR) + "/tests/data/golden/" + name + ".json";
  auto golden = ReadJsonFile(path);
  if (!golden.ok()) {
    ADD_FAILURE() << golden.status().ToString() << " (tools/goldens/encoders.sh makes it)";
    return std::nullopt;
  }
  return std::move(*golden);
}

void ExpectReproducesGolden(const std::string& name) {
  QUARRY_REQUIRE_MODEL(model_dir, name);
  auto golden = Golden(name);
  ASSERT_TRUE(golden);
  auto encoder = DualEncoder::Load(model_dir);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  EXPECT_EQ((*encoder)->dim(), (*golden)["dim"].get<size_t>());
  EXPECT_EQ((*encoder)->options().max_length, (*golden)["max_seq_length"].get<size_t>());
  const auto& cases = (*golden)["cases"];
  ASSERT_GE(cases.size(), 20u);
  std::vector<std::string> texts;
  for (const auto& c : cases) {
    texts.push_back(c["text"]);
    EXPECT_EQ((*encoder)->Tokenize(texts.back()), c["ids"].get<std::vector<int32_t>>()) << name << ": " << texts.back();
  }
  auto emb = (*encoder)->EncodeDocuments(texts);
  ASSERT_TRUE(emb.ok()) << emb.status().ToString();
  const size_t d = (*encoder)->dim();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = cases[i]["embedding"].get<std::vector<double>>();
    ASSERT_EQ(want.size(), d);
    double worst = 0;
    size_t worst_j = 0;
    for (size_t j = 0; j < d; ++j) {
      const double err = std::fabs((*emb)[i * d + j] - want[j]);
      if (err > worst) worst = err, worst_j = j;
    }
    EXPECT_LE(worst, 1e-4) << name << " text " << i << " (" << texts[i].substr(0, 60) << "): dim " << worst_j << " is "
                           << (*emb)[i * d + worst_j] << ", want " << want[worst_j];
  }
}

// A model that ships only tokenizer.json (no vocab.txt) tokenizes the same: the golden ids from HF,
// with the vocabulary and normalizer read from tokenizer.json alone.
void ExpectTokenizerJsonReproducesGolden(const std::string& name) {
  QUARRY_REQUIRE_MODEL(model_dir, name);
  auto golden = Golden(name);
  ASSERT_TRUE(golden);
  testing::TempDir tmp;
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(model_dir + "/" + file, tmp / file);
  }
  ASSERT_FALSE(std::filesystem::exists(tmp / "vocab.txt"));
  auto tokenizer = model::WordPieceTokenizer::Load(tmp.path());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const size_t max_length = (*golden)["max_seq_length"].get<size_t>();
  for (const auto& c : (*golden)["cases"]) {
    EXPECT_EQ((*tokenizer)->Encode(c["text"].get<std::string>(), max_length), c["ids"].get<std::vector<int32_t>>())
        << name << ": " << c["text"];
  }
  // What it would not reproduce is refused, naming the field.
  std::string json = testing::ReadFile(tmp / "tokenizer.json");
  json.replace(json.find("\"BertPreTokenizer\""), 18, "\"Whitespace\"");
  testing::WriteFile(tmp / "tokenizer.json", json);
  auto refused = model::WordPieceTokenizer::Load(tmp.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("pre_tokenizer"), std::string::npos) << refused.status().message();
}

TEST(RealEncoder, AllMiniLmL6V2ReproducesSentenceTransformers) { ExpectReproducesGolden("all-MiniLM-L6-v2"); }
TEST(RealEncoder, TokenizerJsonAloneReproducesTheIds) {
  ExpectTokenizerJsonReproducesGolden("all-MiniLM-L6-v2");
  ExpectTokenizerJsonReproducesGolden("all-mpnet-base-v2");
}
// MPNet: positions from 2, no token types, relative-position buckets; <s> ... </s>; 384 tokens.
TEST(RealEncoder, AllMpnetBaseV2ReproducesSentenceTransformers) { ExpectReproducesGolden("all-mpnet-base-v2"); }

}  // namespace
}  // namespace quarry
