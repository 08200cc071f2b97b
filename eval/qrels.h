// Relevance judgements: BEIR qrels TSV (query-id, corpus-id, score; header row) or TREC qrels
// (qid iter docid grade). Grades > 0 are relevant (trec_eval's default level 1).
#pragma once

#include <map>
#include <string>

#include "quarry/status.h"

namespace quarry::eval {

using Qrels = std::map<std::string, std::map<std::string, int>>;  // qid -> docid -> grade

// Errors name file and line.
Result<Qrels> LoadQrels(const std::string& path);

}  // namespace quarry::eval
