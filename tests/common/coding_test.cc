#include "common/coding.h"

#include <gtest/gtest.h>

namespace quarry {
namespace {

TEST(Coding, VarintRoundTripAndLengths) {
  const struct {
    uint64_t value;
    size_t bytes;
  } cases[] = {{0, 1}, {127, 1}, {128, 2}, {16383, 2}, {16384, 3}, {UINT32_MAX, 5}, {UINT64_MAX, 10}};
  for (const auto& c : cases) {
    std::string buf;
    PutVarint64(&buf, c.value);
    EXPECT_EQ(buf.size(), c.bytes) << c.value;
    std::string_view in = buf;
    uint64_t out = 0;
    ASSERT_TRUE(GetVarint64(&in, &out));
    EXPECT_EQ(out, c.value);
    EXPECT_TRUE(in.empty());
  }
}

TEST(Coding, TruncatedInputIsRejected) {
  std::string buf;
  PutVarint32(&buf, 300);
  std::string_view in(buf.data(), 1);
  uint32_t v;
  EXPECT_FALSE(GetVarint32(&in, &v));
  std::string big;
  PutVarint64(&big, uint64_t{1} << 40);
  std::string_view in2 = big;
  EXPECT_FALSE(GetVarint32(&in2, &v)) << "a value over 32 bits must not decode as varint32";
  std::string_view prefixed("\x05" "abc", 4);
  std::string_view bytes;
  EXPECT_FALSE(GetLengthPrefixed(&prefixed, &bytes));
}

TEST(Coding, BigEndianSortsNumerically) {
  EXPECT_LT(EncodeFixed32BE(255), EncodeFixed32BE(256));
  EXPECT_LT(EncodeFixed32BE(65535), EncodeFixed32BE(16777216));
  EXPECT_EQ(EncodeFixed32BE(0x01020304), std::string("\x01\x02\x03\x04", 4));
  std::string buf;
  PutFixed64BE(&buf, 0x0102030405060708ULL);
  std::string_view in = buf;
  uint64_t v;
  ASSERT_TRUE(GetFixed64BE(&in, &v));
  EXPECT_EQ(v, 0x0102030405060708ULL);
}

}  // namespace
}  // namespace quarry
