#include "storage/document_reader.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace quarry {
namespace {

std::vector<Document> ReadAll(const std::string& path, const ReaderOptions& options, Status* error) {
  std::vector<Document> docs;
  auto r = DocumentReader::Open(path, options);
  if (!r.ok()) {
    *error = r.status();
    return docs;
  }
  for (;;) {
    Document d;
    auto next = (*r)->Next(&d);
    if (!next.ok()) {
      *error = next.status();
      return docs;
    }
    if (!*next) return docs;
    docs.push_back(d);
  }
}

TEST(DocumentReader, ReadsBeirLines) {
  testing::TempDir tmp;
  const std::string path = tmp / "corpus.jsonl";
  testing::WriteFile(path,
                     "{\"_id\": \"d1\", \"title\": \"T\\u00e9\", \"text\": \"body\", \"metadata\": {\"y\": 1}}\n"
                     "\n"
                     "{\"_id\": 42, \"text\": \"no title\"}\r\n");
  Status error;
  auto docs = ReadAll(path, {}, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], (Document{"d1", "T\xc3\xa9", "body", "{\"y\":1}"}));
  EXPECT_EQ(docs[1], (Document{"42", "", "no title", ""}));
}

TEST(DocumentReader, ReadsMsMarcoAndGenericJsonl) {
  testing::TempDir tmp;
  testing::WriteFile(tmp / "c.tsv", "7\tpassage with\ttab\n8\t\n");
  Status error;
  auto docs = ReadAll(tmp / "c.tsv", {.format = InputFormat::kMsMarco}, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], (Document{"7", "", "passage with\ttab", ""}));
  EXPECT_EQ(docs[1], (Document{"8", "", "", ""}));

  testing::WriteFile(tmp / "g.jsonl", "{\"docid\": \"a\", \"headline\": \"H\", \"body\": \"B\", \"extra\": 1}\n");
  ReaderOptions o{.format = InputFormat::kJsonl, .id_field = "docid", .title_field = "headline", .text_field = "body"};
  docs = ReadAll(tmp / "g.jsonl", o, &error);
  ASSERT_TRUE(error.ok()) << error.ToString();
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], (Document{"a", "H", "B", ""}));
}

TEST(DocumentReader, BadLinesNameFileLineAndProblem) {
  const struct {
    InputFormat format;
    std::string bad_line;
    std::string expect;  // in the message
  } cases[] = {
      {InputFormat::kBeir, "{\"_id\": \"x\", \"text\": ", "malformed JSON"},
      {InputFormat::kBeir, "[1, 2]", "expected a JSON object"},
      {InputFormat::kBeir, "{\"text\": \"t\"}", "missing id field \"_id\""},
      {InputFormat::kBeir, "{\"_id\": \"\", \"text\": \"t\"}", "empty document id"},
      {InputFormat::kBeir, "{\"_id\": [1], \"text\": \"t\"}", "is not a string"},
      {InputFormat::kBeir, "{\"_id\": \"x\"}", "missing text field \"text\""},
      {InputFormat::kBeir, "{\"_id\": \"x\", \"text\": 5}", "field \"text\" is not a string"},
      {InputFormat::kBeir, "{\"_id\": \"x\", \"text\": \"bad \xff byte\"}", "invalid UTF-8 at byte"},
      {InputFormat::kBeir, "{\"_id\": \"x\", \"text\": \"" + std::string(300, 'a') + "\"}", "over the limit"},
      {InputFormat::kMsMarco, "no tab here", "expected 'pid<TAB>text'"},
      {InputFormat::kMsMarco, "\ttext", "empty document id"},
  };
  for (const auto& c : cases) {
    testing::TempDir tmp;
    const std::string path = tmp / "in.txt";
    const std::string good =
        c.format == InputFormat::kMsMarco ? "1\tgood\n" : "{\"_id\": \"1\", \"text\": \"good\"}\n";
    testing::WriteFile(path, good + good + c.bad_line + "\n" + good);
    ReaderOptions o{.format = c.format, .max_doc_bytes = 200};
    auto r = DocumentReader::Open(path, o);
    ASSERT_TRUE(r.ok());
    Document d;
    ASSERT_TRUE(*(*r)->Next(&d));
    ASSERT_TRUE(*(*r)->Next(&d));
    auto bad = (*r)->Next(&d);
    ASSERT_FALSE(bad.ok()) << c.bad_line;
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find(path + ":3: "), std::string::npos) << bad.status().message();
    EXPECT_NE(bad.status().message().find(c.expect), std::string::npos) << bad.status().message();
    auto after = (*r)->Next(&d);  // reading goes on after a bad line
    ASSERT_TRUE(after.ok() && *after);
    EXPECT_EQ((*r)->line_number(), 4u);
  }
}

TEST(DocumentReader, MissingFileIsNotFound) {
  auto r = DocumentReader::Open("/nonexistent/corpus.jsonl", {});
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/corpus.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace quarry
