// TREC run files: "qid Q0 docid rank score tag" per line.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quarry/status.h"

namespace quarry::eval {

struct RunEntry {
  std::string doc;
  double score;
};
using Run = std::map<std::string, std::vector<RunEntry>>;  // qid -> entries

// Errors name file and line. Entries keep file order; SortRun imposes trec_eval's.
Result<Run> LoadRun(const std::string& path);
// trec_eval's order: score descending, ties by docid descending (strcmp).
void SortRun(Run* run);
// Writes entries in their current order, ranks from 1, scores with 6 decimals (as Pyserini and
// Anserini print them).
Status WriteRun(const std::string& path, const Run& run, const std::string& tag);
// The score a run file round-trips to: `score` printed with 6 decimals and read back.
double RunFileScore(double score);

}  // namespace quarry::eval
