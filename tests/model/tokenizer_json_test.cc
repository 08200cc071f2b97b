// tokenizer.json byte-level BPE against Hugging Face's tokenizers: tests/data/golden/bpe/<style>/ holds a
// tokenizer.json trained by tokenizers under each family's layout and the ids tokenizers gives for ~30
// texts (tools/goldens/bpe_tokenizers.py). Every id must be equal.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "model/bpe_tokenizer.h"
#include "model/tokenizer.h"
#include "tests/test_util.h"

namespace quarry::model {
namespace {

const std::string kGolden = std::string(QUARRY_SOURCE_DIR) + "/tests/data/golden/bpe/";

class TokenizerJson : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerJson, IdsEqualHuggingFaceTokenizers) {
  const std::string dir = kGolden + GetParam();
  auto tokenizer = LoadTokenizer(dir);  // the directory: tokenizer.json, no tokenizer.model
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const auto golden = nlohmann::json::parse(testing::ReadFile(dir + "/ids.json"));
  EXPECT_EQ((*tokenizer)->vocab_size(), golden["vocab_size"].get<int32_t>());
  size_t n = 0;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = (*tokenizer)->Encode(text);
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    std::vector<int32_t> with_specials = ids;
    if ((*tokenizer)->add_bos()) with_specials.insert(with_specials.begin(), (*tokenizer)->bos_id());
    EXPECT_EQ(with_specials, c["ids_with_specials"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    EXPECT_EQ((*tokenizer)->Decode(ids), c["decoded"].get<std::string>()) << GetParam() << ": '" << text << "'";
    ++n;
  }
  EXPECT_GE(n, 30u);
}

INSTANTIATE_TEST_SUITE_P(Styles, TokenizerJson, ::testing::Values("gpt2", "smollm", "qwen2", "llama3"));

TEST(TokenizerJsonLayout, EachStyleIsRecognisedAndOnlyLlama3AddsABos) {
  for (const auto& [style, pre] : {std::pair{"gpt2", BpeTokenizer::PreTokenizer::kGpt2},
                                   {"smollm", BpeTokenizer::PreTokenizer::kSmolLm},
                                   {"qwen2", BpeTokenizer::PreTokenizer::kQwen2},
                                   {"llama3", BpeTokenizer::PreTokenizer::kLlama3}}) {
    auto t = BpeTokenizer::FromTokenizerJson(kGolden + style + "/tokenizer.json");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ((*t)->pre_tokenizer(), pre) << style;
    EXPECT_EQ((*t)->add_bos(), std::string(style) == "llama3") << style;
  }
}

// What the loader does not reproduce is refused by name, and malformed files are errors naming the file.
TEST(TokenizerJsonLayout, AnythingElseIsRefusedNamingTheField) {
  testing::TempDir tmp;
  const auto base = nlohmann::json::parse(testing::ReadFile(kGolden + "qwen2/tokenizer.json"));
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> change;
    const char* error;
  };
  const Case cases[] = {
      {"another regex", [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+"; },
       "pre_tokenizer"},
      {"a prefix space", [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
       "pre_tokenizer"},
      {"another normalizer", [](nlohmann::json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "normalizer"},
      {"byte fallback", [](nlohmann::json& j) { j["model"]["byte_fallback"] = true; }, "byte_fallback"},
      {"a WordPiece model", [](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; }, "model type"},
      {"a bad merge", [](nlohmann::json& j) { j["model"]["merges"][3] = nlohmann::json::array({"a"}); }, "merges[3]"},
      {"an lstrip added token", [](nlohmann::json& j) { j["added_tokens"][0]["lstrip"] = true; }, "lstrip"},
      {"one id, two tokens", [](nlohmann::json& j) { j["added_tokens"][0]["id"] = 5; }, "id 5 is both"},
      {"an appended EOS", [](nlohmann::json& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", {{{"Sequence", {{"id", "A"}}}}, {{"SpecialToken", {{"id", "<|im_end|>"}}}}}}};
       }, "post_processor"},
  };
  for (const auto& c : cases) {
    nlohmann::json j = base;
    c.change(j);
    testing::WriteFile(tmp / "tokenizer.json", j.dump());
    auto t = BpeTokenizer::FromTokenizerJson(tmp / "tokenizer.json");
    ASSERT_FALSE(t.ok()) << c.what;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(t.status().message().find(c.error), std::string::npos) << c.what << ": " << t.status().message();
    EXPECT_NE(t.status().message().find(tmp / "tokenizer.json"), std::string::npos) << c.what;
  }
  testing::WriteFile(tmp / "tokenizer.json", "{\"model\": ");
  EXPECT_FALSE(BpeTokenizer::FromTokenizerJson(tmp / "tokenizer.json").ok()) << "truncated JSON";
}

}  // namespace
}  // namespace quarry::model
