#include "index/lexical/segment.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>

#include "index/lexical/lexical_index.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

using PostingList = std::vector<std::pair<DocNum, uint32_t>>;

TEST(SegmentBlock, RoundTripsDeltasAndFrequenciesOfEveryWidth) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    const uint32_t n = 1 + rng() % kBlockSize;
    const int64_t prev = static_cast<int64_t>(rng() % 1000) - 1;  // -1: the first block of a base-0 segment
    const uint32_t max_gap = trial % 3 == 0 ? 1 : static_cast<uint32_t>(1u << (rng() % 26));
    DocNum docs[kBlockSize];
    uint32_t tfs[kBlockSize];
    int64_t d = prev;
    for (uint32_t i = 0; i < n; ++i) {
      d += 1 + rng() % max_gap;
      docs[i] = static_cast<DocNum>(d);
      tfs[i] = trial % 5 == 0 ? 1 : 1 + static_cast<uint32_t>(rng() % (trial % 7 == 0 ? 0xfffffffeu : 40));
    }
    std::string bytes;
    const size_t size = EncodeBlock(docs, tfs, n, prev, &bytes);
    ASSERT_EQ(size, bytes.size());
    bytes.append(8, '\0');  // the slack a segment's footer guarantees
    PostingsBlock out;
    ASSERT_TRUE(DecodeBlock(reinterpret_cast<const uint8_t*>(bytes.data()), size, prev, docs[n - 1] + 1, &out));
    ASSERT_EQ(out.n, n);
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_EQ(out.docs[i], docs[i]) << trial << " " << i;
      ASSERT_EQ(out.tfs[i], tfs[i]) << trial << " " << i;
    }
    // A block whose docs reach past the segment's end, or that is cut short, is refused.
    EXPECT_FALSE(DecodeBlock(reinterpret_cast<const uint8_t*>(bytes.data()), size, prev, docs[n - 1], &out));
    if (size > 3) {
      EXPECT_FALSE(DecodeBlock(reinterpret_cast<const uint8_t*>(bytes.data()), size - 1, prev, UINT32_MAX, &out));
    }
  }
  const uint8_t too_wide[16] = {0, 33, 0};
  PostingsBlock out;
  EXPECT_FALSE(DecodeBlock(too_wide, 3, -1, 100, &out));
}

struct Built {
  std::map<std::string, PostingList> postings;
  std::map<DocNum, std::pair<std::string, uint32_t>> docs;  // id, length
};

// A random segment over [base, base + n): documents at random doc numbers (holes between), terms
// with one or many blocks.
Built RandomSegment(DocNum base, uint32_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Built b;
  for (uint32_t i = 0; i < n; ++i) {
    if (rng() % 4 == 0) continue;  // a hole: a doc number the segment does not hold
    b.docs[base + i] = {"doc-" + std::to_string(base + i), static_cast<uint32_t>(rng() % 300)};
  }
  const int n_terms = 60;
  for (int t = 0; t < n_terms; ++t) {
    const std::string term = "t" + std::to_string(t * 7919 % 1000);
    const double p = t < 3 ? 0.9 : 1.0 / (1 + t);
    for (const auto& [doc, d] : b.docs) {
      if (std::uniform_real_distribution<>(0, 1)(rng) < p) b.postings[term].emplace_back(doc, 1 + rng() % 9);
    }
    if (b.postings[term].empty()) b.postings.erase(term);
  }
  return b;
}

std::string Write(const Built& b, DocNum base, uint32_t n, const std::string& path = "") {
  SegmentWriter w(base, n, Bm25Params{}, 100.0f);
  if (!path.empty()) {
    EXPECT_TRUE(w.StreamTo(path).ok());
  }
  for (const auto& [doc, d] : b.docs) w.SetDocument(doc, d.first, IntToByte4(d.second));
  for (const auto& [term, list] : b.postings) EXPECT_TRUE(w.AddTerm(term, list).ok());
  if (path.empty()) return w.FinishBuffer();
  auto written = w.Finish();
  EXPECT_TRUE(written.ok()) << written.status().ToString();
  return "";
}

void ExpectHolds(const Segment& s, const Built& b) {
  ASSERT_EQ(s.n_terms(), b.postings.size());
  uint64_t postings = 0;
  for (const auto& [term, list] : b.postings) {
    auto entry = s.Find(term);
    ASSERT_TRUE(entry.has_value()) << term;
    ASSERT_EQ(entry->df, list.size());
    auto cursor = Segment::Cursor::Open(s, *entry);
    ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
    PostingList decoded;
    PostingsBlock block;
    for (uint32_t blk = 0; blk < cursor->n_blocks(); ++blk) {
      ASSERT_TRUE(cursor->Decode(blk, &block));
      EXPECT_LE(block.docs[block.n - 1], cursor->BlockLastDoc(blk));
      for (uint32_t i = 0; i < block.n; ++i) decoded.emplace_back(block.docs[i], block.tfs[i]);
    }
    EXPECT_EQ(decoded, list) << term;
    postings += list.size();
  }
  EXPECT_FALSE(s.Find("absent").has_value());
  EXPECT_FALSE(s.Find("").has_value());
  EXPECT_EQ(s.n_postings(), postings);
  EXPECT_EQ(s.n_docs(), b.docs.size());
  for (DocNum d = s.base(); d < s.end(); ++d) {
    auto it = b.docs.find(d);
    EXPECT_EQ(s.ExternalId(d), it == b.docs.end() ? "" : it->second.first) << d;
    EXPECT_EQ(s.Norm(d), it == b.docs.end() ? 0 : IntToByte4(it->second.second)) << d;
  }
  EXPECT_EQ(s.ExternalId(s.end()), "");
  EXPECT_TRUE(s.VerifyAll().ok()) << s.VerifyAll().ToString();
}

TEST(Segment, HoldsWhatWasWrittenInMemoryAndOnDisk) {
  testing::TempDir tmp;
  for (DocNum base : {0u, 1000u, 4294960000u}) {
    const uint32_t n = 3000;
    const Built b = RandomSegment(base, n, base + 1);
    auto mem = Segment::FromBuffer(Write(b, base, n));
    ASSERT_TRUE(mem.ok()) << mem.status().ToString();
    ExpectHolds(**mem, b);
    const std::string path = tmp / ("s" + std::to_string(base));
    Write(b, base, n, path);
    auto file = Segment::Open(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ExpectHolds(**file, b);
    EXPECT_EQ((*file)->checksum(), (*mem)->checksum()) << "the same bytes, streamed or not";
    EXPECT_EQ((*file)->file_bytes(), std::filesystem::file_size(path));
  }
}

TEST(Segment, BlockBoundsCoverEveryPostingAtAnyAvgdl) {
  const Built b = RandomSegment(0, 2000, 9);
  auto s = Segment::FromBuffer(Write(b, 0, 2000));
  ASSERT_TRUE(s.ok());
  for (float avgdl : {20.0f, 99.0f, 100.0f, 101.0f, 400.0f}) {
    const Bm25Norms norms({}, avgdl);
    const float scale = (*s)->BoundScale({}, avgdl);
    for (const auto& [term, list] : b.postings) {
      auto cursor = Segment::Cursor::Open(**s, *(*s)->Find(term));
      ASSERT_TRUE(cursor.ok());
      PostingsBlock block;
      for (uint32_t blk = 0; blk < cursor->n_blocks(); ++blk) {
        ASSERT_TRUE(cursor->Decode(blk, &block));
        for (uint32_t i = 0; i < block.n; ++i) {
          const float sat = norms.Saturation(block.tfs[i], (*s)->Norm(block.docs[i]));
          EXPECT_LE(sat, cursor->BlockMaxSaturation(blk) * scale) << term << " avgdl " << avgdl;
        }
      }
    }
  }
  EXPECT_EQ((*s)->BoundScale({.k1 = 1.2f}, 100), std::numeric_limits<float>::infinity())
      << "bounds computed for other BM25 parameters are unusable";
}

TEST(Segment, DamageIsDetectedNotCrashedOn) {
  testing::TempDir tmp;
  const Built b = RandomSegment(0, 2000, 5);
  const std::string good = Write(b, 0, 2000);
  const std::string path = tmp / "seg";
  auto with = [&](const std::string& bytes) {
    testing::WriteFile(path, bytes);
    return Segment::Open(path);
  };
  EXPECT_EQ(with(good.substr(0, good.size() - 1)).status().code(), StatusCode::kCorruption) << "truncated";
  EXPECT_EQ(with(good.substr(0, 20)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(with("").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Segment::Open(tmp / "none").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Segment::Open(path, good.size() + 1).status().code(), StatusCode::kCorruption) << "size not as recorded";
  // Every single flipped byte: Open refuses the file, or the first read of the damaged term, or
  // VerifyAll. Nothing crashes, and no read past the file happens (ASan builds check that).
  std::mt19937 rng(1);
  int detected_by_open = 0, detected_later = 0;
  for (size_t at = 0; at < good.size(); at += 1 + rng() % 37) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    auto s = with(bad);
    if (!s.ok()) {
      ++detected_by_open;
      continue;
    }
    bool term_error = false;
    for (const auto& [term, list] : b.postings) {
      auto entry = (*s)->Find(term);
      if (!entry) continue;
      auto cursor = Segment::Cursor::Open(**s, *entry);
      if (!cursor.ok()) {
        EXPECT_EQ(cursor.status().code(), StatusCode::kCorruption);
        term_error = true;
      }
    }
    EXPECT_FALSE((*s)->VerifyAll().ok()) << "byte " << at << " flipped unnoticed";
    detected_later += term_error;
  }
  EXPECT_GT(detected_by_open, 0);
  EXPECT_GT(detected_later, 0);
}

TEST(Segment, SearchOfAnInMemoryIndexScoresLikeTheFormula) {
  // Two documents, one term each way: the scores follow bm25.h's formula exactly.
  auto index = LexicalIndex::Build({"a", "b", "c"}, {"apple pie", "apple apple", "banana"});
  ASSERT_TRUE(index.ok());
  auto hits = (*index)->Search({"appl"}, 10);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  const float avgdl = static_cast<float>(5.0 / 3.0);
  const Bm25Norms norms({}, avgdl);
  const float idf = Bm25Idf(3, 2);
  EXPECT_EQ((*hits)[0].doc, 1u);
  EXPECT_EQ((*hits)[0].score, Bm25Norms::Score(idf, norms.Saturation(2, IntToByte4(2))));
  EXPECT_EQ((*hits)[1].doc, 0u);
  EXPECT_EQ((*hits)[1].score, Bm25Norms::Score(idf, norms.Saturation(1, IntToByte4(2))));
}

}  // namespace
}  // namespace quarry
