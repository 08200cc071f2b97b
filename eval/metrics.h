// Internal to the eval module: one query's score under one metric (include/quarry/eval.h is the API).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quarry/eval.h"

namespace quarry::eval {

// `ranked` in trec_eval's order; `judged`: this query's judgements; grades >= `relevance_level` are
// relevant (nDCG's gains are every positive grade).
double ScoreQuery(const Metric& metric, const std::vector<RunEntry>& ranked,
                  const std::map<std::string, int>& judged, int relevance_level = 1);

}  // namespace quarry::eval
