// quarry index DIR: build derived indexes.
//   --encoder MODEL_DIR [--faiss F]   embed every document and build the dense (FAISS) index
//   --faiss F (without --encoder)     rebuild the dense index over the stored (imported) vectors
//   --rerank-cache MODEL_DIR          the decoupled BlockRank document caches
// quarry import-vectors DIR FILE.npy --ids IDS: store vectors computed elsewhere.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "quarry/npy.h"
#include "quarry/collection.h"
#include "tools/quarry/commands.h"
#include "tools/quarry/mode_flags.h"
#include "tools/quarry/rerank_flags.h"

namespace quarry::cli {

namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct IndexArgs {
  std::string dir;
  RerankFlags rerank;
  bool half = false;
  std::string faiss;  // empty: not given
  bool l2 = false;
  bool no_normalize = false, normalize = false;
  // Given only when the flag is: unset prefixes follow the model's prompts.
  std::string query_prefix, document_prefix;
  CLI::Option *query_prefix_given = nullptr, *document_prefix_given = nullptr;
  DenseIndexOptions dense;
  double tune_recall = 0;
  size_t tune_k = 10, tune_queries = 500;
  bool json = false;
};

// Each step adds what it did to `out` (printed by --json) and prints a line unless --json.
int BuildDense(const IndexArgs& a, Collection* c, nlohmann::json* out) {
  DenseIndexOptions o = a.dense;
  if (!a.faiss.empty()) o.factory = a.faiss;
  o.inner_product = !a.l2;
  if (a.query_prefix_given->count()) o.query_prefix = a.query_prefix;
  if (a.document_prefix_given->count()) o.document_prefix = a.document_prefix;
  if (a.no_normalize) o.normalize = false;
  if (a.normalize) o.normalize = true;
  const auto start = std::chrono::steady_clock::now();
  const bool tty = isatty(STDERR_FILENO);
  auto n = c->dense().Build(o, [&](uint64_t done, uint64_t total) {
    if (tty) std::fprintf(stderr, "\rembedded %llu / %llu documents", static_cast<unsigned long long>(done),
                          static_cast<unsigned long long>(total));
  });
  if (tty && !o.encoder.empty()) std::fprintf(stderr, "\n");
  if (!n.ok()) return Fail(n.status());
  auto info = c->dense().Info();
  if (!info.ok()) return Fail(info.status());
  const double seconds = SecondsSince(start);
  (*out)["dense"] = {{"vectors", *n},         {"dim", info->dim},         {"factory", info->factory},
                     {"metric", info->metric}, {"encoder", info->encoder}, {"file_bytes", info->file_bytes},
                     {"seconds", seconds}};
  if (a.json) return kExitOk;
  std::printf("dense index: %llu vectors of dim %zu, %s (%s), a %llu-byte index file in %s, built in %.2f s\n",
              static_cast<unsigned long long>(*n), info->dim, info->factory.c_str(), info->metric.c_str(),
              static_cast<unsigned long long>(info->file_bytes), a.dir.c_str(), seconds);
  return kExitOk;
}

int Tune(const IndexArgs& a, Collection* c, nlohmann::json* out) {
  auto t = c->dense().Tune(a.tune_recall, a.tune_k, a.tune_queries);
  if (!t.ok()) return Fail(t.status());
  nlohmann::json tried = nlohmann::json::array();
  for (const auto& [value, recall] : t->tried) tried.push_back({{"value", value}, {"recall", recall}});
  (*out)["tuning"] = {{"knob", t->knob},     {"chosen", t->chosen},        {"recall", t->recall},
                      {"recall_low", t->recall_low}, {"reached", t->reached}, {"target", a.tune_recall},
                      {"k", a.tune_k},         {"tried", tried}};
  if (a.json) return kExitOk;
  std::printf("auto-tuning %s for recall@%zu >= %.3f on %zu sample document vectors:\n", t->knob.c_str(), a.tune_k,
              a.tune_recall, a.tune_queries);
  for (const auto& [value, recall] : t->tried) std::printf("  %s=%-6zu recall %.4f\n", t->knob.c_str(), value, recall);
  std::printf("%s %s=%zu (recall %.4f, 95%% lower bound %.4f), recorded with the index\n",
              t->reached ? "chose" : "target not reached; set", t->knob.c_str(), t->chosen, t->recall, t->recall_low);
  return kExitOk;
}

int Index(const IndexArgs& a) {
  const bool dense = !a.dense.encoder.empty() || !a.faiss.empty();
  if (a.rerank.model.empty() && !dense && a.tune_recall <= 0) {
    std::fprintf(stderr, "quarry index: give --encoder MODEL_DIR and/or --faiss FACTORY, or --rerank-cache MODEL_DIR\n");
    return kExitUsage;
  }
  auto c = Collection::Open(a.dir, {.create_if_missing = false});
  if (!c.ok()) return Fail(c.status());
  nlohmann::json out = nlohmann::json::object();
  if (dense) {
    if (int rc = BuildDense(a, c->get(), &out); rc != kExitOk) return rc;
  }
  if (a.tune_recall > 0) {
    if (int rc = Tune(a, c->get(), &out); rc != kExitOk) return rc;
  }
  if (!a.rerank.model.empty()) {
    const auto start = std::chrono::steady_clock::now();
    const bool tty = isatty(STDERR_FILENO);
    auto n = (*c)->rerank().BuildCache(a.rerank.model, a.rerank.options, a.half, [&](uint64_t done, uint64_t total) {
      if (!tty) return;
      const double elapsed = SecondsSince(start);
      std::fprintf(stderr, "\rencoded %llu / %llu document blocks, %.1f s left   ", static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total), done ? elapsed * double(total - std::min(done, total)) / done : 0.0);
    });
    if (tty) std::fprintf(stderr, "\n");
    if (!n.ok()) return Fail(n.status());
    const double seconds = SecondsSince(start);
    out["rerank_cache"] = {{"documents", *n}, {"scoring_layer", a.rerank.options.scoring_layer},
                           {"precision", a.half ? "f16" : "f32"}, {"seconds", seconds}};
    if (!a.json) {
      std::printf("cached %llu document blocks (scoring layer %d, %s) in %.2f s\n", static_cast<unsigned long long>(*n),
                  a.rerank.options.scoring_layer, a.half ? "f16" : "f32", seconds);
    }
  }
  if (a.json) std::printf("%s\n", DumpJson(out).c_str());
  return kExitOk;
}

struct ImportArgs {
  std::string dir, npy, ids;
  bool queries = false, json = false;
};

int Import(const ImportArgs& a) {
  auto m = ReadNpy(a.npy);
  if (!m.ok()) return Fail(m.status());
  std::ifstream in(a.ids);
  if (!in) return Fail(Status::NotFound(a.ids + ": cannot open"));
  std::vector<std::string> ids;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Fail(Status::InvalidArgument(a.ids + ":" + std::to_string(n) + ": empty id"));
    ids.push_back(line);
  }
  if (ids.size() != m->rows) {
    return Fail(Status::InvalidArgument(a.ids + ": " + std::to_string(ids.size()) + " ids for " +
                                        std::to_string(m->rows) + " rows of " + a.npy));
  }
  auto c = Collection::Open(a.dir, {.create_if_missing = false});
  if (!c.ok()) return Fail(c.status());
  if (Status s = (*c)->dense().PutVectors(ids, m->data, m->cols, a.queries ? VectorTable::kQueries : VectorTable::kDocuments);
      !s.ok()) {
    return Fail(s);
  }
  if (a.json) {
    std::printf("%s\n", DumpJson({{"stored", ids.size()}, {"dim", m->cols}, {"table", a.queries ? "queries" : "documents"}}).c_str());
    return kExitOk;
  }
  std::printf("stored %zu %s vectors of dim %zu; run `quarry index %s --faiss FACTORY` to index them\n", ids.size(),
              a.queries ? "query" : "document", m->cols, a.dir.c_str());
  return kExitOk;
}

}  // namespace

void AddIndexCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  {
    auto a = std::make_shared<IndexArgs>();
    auto* cmd = app.add_subcommand(
        "index",
        "Build derived indexes.\n"
        "  --encoder MODEL_DIR [--faiss F]  embed every document with a BERT-family dual encoder and index the\n"
        "                                   vectors with FAISS (the vectors are stored: upserts embed new documents)\n"
        "  --faiss F                        (re)build the dense index over the stored vectors (e.g. imported)\n"
        "  --tune-recall R                  choose nprobe/efSearch for recall@k >= R against exact search\n"
        "  --rerank-cache MODEL_DIR         encode every document's BlockRank block once (decoupled mode)");
    cmd->add_option("DIR", a->dir, "collection directory")->required();
    cmd->add_option("--encoder", a->dense.encoder, "dual encoder checkpoint directory (BERT family)");
    cmd->add_option("--faiss", a->faiss,
                    "FAISS factory string (Flat, HNSW32, IVF1024,Flat, IVF4096,PQ32, IVF1024,SQ8 ...), or\n"
                    "SOAR<lists>[,lambda=<x>] for IVF with SOAR spilling");
    cmd->add_flag("--l2", a->l2, "squared L2 distance instead of inner product");
    a->query_prefix_given = cmd->add_option("--query-prefix", a->query_prefix,
                                            "text prepended to queries (default: the model's \"query\" prompt, else none)");
    a->document_prefix_given = cmd->add_option(
        "--document-prefix", a->document_prefix, "text prepended to documents (default: the model's \"document\" prompt, else none)");
    cmd->add_option("--pooling", a->dense.pooling, "cls, mean or last (default: the model's Pooling module, else cls for BERT, last for Llama-family)")
        ->check(CLI::IsMember({"cls", "mean", "last"}));
    auto* normalize =
        cmd->add_flag("--normalize", a->normalize, "L2-normalise the embeddings (default: as the model's modules.json says)");
    cmd->add_flag("--no-normalize", a->no_normalize, "keep the encoder's raw embeddings (no L2 normalisation)")
        ->excludes(normalize);
    cmd->add_option("--max-length", a->dense.max_length,
                    "tokens per text (default: the model's max_seq_length, else 512)");
    AddSearchKnobFlags(cmd, &a->dense.nprobe, &a->dense.ef_search);
    cmd->add_option("--train-sample", a->dense.train_sample, "vectors that train IVF/PQ")->capture_default_str();
    cmd->add_option("--tune-recall", a->tune_recall,
                    "auto-tune nprobe/efSearch: the cheapest setting with this recall@k against exact search")
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--tune-k", a->tune_k, "k of the tuned recall@k")->capture_default_str();
    cmd->add_option("--tune-queries", a->tune_queries, "stored document vectors used as tuning queries")->capture_default_str();
    AddRerankFlags(cmd, &a->rerank, "--rerank-cache");
    cmd->add_flag("--half-precision", a->half, "store the BlockRank caches as f16 (half the bytes; scores within ~2e-4)");
    cmd->add_flag("--json", a->json, "print one JSON object of what was built");
    commands->emplace_back(cmd, [a] { return Index(*a); });
  }
  {
    auto a = std::make_shared<ImportArgs>();
    auto* cmd = app.add_subcommand(
        "import-vectors",
        "Store vectors computed elsewhere (a float32/float64 .npy of shape [n, dim]) for the documents listed in IDS\n"
        "(one id per line, in row order); then `quarry index DIR --faiss F` indexes them.");
    cmd->add_option("DIR", a->dir, "collection directory")->required();
    cmd->add_option("NPY", a->npy, ".npy file")->required();
    cmd->add_option("--ids", a->ids, "file of document ids, one per row")->required();
    cmd->add_flag("--queries", a->queries, "store them as query-tower vectors (documents that are also queries)");
    cmd->add_flag("--json", a->json, "print JSON");
    commands->emplace_back(cmd, [a] { return Import(*a); });
  }
}

}  // namespace quarry::cli
