// gen_corpus: a seeded synthetic corpus shaped like MS MARCO passages, written as a BEIR folder
// (corpus.jsonl, queries.jsonl, qrels/test.tsv) that both Quarry and the Lucene peer read.
//
//   gen_corpus OUT_DIR [--docs 1000000] [--vocab 1600000] [--queries 6980] [--seed 1]
//
// Words are drawn from a Zipf(1) distribution over `vocab` ranks; ranks 0..32 are Lucene's English
// stop words (so about a quarter of the tokens are stop words, as in English text) and every other
// rank is a distinct pronounceable word whose length grows with its rank. Passage lengths are
// log-normal with mean ~55 words (clamped to 5..250); ids are "0".."N-1" with empty titles, as
// MS MARCO's. Each query (2..10 words, uniform) is drawn for a random target passage: each word is one
// of the passage's words with probability 0.6, otherwise a Zipf draw; qrels judge the target relevant.
// The same arguments always produce the same bytes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// splitmix64: small, fast, and fully determined by the seed on every platform (unlike <random>'s
// distributions, whose algorithms the standard leaves to the library).
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>(Uniform() * static_cast<double>(n)); }
  double Normal() {  // Box-Muller
    const double u1 = 1.0 - Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// Vose's alias method: O(1) draws from a fixed discrete distribution.
class Alias {
 public:
  explicit Alias(const std::vector<double>& weights) : prob_(weights.size()), alias_(weights.size()) {
    const size_t n = weights.size();
    double total = 0;
    for (double w : weights) total += w;
    std::vector<double> scaled(n);
    std::vector<uint32_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      scaled[i] = weights[i] * static_cast<double>(n) / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const uint32_t s = small.back(), l = large.back();
      small.pop_back();
      prob_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (uint32_t i : large) prob_[i] = 1.0;
    for (uint32_t i : small) prob_[i] = 1.0;
  }
  uint32_t Draw(Rng& rng) const {
    const uint64_t i = rng.Below(prob_.size());
    return rng.Uniform() < prob_[i] ? static_cast<uint32_t>(i) : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<uint32_t> alias_;
};

constexpr const char* kStopWords[] = {"a",    "an",   "and",   "are",   "as",   "at",    "be",    "but",  "by",
                                      "for",  "if",   "in",    "into",  "is",   "it",    "no",    "not",  "of",
                                      "on",   "or",   "such",  "that",  "the",  "their", "then",  "there",
                                      "these", "they", "this", "to",    "was",  "will",  "with"};
constexpr size_t kNumStopWords = sizeof(kStopWords) / sizeof(kStopWords[0]);

// Rank r >= kNumStopWords -> a distinct word: base-100 digits of (r + 100) as consonant-vowel syllables
// (so at least two), then a closing consonant that no English suffix rule strips.
std::string Word(uint32_t rank) {
  if (rank < kNumStopWords) return kStopWords[rank];
  static const char kConsonants[] = "bcdfghjklmnprstvwxz";  // 19
  static const char kVowels[] = "aeiou";                    // 5
  static const char kClosing[] = "bdfgkmnptvxz";            // 12
  uint64_t v = uint64_t{rank} + 100;
  std::string w;
  const uint32_t close = static_cast<uint32_t>(v % 12);
  while (v > 0) {
    const uint32_t syllable = static_cast<uint32_t>(v % 95);
    w.push_back(kConsonants[syllable / 5]);
    w.push_back(kVowels[syllable % 5]);
    v /= 95;
  }
  w.push_back(kClosing[close]);
  return w;
}

struct Args {
  std::string out;
  uint64_t docs = 1000000, vocab = 1600000, queries = 6980, seed = 1;
};

int Usage() {
  std::fprintf(stderr, "usage: gen_corpus OUT_DIR [--docs N] [--vocab V] [--queries Q] [--seed S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto number = [&](uint64_t* v) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      *v = std::strtoull(argv[++i], &end, 10);
      return end && *end == '\0';
    };
    if (arg == "--docs") { if (!number(&a.docs)) return Usage(); }
    else if (arg == "--vocab") { if (!number(&a.vocab)) return Usage(); }
    else if (arg == "--queries") { if (!number(&a.queries)) return Usage(); }
    else if (arg == "--seed") { if (!number(&a.seed)) return Usage(); }
    else if (!arg.empty() && arg[0] != '-' && a.out.empty()) a.out = arg;
    else return Usage();
  }
  if (a.out.empty() || a.docs == 0 || a.vocab <= kNumStopWords || a.queries > a.docs) return Usage();
  std::filesystem::create_directories(a.out + "/qrels");

  std::vector<double> weights(a.vocab);
  for (uint64_t r = 0; r < a.vocab; ++r) weights[r] = 1.0 / static_cast<double>(r + 1);
  const Alias zipf(weights);
  std::vector<std::string> words(a.vocab);
  for (uint32_t r = 0; r < a.vocab; ++r) words[r] = Word(r);

  Rng rng{a.seed};
  // The query targets, chosen up front so their words can be drawn while their passages are written.
  std::unordered_map<uint64_t, std::vector<uint64_t>> targets;  // doc -> query indices
  std::vector<uint64_t> target_of(a.queries);
  for (uint64_t q = 0; q < a.queries; ++q) {
    target_of[q] = rng.Below(a.docs);
    targets[target_of[q]].push_back(q);
  }
  std::vector<std::string> query_text(a.queries);

  FILE* corpus = std::fopen((a.out + "/corpus.jsonl").c_str(), "w");
  if (!corpus) return std::perror("corpus.jsonl"), 1;
  std::vector<uint32_t> doc;
  std::string line;
  uint64_t n_words = 0;
  for (uint64_t d = 0; d < a.docs; ++d) {
    const double len = std::exp(3.927 + 0.4 * rng.Normal());
    const size_t n = static_cast<size_t>(std::clamp(std::lround(len), 5L, 250L));
    doc.resize(n);
    line = "{\"_id\": \"" + std::to_string(d) + "\", \"title\": \"\", \"text\": \"";
    for (size_t i = 0; i < n; ++i) {
      doc[i] = zipf.Draw(rng);
      if (i) line.push_back(' ');
      line += words[doc[i]];
    }
    line += "\"}\n";
    n_words += n;
    std::fwrite(line.data(), 1, line.size(), corpus);
    if (auto it = targets.find(d); it != targets.end()) {
      for (uint64_t q : it->second) {
        const size_t m = 2 + rng.Below(9);
        std::string& text = query_text[q];
        for (size_t i = 0; i < m; ++i) {
          const uint32_t w = rng.Uniform() < 0.6 ? doc[rng.Below(n)] : zipf.Draw(rng);
          if (i) text.push_back(' ');
          text += words[w];
        }
      }
    }
  }
  if (std::fclose(corpus) != 0) return std::perror("corpus.jsonl"), 1;

  FILE* queries = std::fopen((a.out + "/queries.jsonl").c_str(), "w");
  FILE* qrels = std::fopen((a.out + "/qrels/test.tsv").c_str(), "w");
  if (!queries || !qrels) return std::perror("queries"), 1;
  std::fprintf(qrels, "query-id\tcorpus-id\tscore\n");
  for (uint64_t q = 0; q < a.queries; ++q) {
    std::fprintf(queries, "{\"_id\": \"q%llu\", \"text\": \"%s\"}\n", static_cast<unsigned long long>(q),
                 query_text[q].c_str());
    std::fprintf(qrels, "q%llu\t%llu\t1\n", static_cast<unsigned long long>(q),
                 static_cast<unsigned long long>(target_of[q]));
  }
  if (std::fclose(queries) != 0 || std::fclose(qrels) != 0) return std::perror("queries"), 1;
  std::printf("docs=%llu words=%llu mean_words=%.1f vocab=%llu queries=%llu\n", static_cast<unsigned long long>(a.docs),
              static_cast<unsigned long long>(n_words), static_cast<double>(n_words) / a.docs,
              static_cast<unsigned long long>(a.vocab), static_cast<unsigned long long>(a.queries));
  return 0;
}
