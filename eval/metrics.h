// Retrieval metrics with trec_eval's conventions:
//  - a run is ranked by score descending, ties by docid descending (SortRun);
//  - relevant means grade > 0; unjudged documents are non-relevant;
//  - the queries evaluated are those of the qrels (trec_eval -c): one with no run entries, or with
//    no relevant document, scores 0;
//  - nDCG@k: gain = grade, discount log2(rank + 1), ideal from the qrels' grades (ndcg_cut);
//    Recall@k: relevant in top k / relevant; MRR@k: 1 / rank of the first relevant in the top k;
//    P@k: relevant in top k / k; MAP (map@k): sum of precision at each relevant retrieved (in the top k)
//    divided by the number of relevant documents.
#pragma once

#include <string>
#include <vector>

#include "eval/qrels.h"
#include "eval/run.h"
#include "quarry/status.h"

namespace quarry::eval {

enum class MetricKind { kNdcg, kRecall, kMrr, kPrecision, kMap };

struct Metric {
  MetricKind kind;
  size_t k;          // cut-off; 0 = the whole ranking (map only)
  std::string name;  // as printed: "nDCG@10", "Recall@100", "MRR@10", "P@10", "MAP", "MAP@100"
};

// Parses "ndcg@10,recall@100,mrr@10,p@5,map,map@100" (case-insensitive).
Result<std::vector<Metric>> ParseMetrics(const std::string& spec);

double ScoreQuery(const Metric& metric, const std::vector<RunEntry>& ranked,
                  const std::map<std::string, int>& judged);

struct Evaluation {
  std::vector<Metric> metrics;
  std::vector<std::string> qids;              // evaluated queries, in qrels order
  std::vector<std::vector<double>> per_query; // [metric][query]
  std::vector<double> mean;                   // [metric]
};

struct EvalOptions {
  // Default: false. Drop run entries whose docid equals the qid (BEIR's ignore_identical_ids).
  bool ignore_self = false;
};

// `run` need not be sorted; it is ranked with SortRun's order here.
Evaluation Evaluate(const Qrels& qrels, Run run, const std::vector<Metric>& metrics, const EvalOptions& options = {});

}  // namespace quarry::eval
