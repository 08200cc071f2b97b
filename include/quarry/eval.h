// Evaluation with trec_eval's conventions: judgements, runs, query files, metrics, paired tests.
//
//   auto qrels = quarry::eval::LoadQrels("qrels/test.tsv");
//   auto run = quarry::eval::LoadRun("bm25.trec");
//   auto metrics = quarry::eval::ParseMetrics("ndcg_cut.10,recall@100");
//   auto ev = quarry::eval::Evaluate(*qrels, *run, *metrics);   // ev.mean[0]: nDCG@10
//
// Conventions (trec_eval's):
//  - a run is ranked by score descending, ties by docid descending (SortRun);
//  - relevant means grade >= the relevance level (1 by default; trec_eval -l): it decides Recall, P,
//    MAP and MRR; nDCG's gains are the grades whatever the level. Unjudged documents are non-relevant;
//  - the queries evaluated are those of the qrels (trec_eval -c): one with no run entries, or with
//    no relevant document, scores 0;
//  - nDCG@k: gain = grade, discount log2(rank + 1), ideal from the qrels' grades (ndcg_cut);
//    Recall@k: relevant in top k / relevant; MRR@k: 1 / rank of the first relevant in the top k
//    (recip_rank: the whole ranking); P@k: relevant in top k / k; MAP (map@k): sum of precision at
//    each relevant retrieved (in the top k) divided by the number of relevant documents.
// Errors: Status/Result naming file and line; no exception escapes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quarry/status.h"

namespace quarry::eval {

// --- Relevance judgements: BEIR qrels TSV (query-id, corpus-id, score; header row) or TREC qrels
// (qid iter docid grade). Grades >= EvalOptions::relevance_level are relevant (default 1, as trec_eval's).
using Qrels = std::map<std::string, std::map<std::string, int>>;  // qid -> docid -> grade
Result<Qrels> LoadQrels(const std::string& path);

// --- TREC run files: "qid Q0 docid rank score tag" per line.
struct RunEntry {
  std::string doc;
  double score;
};
using Run = std::map<std::string, std::vector<RunEntry>>;  // qid -> entries
// Entries keep file order; SortRun imposes trec_eval's.
Result<Run> LoadRun(const std::string& path);
// trec_eval's order: score descending, ties by docid descending (strcmp).
void SortRun(Run* run);
// Writes entries in their current order, ranks from 1, scores with 6 decimals (as Pyserini and
// Anserini print them).
Status WriteRun(const std::string& path, const Run& run, const std::string& tag);
// Writes a run query by query, as WriteRun formats it, for runs made a batch at a time. The lines go
// to PATH.partial, renamed to PATH by Close: a run left unfinished (an error, a killed process) never
// looks complete. "-" and /dev/stdout write to stdout; other devices (/dev/...) and existing paths that
// are no regular file (a named pipe) are written directly.
class RunWriter {
 public:
  static Result<std::unique_ptr<RunWriter>> Create(const std::string& path, std::string tag);
  ~RunWriter();  // without Close: removes PATH.partial
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;
  // The query's entries, in their current order (ranks from 1).
  Status Write(const std::string& qid, const std::vector<RunEntry>& entries);
  Status Close();

 private:
  enum class Target { kRenamed, kDirect, kStdout };
  RunWriter(std::string path, std::string tag, FILE* file, Target target);
  std::string path_, tag_;
  FILE* file_;
  Target target_;
};
// The score a run file round-trips to: `score` printed with 6 decimals and read back.
double RunFileScore(double score);

// --- Query files: BEIR queries.jsonl ({"_id", "text"}), TSV (qid<TAB>text, MS MARCO queries.tsv) or
// TREC topics.
struct Query {
  std::string id, text;
};
// TREC topics files (<top> <num> <title> ...: the title is the query, as Pyserini reads them) are
// recognised by their first tag; otherwise the extension says (.jsonl/.json: BEIR; else TSV).
Result<std::vector<Query>> LoadQueries(const std::string& path);

// --- Metrics.
enum class MetricKind { kNdcg, kRecall, kMrr, kPrecision, kMap };

struct Metric {
  MetricKind kind;
  size_t k;          // cut-off; 0 = the whole ranking (map and recip_rank only)
  std::string name;  // as printed: "nDCG@10", "Recall@100", "MRR@10", "MRR", "P@10", "MAP", "MAP@100"
};

// Parses a comma-separated list, case-insensitive, in Quarry's or trec_eval's spelling:
// "ndcg@10", "recall@100", "mrr@10", "p@5", "map", "map@100"; "ndcg_cut.10" (or pytrec_eval's
// "ndcg_cut_10"), "recall.100", "P.5", "map_cut.100", "recip_rank"; as trec_eval's -m, "ndcg_cut.5,10"
// gives two cut-offs and a bare "ndcg_cut", "P" or "map_cut" trec_eval's nine (5 ... 1000).
Result<std::vector<Metric>> ParseMetrics(const std::string& spec);
// The name trec_eval prints for `m`: "ndcg_cut_10", "recall_100", "P_5", "map", "map_cut_100",
// "recip_rank" (MRR@k, which trec_eval lacks, prints as "recip_rank_cut_10").
std::string TrecEvalName(const Metric& m);

struct Evaluation {
  std::vector<Metric> metrics;
  std::vector<std::string> qids;              // evaluated queries, in qrels order
  std::vector<std::vector<double>> per_query; // [metric][query]
  std::vector<double> mean;                   // [metric]
};

struct EvalOptions {
  // Default: false. Drop run entries whose docid equals the qid (BEIR's ignore_identical_ids).
  bool ignore_self = false;
  // Default: 1. The lowest grade that counts as relevant for Recall, P, MAP and MRR (trec_eval -l;
  // MS MARCO's TREC DL tracks report recall and MAP at 2). nDCG is not affected. Must be >= 1.
  int relevance_level = 1;
};

// `run` need not be sorted; it is ranked with SortRun's order here.
Evaluation Evaluate(const Qrels& qrels, Run run, const std::vector<Metric>& metrics, const EvalOptions& options = {});

// --- Paired significance tests over per-query scores of two systems on the same queries.
struct PairedTest {
  double mean_a = 0, mean_b = 0, mean_diff = 0;  // diff = a - b
  double p_randomization = 1;  // two-sided, Fisher's paired randomisation (sign flips)
  double t = 0, p_t = 1;       // two-sided paired Student t-test
};

// `a` and `b` must have the same length. Randomisation: `n_permutations` seeded sign flips;
// p = (1 + #{|mean of flipped diffs| >= |observed|}) / (1 + n_permutations).
PairedTest ComparePaired(const std::vector<double>& a, const std::vector<double>& b,
                         uint64_t n_permutations = 10000, uint64_t seed = 42);

}  // namespace quarry::eval
