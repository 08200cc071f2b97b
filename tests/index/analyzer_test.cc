#include "index/lexical/analyzer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "index/lexical/porter_stemmer.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

// Expected terms were produced by Lucene 8.7's org.apache.lucene.analysis.en.EnglishAnalyzer
// (liblucene8-java) on the same strings: the analyzer must match it token for token.
const struct {
  std::string text;
  std::vector<std::string> terms;
} kLuceneCases[] = {
  {"The patient's cholesterol levels were REDUCED by statins.",
   {"patient", "cholesterol", "level", "were", "reduc", "statin"}},
  {"Patients’ outcomes: the women’s study (n=1,024) showed 3.5% improvement.",
   {"patient", "outcom", "women", "studi", "n", "1,024", "show", "3.5", "improv"}},
  {"U.S.A. e.g. don't can't O'Neil's",
   {"u.s.a", "e.g", "don't", "can't", "o'neil"}},
  {"IL-6 and TNF-alpha; p<0.05; 10.1038/nature12373",
   {"il", "6", "tnf", "alpha", "p", "0.05", "10.1038", "nature12373"}},
  {"artemis:DNA-PKcs email gaog@mail.cbi.pku.edu.cn http://example.org/a_b",
   {"artemis:dna", "pkc", "email", "gaog", "mail.cbi.pku.edu.cn", "http", "example.org", "a_b"}},
  {"Assembly technology possibly irreversibly pathology hopping generalizations",
   {"assembl", "technolog", "possibl", "irrevers", "patholog", "hop", "gener"}},
  {"relational conditional rational valency hesitancy digitizer conformably radically differently vilely analogously",
   {"relat", "condit", "ration", "valenc", "hesit", "digit", "conform", "radic", "differ", "vile", "analog"}},
  {"vietnamization predication operator feudalism decisiveness hopefulness callousness formality sensitivity sensibility",
   {"vietnam", "predic", "oper", "feudal", "decis", "hope", "callous", "formal", "sensit", "sensibl"}},
  {"triplicate formative formalize electricity electrical hopeful goodness revival allowance inference airliner gyroscopic",
   {"triplic", "form", "formal", "electr", "electr", "hope", "good", "reviv", "allow", "infer", "airlin", "gyroscop"}},
  {"adjustable defensible irritant replacement adjustment dependent adoption homologou communism activate angularity homologous effective bowdlerize",
   {"adjust", "defens", "irrit", "replac", "adjust", "depend", "adopt", "homolog", "commun", "activ", "angular", "homolog", "effect", "bowdler"}},
  {"probate rate cease controll roll caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping tanned falling hissing fizzed failing filing happy sky",
   {"probat", "rate", "ceas", "control", "roll", "caress", "poni", "ti", "caress", "cat", "feed", "agre", "plaster", "bled", "motor", "sing", "conflat", "troubl", "size", "hop", "tan", "fall", "hiss", "fizz", "fail", "file", "happi", "sky"}},
  {"as us is go ox ab abc yes his",
   {"us", "go", "ox", "ab", "abc", "ye", "hi"}},
  {"naïve café Ærø ÉCOLE straße ΑΒΓ δέλτα",
   {"naïv", "café", "ærø", "école", "straße", "αβγ", "δέλτα"}},
  {"© 2020 ® brand™ emoji 😀 flags 🇫🇷",
   {"©", "2020", "®", "brand", "™", "emoji", "😀", "flag", "🇫🇷"}},
  {"x_y foo_bar 3_000 ___ ... !!! — –",
   {"x_y", "foo_bar", "3_000"}},
  {"H2O CO2 1,000,000 3.14.15 v1.2.3 A1c",
   {"h2o", "co2", "1,000,000", "3.14.15", "v1.2.3", "a1c"}},
};

TEST(Analyzer, MatchesLuceneEnglishAnalyzer) {
  auto analyzer = Analyzer::Create();
  ASSERT_TRUE(analyzer.ok()) << analyzer.status().ToString();
  std::vector<std::string> terms;
  for (const auto& c : kLuceneCases) {
    (*analyzer)->Analyze(c.text, &terms);
    EXPECT_EQ(terms, c.terms) << c.text;
  }
}

// ASCII text is segmented without ICU's iterator; it must give exactly ICU's spans (ICU's own
// segmentation is the one checked against Lucene above and on SciFact).
TEST(Analyzer, AsciiFastPathGivesIcusSpans) {
  auto analyzer = Analyzer::Create();
  ASSERT_TRUE(analyzer.ok());
  std::mt19937 rng(11);
  // Every ASCII word-break class, some of them twice so that runs form.
  const std::string alphabet = "aZq09_:.',; ;\n\r\t\v@-\"x(7/";
  std::vector<std::pair<size_t, size_t>> fast, icu;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const size_t n = rng() % 24;
    for (size_t j = 0; j < n; ++j) text.push_back(alphabet[rng() % alphabet.size()]);
    (*analyzer)->Tokenize(text, &fast);
    (*analyzer)->TokenizeWithIcu(text, &icu);
    ASSERT_EQ(fast, icu) << "'" << text << "'";
  }
  const std::string long_word(600, 'w');
  (*analyzer)->Tokenize(long_word + " 1.2", &fast);
  (*analyzer)->TokenizeWithIcu(long_word + " 1.2", &icu);
  EXPECT_EQ(fast, icu);
  const std::string dir = testing::SharedPath("datasets/scifact");
  if (dir.empty()) GTEST_SKIP() << "../shared/datasets/scifact is missing; skipping the corpus comparison";
  std::ifstream in(dir + "/corpus.jsonl");
  size_t checked = 0;
  for (std::string line; std::getline(in, line);) {
    (*analyzer)->Tokenize(line, &fast);  // the raw JSON line: ASCII text with every punctuation mark it has
    (*analyzer)->TokenizeWithIcu(line, &icu);
    ASSERT_EQ(fast, icu) << line.substr(0, 200);
    ++checked;
  }
  EXPECT_EQ(checked, 5183u);
}

TEST(Analyzer, SettingsTurnOffStopWordsAndStemming) {
  auto analyzer = Analyzer::Create({.stopwords = false, .stem = false});
  ASSERT_TRUE(analyzer.ok());
  std::vector<std::string> terms;
  (*analyzer)->Analyze("The running dogs", &terms);
  EXPECT_EQ(terms, (std::vector<std::string>{"the", "running", "dogs"}));
  auto round_trip = AnalyzerSettings::FromJson((*analyzer)->settings().ToJson());
  ASSERT_TRUE(round_trip.ok());
  EXPECT_FALSE(round_trip->stopwords);
  EXPECT_FALSE(round_trip->stem);
  EXPECT_FALSE(AnalyzerSettings::FromJson("{\"name\": \"other\"}").ok());
  EXPECT_FALSE(AnalyzerSettings::FromJson("not json").ok());
}

TEST(Analyzer, SplitsTokensLongerThanLucenesLimit) {
  auto analyzer = Analyzer::Create({.stopwords = true, .stem = false});
  ASSERT_TRUE(analyzer.ok());
  std::vector<std::string> terms;
  (*analyzer)->Analyze(std::string(600, 'x'), &terms);
  EXPECT_EQ(terms, (std::vector<std::string>{std::string(255, 'x'), std::string(255, 'x'), std::string(90, 'x')}));
}

TEST(Analyzer, StopSetIsLucenes) {
  for (const char* w : {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
                        "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
                        "these", "they", "this", "to", "was", "will", "with"}) {
    EXPECT_TRUE(IsEnglishStopWord(w)) << w;
  }
  for (const char* w : {"were", "we", "i", "from", "he", "an'"}) EXPECT_FALSE(IsEnglishStopWord(w)) << w;
}

TEST(PorterStemmer, DepartsFromThePublishedAlgorithmAsLuceneDoes) {
  // Lucene: assembly -> assembl, technology -> technolog (the reference C implementation's
  // departures); Snowball's published-algorithm "porter" gives assembli, technologi.
  PorterStemmer stemmer;
  const std::pair<std::string, std::string> cases[] = {
      {"assembly", "assembl"}, {"technology", "technolog"}, {"possibly", "possibl"},
      {"ab", "ab"}, {"us", "us"}, {"caresses", "caress"}, {"hopping", "hop"}};
  for (const auto& [in, out] : cases) {
    std::string w = in;
    stemmer.Stem(&w);
    EXPECT_EQ(w, out) << in;
  }
}

}  // namespace
}  // namespace quarry
