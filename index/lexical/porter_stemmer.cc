#include "index/lexical/porter_stemmer.h"

#include <unicode/utf16.h>
#include <unicode/utf8.h>

namespace quarry {

bool PorterStemmer::Cons(int i) const {
  switch (b_[i]) {
    case u'a': case u'e': case u'i': case u'o': case u'u': return false;
    case u'y': return i == 0 ? true : !Cons(i - 1);
    default: return true;
  }
}

// The number of consonant-vowel sequences in b_[0..j_]: [C](VC){m}[V].
int PorterStemmer::M() const {
  int n = 0, i = 0;
  for (;; ++i) {
    if (i > j_) return n;
    if (!Cons(i)) break;
  }
  ++i;
  for (;;) {
    for (;; ++i) {
      if (i > j_) return n;
      if (Cons(i)) break;
    }
    ++i;
    ++n;
    for (;; ++i) {
      if (i > j_) return n;
      if (!Cons(i)) break;
    }
    ++i;
  }
}

bool PorterStemmer::VowelInStem() const {
  for (int i = 0; i <= j_; ++i) {
    if (!Cons(i)) return true;
  }
  return false;
}

bool PorterStemmer::DoubleC(int i) const { return i >= 1 && b_[i] == b_[i - 1] && Cons(i); }

bool PorterStemmer::Cvc(int i) const {
  if (i < 2 || !Cons(i) || Cons(i - 1) || !Cons(i - 2)) return false;
  const char16_t ch = b_[i];
  return !(ch == u'w' || ch == u'x' || ch == u'y');
}

bool PorterStemmer::Ends(std::u16string_view s) {
  const int l = static_cast<int>(s.size());
  const int o = k_ - l + 1;
  if (o < 0) return false;
  if (std::u16string_view(b_).substr(o, l) != s) return false;
  j_ = k_ - l;
  return true;
}

void PorterStemmer::SetTo(std::u16string_view s) {
  b_.resize(j_ + 1);
  b_.append(s);
  k_ = j_ + static_cast<int>(s.size());
}

void PorterStemmer::R(std::u16string_view s) {
  if (M() > 0) SetTo(s);
}

// Plurals and -ed / -ing.
void PorterStemmer::Step1() {
  if (b_[k_] == u's') {
    if (Ends(u"sses")) k_ -= 2;
    else if (Ends(u"ies")) SetTo(u"i");
    else if (b_[k_ - 1] != u's') --k_;
  }
  if (Ends(u"eed")) {
    if (M() > 0) --k_;
  } else if ((Ends(u"ed") || Ends(u"ing")) && VowelInStem()) {
    k_ = j_;
    if (Ends(u"at")) SetTo(u"ate");
    else if (Ends(u"bl")) SetTo(u"ble");
    else if (Ends(u"iz")) SetTo(u"ize");
    else if (DoubleC(k_)) {
      --k_;
      const char16_t ch = b_[k_];
      if (ch == u'l' || ch == u's' || ch == u'z') ++k_;
    } else if (M() == 1 && Cvc(k_)) {
      SetTo(u"e");
    }
  }
}

// Terminal y -> i when there is another vowel in the stem.
void PorterStemmer::Step2() {
  if (Ends(u"y") && VowelInStem()) b_[k_] = u'i';
}

// Double suffixes to single ones (with the reference implementation's departures).
void PorterStemmer::Step3() {
  if (k_ == 0) return;
  switch (b_[k_ - 1]) {
    case u'a':
      if (Ends(u"ational")) { R(u"ate"); break; }
      if (Ends(u"tional")) { R(u"tion"); break; }
      break;
    case u'c':
      if (Ends(u"enci")) { R(u"ence"); break; }
      if (Ends(u"anci")) { R(u"ance"); break; }
      break;
    case u'e':
      if (Ends(u"izer")) { R(u"ize"); break; }
      break;
    case u'l':
      if (Ends(u"bli")) { R(u"ble"); break; }  // departure: the published rule is abli -> able
      if (Ends(u"alli")) { R(u"al"); break; }
      if (Ends(u"entli")) { R(u"ent"); break; }
      if (Ends(u"eli")) { R(u"e"); break; }
      if (Ends(u"ousli")) { R(u"ous"); break; }
      break;
    case u'o':
      if (Ends(u"ization")) { R(u"ize"); break; }
      if (Ends(u"ation")) { R(u"ate"); break; }
      if (Ends(u"ator")) { R(u"ate"); break; }
      break;
    case u's':
      if (Ends(u"alism")) { R(u"al"); break; }
      if (Ends(u"iveness")) { R(u"ive"); break; }
      if (Ends(u"fulness")) { R(u"ful"); break; }
      if (Ends(u"ousness")) { R(u"ous"); break; }
      break;
    case u't':
      if (Ends(u"aliti")) { R(u"al"); break; }
      if (Ends(u"iviti")) { R(u"ive"); break; }
      if (Ends(u"biliti")) { R(u"ble"); break; }
      break;
    case u'g':
      if (Ends(u"logi")) { R(u"log"); break; }  // departure: not in the published algorithm
      break;
    default:
      break;
  }
}

// -ic-, -full, -ness etc.
void PorterStemmer::Step4() {
  switch (b_[k_]) {
    case u'e':
      if (Ends(u"icate")) { R(u"ic"); break; }
      if (Ends(u"ative")) { R(u""); break; }
      if (Ends(u"alize")) { R(u"al"); break; }
      break;
    case u'i':
      if (Ends(u"iciti")) { R(u"ic"); break; }
      break;
    case u'l':
      if (Ends(u"ical")) { R(u"ic"); break; }
      if (Ends(u"ful")) { R(u""); break; }
      break;
    case u's':
      if (Ends(u"ness")) { R(u""); break; }
      break;
    default:
      break;
  }
}

// -ant, -ence etc. in context <c>vcvc<v>.
void PorterStemmer::Step5() {
  if (k_ == 0) return;
  switch (b_[k_ - 1]) {
    case u'a':
      if (Ends(u"al")) break;
      return;
    case u'c':
      if (Ends(u"ance")) break;
      if (Ends(u"ence")) break;
      return;
    case u'e':
      if (Ends(u"er")) break;
      return;
    case u'i':
      if (Ends(u"ic")) break;
      return;
    case u'l':
      if (Ends(u"able")) break;
      if (Ends(u"ible")) break;
      return;
    case u'n':
      if (Ends(u"ant")) break;
      if (Ends(u"ement")) break;
      if (Ends(u"ment")) break;
      if (Ends(u"ent")) break;
      return;
    case u'o':
      if (Ends(u"ion") && j_ >= 0 && (b_[j_] == u's' || b_[j_] == u't')) break;
      if (Ends(u"ou")) break;
      return;
    case u's':
      if (Ends(u"ism")) break;
      return;
    case u't':
      if (Ends(u"ate")) break;
      if (Ends(u"iti")) break;
      return;
    case u'u':
      if (Ends(u"ous")) break;
      return;
    case u'v':
      if (Ends(u"ive")) break;
      return;
    case u'z':
      if (Ends(u"ize")) break;
      return;
    default:
      return;
  }
  if (M() > 1) k_ = j_;
}

// A final -e, and -ll -> -l, when the measure allows.
void PorterStemmer::Step6() {
  j_ = k_;
  if (b_[k_] == u'e') {
    const int a = M();
    if (a > 1 || (a == 1 && !Cvc(k_ - 1))) --k_;
  }
  if (b_[k_] == u'l' && DoubleC(k_) && M() > 1) --k_;
}

void PorterStemmer::Stem(std::string* word) {
  // UTF-8 -> UTF-16 (the input is valid UTF-8: it came through the tokenizer).
  b_.clear();
  const auto* p = reinterpret_cast<const uint8_t*>(word->data());
  const auto n = static_cast<int32_t>(word->size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c <= 0xffff) {
      b_.push_back(static_cast<char16_t>(c));
    } else {
      b_.push_back(U16_LEAD(c));
      b_.push_back(U16_TRAIL(c));
    }
  }
  k_ = static_cast<int>(b_.size()) - 1;
  if (k_ <= 1) return;  // words of one or two letters are left alone
  Step1();
  Step2();
  Step3();
  Step4();
  Step5();
  Step6();
  b_.resize(k_ + 1);
  word->clear();
  for (int32_t i = 0, m = static_cast<int32_t>(b_.size()); i < m;) {
    UChar32 c;
    U16_NEXT(b_.data(), i, m, c);
    uint8_t buf[4];
    int32_t len = 0;
    [[maybe_unused]] UBool err = false;
    U8_APPEND(buf, len, 4, c, err);
    word->append(reinterpret_cast<const char*>(buf), len);
  }
}

}  // namespace quarry
