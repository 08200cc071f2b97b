#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace quarry::eval {

namespace {

// trec_eval's cut-off measures, with the cut-offs it uses when none are given (trec_eval 9.0.7).
struct TrecCutMeasure {
  const char* trec_name;  // as trec_eval spells it, lower-cased
  const char* name;       // Quarry's spelling
};
constexpr TrecCutMeasure kTrecCutMeasures[] = {{"ndcg_cut", "ndcg"}, {"recall", "recall"}, {"p", "p"}, {"map_cut", "map"}};
constexpr size_t kTrecDefaultCutoffs[] = {5, 10, 15, 20, 30, 100, 200, 500, 1000};

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<std::vector<Metric>> ParseMetrics(const std::string& spec) {
  std::vector<Metric> out;
  std::stringstream in(spec);
  std::string continued;  // after "ndcg_cut.5": Quarry's name of the measure a bare ",10" adds a cut-off to
  for (std::string item; std::getline(in, item, ',');) {
    std::string lower;
    for (char c : item) {
      if (!std::isspace(static_cast<unsigned char>(c))) lower.push_back(static_cast<char>(std::tolower(c)));
    }
    if (lower.empty()) continue;
    if (lower == "recip_rank") {  // trec_eval's reciprocal rank: the whole ranking
      out.push_back({MetricKind::kMrr, 0, "MRR"});
      continued.clear();
      continue;
    }
    if (!continued.empty() && AllDigits(lower)) {
      lower = continued + "@" + lower;  // trec_eval's "-m ndcg_cut.5,10": another cut-off of the same measure
    } else {
      continued.clear();
      // trec_eval spells a cut-off "ndcg_cut.10", "recall.100", "P.5", "map_cut.100" (pytrec_eval
      // "ndcg_cut_10"), rewritten to Quarry's "ndcg@10"; a bare "ndcg_cut" takes trec_eval's cut-offs.
      bool expanded = false;
      for (const auto& m : kTrecCutMeasures) {
        const std::string prefix = m.trec_name;
        if (lower == prefix) {
          for (size_t k : kTrecDefaultCutoffs) {
            QUARRY_ASSIGN_OR_RETURN(auto one, ParseMetrics(std::string(m.name) + "@" + std::to_string(k)));
            out.push_back(one[0]);
          }
          expanded = true;
          break;
        }
        if (lower.size() > prefix.size() + 1 && lower.starts_with(prefix) &&
            (lower[prefix.size()] == '.' || lower[prefix.size()] == '_')) {
          lower = std::string(m.name) + "@" + lower.substr(prefix.size() + 1);
          continued = m.name;
          break;
        }
      }
      if (expanded) continue;
    }
    const size_t at = lower.find('@');
    const std::string name = lower.substr(0, at);
    size_t k = 0;
    if (at != std::string::npos) {
      try {
        size_t used = 0;
        const long v = std::stol(lower.substr(at + 1), &used);
        if (used != lower.size() - at - 1 || v <= 0) throw std::invalid_argument("k");
        k = static_cast<size_t>(v);
      } catch (const std::exception&) {
        return Status::InvalidArgument("metric '" + item + "': cut-off must be a positive integer");
      }
    }
    const std::string ks = k ? "@" + std::to_string(k) : "";
    if (name == "ndcg" && k) out.push_back({MetricKind::kNdcg, k, "nDCG" + ks});
    else if (name == "recall" && k) out.push_back({MetricKind::kRecall, k, "Recall" + ks});
    else if (name == "mrr" && k) out.push_back({MetricKind::kMrr, k, "MRR" + ks});
    else if (name == "p" && k) out.push_back({MetricKind::kPrecision, k, "P" + ks});
    else if (name == "map") out.push_back({MetricKind::kMap, k, "MAP" + ks});
    else {
      return Status::InvalidArgument("unknown metric '" + item +
                                     "' (known: ndcg@k, recall@k, mrr@k, p@k, map, map@k, and trec_eval's "
                                     "ndcg_cut.k, recall.k, P.k, map_cut.k, recip_rank)");
    }
  }
  if (out.empty()) return Status::InvalidArgument("no metrics given");
  return out;
}

std::string TrecEvalName(const Metric& m) {
  const std::string k = std::to_string(m.k);
  switch (m.kind) {
    case MetricKind::kNdcg: return "ndcg_cut_" + k;
    case MetricKind::kRecall: return "recall_" + k;
    case MetricKind::kPrecision: return "P_" + k;
    case MetricKind::kMap: return m.k ? "map_cut_" + k : "map";
    case MetricKind::kMrr: return m.k ? "recip_rank_cut_" + k : "recip_rank";
  }
  return m.name;
}

double ScoreQuery(const Metric& metric, const std::vector<RunEntry>& ranked,
                  const std::map<std::string, int>& judged, int relevance_level) {
  auto grade = [&](const std::string& doc) {
    auto it = judged.find(doc);
    return it == judged.end() ? 0 : it->second;
  };
  auto relevant = [&](const std::string& doc) { return grade(doc) >= relevance_level; };
  size_t n_relevant = 0;
  for (const auto& [doc, g] : judged) n_relevant += g >= relevance_level;
  const size_t depth = metric.k ? std::min(metric.k, ranked.size()) : ranked.size();
  switch (metric.kind) {
    case MetricKind::kNdcg: {  // the gains are the grades, whatever the relevance level
      double dcg = 0;
      for (size_t i = 0; i < depth; ++i) {
        const int g = grade(ranked[i].doc);
        if (g > 0) dcg += g / std::log2(i + 2.0);
      }
      std::vector<int> ideal;
      for (const auto& [doc, g] : judged) {
        if (g > 0) ideal.push_back(g);
      }
      std::sort(ideal.rbegin(), ideal.rend());
      double idcg = 0;
      for (size_t i = 0; i < ideal.size() && i < metric.k; ++i) idcg += ideal[i] / std::log2(i + 2.0);
      return idcg > 0 ? dcg / idcg : 0;
    }
    case MetricKind::kRecall: {
      size_t hits = 0;
      for (size_t i = 0; i < depth; ++i) hits += relevant(ranked[i].doc);
      return n_relevant ? static_cast<double>(hits) / n_relevant : 0;
    }
    case MetricKind::kMrr:
      for (size_t i = 0; i < depth; ++i) {
        if (relevant(ranked[i].doc)) return 1.0 / (i + 1);
      }
      return 0;
    case MetricKind::kPrecision: {
      size_t hits = 0;
      for (size_t i = 0; i < depth; ++i) hits += relevant(ranked[i].doc);
      return static_cast<double>(hits) / metric.k;
    }
    case MetricKind::kMap: {
      double sum = 0;
      size_t hits = 0;
      for (size_t i = 0; i < depth; ++i) {
        if (relevant(ranked[i].doc)) sum += static_cast<double>(++hits) / (i + 1);
      }
      return n_relevant ? sum / n_relevant : 0;
    }
  }
  return 0;
}

Evaluation Evaluate(const Qrels& qrels, Run run, const std::vector<Metric>& metrics, const EvalOptions& options) {
  if (options.ignore_self) {
    for (auto& [qid, entries] : run) {
      std::erase_if(entries, [&qid = qid](const RunEntry& e) { return e.doc == qid; });
    }
  }
  SortRun(&run);
  Evaluation ev;
  ev.metrics = metrics;
  // Every judged query counts, as with trec_eval -c: one without a relevant document scores 0.
  for (const auto& [qid, judged] : qrels) ev.qids.push_back(qid);
  const std::vector<RunEntry> empty;
  ev.per_query.assign(metrics.size(), std::vector<double>(ev.qids.size(), 0));
  ev.mean.assign(metrics.size(), 0);
  for (size_t q = 0; q < ev.qids.size(); ++q) {
    auto it = run.find(ev.qids[q]);
    const auto& ranked = it == run.end() ? empty : it->second;
    const auto& judged = qrels.at(ev.qids[q]);
    for (size_t m = 0; m < metrics.size(); ++m) {
      ev.per_query[m][q] = ScoreQuery(metrics[m], ranked, judged, options.relevance_level);
      ev.mean[m] += ev.per_query[m][q];
    }
  }
  for (auto& v : ev.mean) v = ev.qids.empty() ? 0 : v / ev.qids.size();
  return ev;
}

}  // namespace quarry::eval
