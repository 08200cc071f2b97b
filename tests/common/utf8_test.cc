#include "common/utf8.h"

#include <gtest/gtest.h>

namespace quarry {
namespace {

TEST(Utf8, FindsFirstInvalidSequence) {
  const struct {
    std::string text;
    size_t bad;
  } cases[] = {
      {"plain ascii", std::string::npos},
      {"caf\xc3\xa9 \xe2\x80\x99 \xf0\x9f\x98\x80", std::string::npos},  // é ’ 😀
      {"ab\xff", 2},                                                     // never valid
      {"ab\xc3", 2},                                                     // truncated
      {"\xc0\xaf", 0},                                                   // overlong '/'
      {"x\xed\xa0\x80", 1},                                              // UTF-16 surrogate
      {"\xf4\x90\x80\x80", 0},                                           // above U+10FFFF
      {"ok\xe2\x28\xa1", 2},                                             // bad continuation
  };
  for (const auto& c : cases) EXPECT_EQ(FindInvalidUtf8(c.text), c.bad) << c.text;
}

TEST(Utf8, TruncateKeepsWholeCodePoints) {
  EXPECT_EQ(TruncateUtf8("caf\xc3\xa9", 4), "caf");
  EXPECT_EQ(TruncateUtf8("caf\xc3\xa9", 5), "caf\xc3\xa9");
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
}

}  // namespace
}  // namespace quarry
