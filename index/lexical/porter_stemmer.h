// The Porter stemmer exactly as Lucene's PorterStemFilter runs it: Martin Porter's reference ANSI C
// implementation, which departs from the published 1980 algorithm in step 2 ("bli" -> "ble" instead of
// "abli" -> "able", and "logi" -> "log"), and which leaves words of at most two letters alone.
// Snowball's "porter" (libstemmer) follows the published algorithm, so it disagrees with Lucene on
// words such as "assembly", "technology" and "possibly" (961 of SciFact's 5,183 documents); see
// docs/design.md. Letters are UTF-16 units, as in Lucene; any non-ASCII unit is a consonant.
#pragma once

#include <string>

namespace quarry {

class PorterStemmer {
 public:
  // Stems the lower-cased UTF-8 `word` in place.
  void Stem(std::string* word);

 private:
  bool Cons(int i) const;
  int M() const;
  bool VowelInStem() const;
  bool DoubleC(int i) const;
  bool Cvc(int i) const;
  bool Ends(std::u16string_view s);
  void SetTo(std::u16string_view s);
  void R(std::u16string_view s);
  void Step1();
  void Step2();
  void Step3();
  void Step4();
  void Step5();
  void Step6();

  std::u16string b_;
  int k_ = 0, j_ = 0;  // k_: last letter of the current word; j_: set by Ends (k0 is always 0)
};

}  // namespace quarry
