#include "storage/store.h"

#include <gtest/gtest.h>

#include "common/coding.h"
#include "storage/document_codec.h"
#include "tests/test_util.h"

namespace quarry {
namespace {

TEST(DocumentCodec, RoundTripsEveryFieldIncludingUnicode) {
  const Document docs[] = {
      {"1", "", "", ""},
      {"doc-é", "Überschrift 標題", "text with \t tab, \n newline and 😀", R"({"k":[1,2]})"},
      {std::string("nul\0inside", 10), "t", std::string(100000, 'x'), "{}"},
  };
  for (const auto& d : docs) {
    Document out;
    ASSERT_TRUE(DecodeDocument(EncodeDocument(d), &out).ok());
    EXPECT_EQ(out, d);
  }
}

TEST(DocumentCodec, RejectsTruncatedAndUnknownVersions) {
  const std::string bytes = EncodeDocument({"id", "title", "text", ""});
  Document out;
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DecodeDocument(bytes.substr(0, n), &out).code(), StatusCode::kCorruption) << n;
  }
  std::string wrong = bytes;
  wrong[0] = 9;
  EXPECT_EQ(DecodeDocument(wrong, &out).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeDocument(bytes + "x", &out).code(), StatusCode::kCorruption);
}

TEST(Store, OpenRequiresCreateAndRecordsFormatVersion) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  auto missing = Store::Open(dir, {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("quarry init"), std::string::npos);
  {
    auto created = Store::Open(dir, {.create_if_missing = true, .extra_column_families = {"extra"}});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_NE((*created)->cf("extra"), nullptr);
    EXPECT_NE((*created)->cf(kCfDocs), nullptr);
  }
  auto reopened = Store::Open(dir, {.read_only = true});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto version = (*reopened)->Get(kCfMeta, kMetaFormatVersion);
  ASSERT_TRUE(version.ok() && version->has_value());
  std::string_view in = **version;
  uint32_t v;
  ASSERT_TRUE(GetVarint32(&in, &v));
  EXPECT_EQ(v, kFormatVersion);
  EXPECT_NE((*reopened)->cf("extra"), nullptr) << "existing families are opened even when not requested";
}

TEST(Store, RejectsAnotherFormatVersion) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  {
    auto s = Store::Open(dir, {.create_if_missing = true});
    ASSERT_TRUE(s.ok());
    std::string v;
    PutVarint32(&v, kFormatVersion + 1);
    rocksdb::WriteBatch b;
    b.Put((*s)->cf(kCfMeta), kMetaFormatVersion, v);
    ASSERT_TRUE((*s)->Write(&b, true).ok());
  }
  auto s = Store::Open(dir, {});
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("format version"), std::string::npos);
}

TEST(Store, ReadOnlyRefusesWrites) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  ASSERT_TRUE(Store::Open(dir, {.create_if_missing = true}).ok());
  auto s = Store::Open(dir, {.read_only = true});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch b;
  b.Put((*s)->cf(kCfMeta), "k", "v");
  EXPECT_EQ((*s)->Write(&b, false).code(), StatusCode::kFailedPrecondition);
}

TEST(Store, SecondWriterIsRefusedWithAClearError) {
  testing::TempDir tmp;
  const std::string dir = tmp / "c";
  auto first = Store::Open(dir, {.create_if_missing = true});
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(dir, {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(dir), std::string::npos) << second.status().ToString();
}

}  // namespace
}  // namespace quarry
