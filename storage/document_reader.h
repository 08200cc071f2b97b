// Streaming readers for corpus files: BEIR corpus.jsonl, MS MARCO collection.tsv, generic JSONL.
// One line at a time, in constant memory. A bad line yields an error naming file and line, after which
// reading may continue with the next line (the caller decides whether to stop or skip).
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "quarry/document.h"
#include "quarry/options.h"
#include "quarry/status.h"

namespace quarry {

class DocumentReader {
 public:
  static Result<std::unique_ptr<DocumentReader>> Open(const std::string& path, const ReaderOptions& options);

  // true: `doc` holds the next document; false: end of input. An error names path:line and what is
  // wrong with it; the reader has consumed that line. Blank lines are skipped.
  Result<bool> Next(Document* doc);

  const std::string& path() const { return path_; }
  uint64_t line_number() const { return line_number_; }  // 1-based number of the last line read
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t total_bytes() const { return total_bytes_; }
  // The raw text of the last line read (for skip reports).
  const std::string& last_line() const { return line_; }

 private:
  DocumentReader() = default;
  Status ParseJson(Document* doc);
  Status ParseTsv(Document* doc);
  Status Error(const std::string& what) const;

  std::string path_;
  ReaderOptions options_;
  std::ifstream in_;
  std::string line_;
  uint64_t line_number_ = 0, bytes_read_ = 0, total_bytes_ = 0;
};

}  // namespace quarry
