// BM25 exactly as Lucene 8's BM25Similarity computes it, so that scores (and therefore ties) agree
// with Lucene/Pyserini bit for bit:
//   idf(t)   = (float) ln(1 + (docCount - df + 0.5) / (df + 0.5))             (in double, then float)
//   norm(d)  = SmallFloat.intToByte4(number of terms of d)                   (one lossy byte per doc)
//   cache[n] = 1f / (k1 * ((1 - b) + b * byte4ToInt(n) / avgdl))             (float arithmetic)
//   s(t, d)  = w - w / (1f + tf * cache[norm(d)]),  w = boost * idf(t)        (float arithmetic)
//   score(d) = (float) sum over query terms of s(t, d)                        (summed in double)
// avgdl = (float) (sumTotalTermFreq / (double) docCount); docCount counts documents with >= 1 term.
#pragma once

#include <array>
#include <cstdint>

namespace quarry {

struct Bm25Params {
  // Default: 0.9 (Pyserini's BEIR setting).
  float k1 = 0.9f;
  // Default: 0.4.
  float b = 0.4f;
};

// org.apache.lucene.util.SmallFloat: 4-bit-mantissa byte encoding of a non-negative int.
uint8_t IntToByte4(uint32_t i);
uint32_t Byte4ToInt(uint8_t b);

float Bm25Idf(uint64_t doc_count, uint64_t doc_freq);

class Bm25Norms {
 public:
  Bm25Norms(Bm25Params params, float avgdl);
  // tf * cache[norm]: the monotone quantity that orders a term's postings by score.
  float Saturation(uint32_t tf, uint8_t norm) const { return static_cast<float>(tf) * inverse_[norm]; }
  static float Score(float weight, float saturation) { return weight - weight / (1.0f + saturation); }
  float avgdl() const { return avgdl_; }

 private:
  float avgdl_;
  std::array<float, 256> inverse_;
};

}  // namespace quarry
