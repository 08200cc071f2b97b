// Query files: BEIR queries.jsonl ({"_id", "text"}) or TSV (qid<TAB>text, MS MARCO queries.tsv).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "quarry/status.h"

namespace quarry::eval {

struct Query {
  std::string id, text;
};

// The format follows the extension (.jsonl/.json: BEIR; otherwise TSV). Errors name file and line.
Result<std::vector<Query>> LoadQueries(const std::string& path);

}  // namespace quarry::eval
