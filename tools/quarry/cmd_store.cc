// quarry init | ingest | get | delete | stats | check
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "quarry/collection.h"
#include "common/json.h"
#include "tools/quarry/commands.h"

namespace quarry::cli {

namespace {

Result<std::unique_ptr<Collection>> OpenExisting(const std::string& dir, bool read_only) {
  return Collection::Open(dir, {.create_if_missing = false, .read_only = read_only});
}

nlohmann::json DocumentJson(const Document& d) {
  nlohmann::json j = {{"id", d.id}, {"title", d.title}, {"text", d.text}};
  if (!d.metadata.empty()) {
    j["metadata"] = nlohmann::json::parse(d.metadata, nullptr, /*allow_exceptions=*/false);
  }
  return j;
}

}  // namespace

void AddStoreCommands(CLI::App& app, std::vector<std::pair<CLI::App*, Action>>* commands) {
  {
    auto* cmd = app.add_subcommand("init", "Create an empty collection in DIR");
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_flag("--json", *json, "print JSON");
    commands->emplace_back(cmd, [dir, json] {
      if (std::filesystem::exists(*dir + "/CURRENT")) return Fail(Status::AlreadyExists(*dir + ": already holds a collection"));
      auto c = Collection::Open(*dir, {.create_if_missing = true});
      if (!c.ok()) return Fail(c.status());
      if (*json) std::printf("%s\n", DumpJson({{"created", *dir}}).c_str());
      else std::printf("created collection %s\n", dir->c_str());
      return kExitOk;
    });
  }
  {
    struct Args {
      std::string dir, beir, msmarco, jsonl, report;
      ReaderOptions reader;
      IngestOptions ingest;
      bool no_sync = false, log_batches = false, json = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("ingest",
                                   "Add or replace documents from a corpus file (creates DIR if needed).\n"
                                   "Commits atomic batches; a bad line stops the ingest with earlier batches kept "
                                   "and the failing batch not applied, unless --skip-invalid.");
    cmd->add_option("DIR", a->dir, "collection directory")->required();
    auto* beir = cmd->add_option("--beir", a->beir, "BEIR corpus.jsonl, or a BEIR folder holding it");
    auto* msmarco = cmd->add_option("--msmarco", a->msmarco, "MS MARCO collection.tsv (pid<TAB>text)");
    auto* jsonl = cmd->add_option("--jsonl", a->jsonl, "JSON lines with the field names below");
    beir->excludes(msmarco)->excludes(jsonl);
    msmarco->excludes(jsonl);
    cmd->add_option("--id-field", a->reader.id_field, "--jsonl: id field")->capture_default_str();
    cmd->add_option("--title-field", a->reader.title_field, "--jsonl: title field")->capture_default_str();
    cmd->add_option("--text-field", a->reader.text_field, "--jsonl: text field")->capture_default_str();
    cmd->add_option("--metadata-field", a->reader.metadata_field, "--jsonl: metadata field")->capture_default_str();
    cmd->add_option("--max-doc-bytes", a->reader.max_doc_bytes, "longest accepted document")->capture_default_str();
    cmd->add_option("--batch-docs", a->ingest.batch_docs, "documents per atomic batch")->capture_default_str();
    cmd->add_flag("--skip-invalid", a->ingest.skip_invalid, "skip bad lines, count them and list them in --report");
    cmd->add_option("--report", a->report, "skip report (default: DIR/ingest-skipped.txt with --skip-invalid)");
    cmd->add_flag("--no-sync", a->no_sync, "do not fsync each batch (survives process death, not power loss)");
    cmd->add_flag("--log-batches", a->log_batches, "print a line on stdout as each batch is committed");
    cmd->add_flag("--json", a->json, "print the summary as JSON");
    commands->emplace_back(cmd, [a] {
      std::string path;
      if (!a->beir.empty()) {
        a->reader.format = InputFormat::kBeir;
        path = std::filesystem::is_directory(a->beir) ? a->beir + "/corpus.jsonl" : a->beir;
      } else if (!a->msmarco.empty()) {
        a->reader.format = InputFormat::kMsMarco;
        path = a->msmarco;
      } else if (!a->jsonl.empty()) {
        a->reader.format = InputFormat::kJsonl;
        path = a->jsonl;
      } else {
        std::fprintf(stderr, "quarry ingest: give one of --beir, --msmarco, --jsonl\n");
        return kExitUsage;
      }
      // Before the collection is created: a mistyped input must not leave an empty collection behind.
      if (std::error_code ec; !std::filesystem::is_regular_file(path, ec)) {
        return Fail(Status::NotFound(path + (std::filesystem::exists(path, ec) ? ": not a regular file" : ": no such file")));
      }
      if (FILE* f = std::fopen(path.c_str(), "rb")) std::fclose(f);
      else return Fail(Status::IOError(path + ": cannot read"));
      auto c = Collection::Open(a->dir, {.create_if_missing = true});
      if (!c.ok()) return Fail(c.status());
      a->ingest.sync = !a->no_sync;
      a->ingest.progress = !a->log_batches;
      a->ingest.report_path = a->report;
      if (a->ingest.skip_invalid && a->report.empty()) a->ingest.report_path = a->dir + "/ingest-skipped.txt";
      if (a->log_batches) {
        a->ingest.on_batch = [](const IngestBatchInfo& b) {
          std::printf("committed batch %llu: %llu docs, %llu total, through line %llu\n",
                      static_cast<unsigned long long>(b.batch_index), static_cast<unsigned long long>(b.n_docs),
                      static_cast<unsigned long long>(b.total_docs), static_cast<unsigned long long>(b.last_line));
          std::fflush(stdout);
        };
      }
      auto r = (*c)->IngestFile(path, a->reader, a->ingest);
      if (!r.ok()) return Fail(r.status());
      const double rate = r->seconds > 0 ? r->n_read / r->seconds : 0;
      if (a->json) {
        nlohmann::json j = {{"read", r->n_read}, {"added", r->n_added}, {"replaced", r->n_replaced},
                            {"skipped", r->n_skipped}, {"batches", r->n_batches}, {"lines", r->n_lines},
                            {"seconds", r->seconds}, {"docs_per_s", rate}};
        if (r->n_skipped) j["report"] = a->ingest.report_path;
        std::printf("%s\n", DumpJson(j).c_str());
      } else {
        std::printf("ingested %llu docs (%llu added, %llu replaced, %llu skipped) in %.2f s, %.0f docs/s\n",
                    static_cast<unsigned long long>(r->n_read), static_cast<unsigned long long>(r->n_added),
                    static_cast<unsigned long long>(r->n_replaced), static_cast<unsigned long long>(r->n_skipped),
                    r->seconds, rate);
        if (r->n_skipped) std::printf("skipped lines listed in %s\n", a->ingest.report_path.c_str());
      }
      return kExitOk;
    });
  }
  {
    auto* cmd = app.add_subcommand("get", "Print the document with external id ID (exit 3 when absent)");
    auto dir = std::make_shared<std::string>(), id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_option("ID", *id, "external document id")->required();
    cmd->add_flag("--json", *json, "print as one JSON object");
    commands->emplace_back(cmd, [dir, id, json] {
      auto c = OpenExisting(*dir, /*read_only=*/true);
      if (!c.ok()) return Fail(c.status());
      auto doc = (*c)->Get(*id);
      if (!doc.ok()) return Fail(doc.status());
      if (!*doc) {
        return Fail(Status::NotFound(*dir + ": no document with id '" + *id + "'"));
      }
      const Document& d = **doc;
      if (*json) {
        std::printf("%s\n", DumpJson(DocumentJson(d)).c_str());
      } else {
        std::printf("id: %s\ntitle: %s\ntext: %s\n", d.id.c_str(), d.title.c_str(), d.text.c_str());
        if (!d.metadata.empty()) std::printf("metadata: %s\n", d.metadata.c_str());
      }
      return kExitOk;
    });
  }
  {
    auto* cmd = app.add_subcommand("delete", "Delete the document with external id ID (exit 3 when absent)");
    auto dir = std::make_shared<std::string>(), id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_option("ID", *id, "external document id")->required();
    cmd->add_flag("--json", *json, "print JSON");
    commands->emplace_back(cmd, [dir, id, json] {
      auto c = OpenExisting(*dir, /*read_only=*/false);
      if (!c.ok()) return Fail(c.status());
      auto deleted = (*c)->Delete(*id);
      if (!deleted.ok()) return Fail(deleted.status());
      if (!*deleted) {
        return Fail(Status::NotFound(*dir + ": no document with id '" + *id + "'"));
      }
      if (*json) std::printf("%s\n", DumpJson({{"deleted", *id}}).c_str());
      else std::printf("deleted %s\n", id->c_str());
      return kExitOk;
    });
  }
  {
    auto* cmd = app.add_subcommand("stats", "Print collection statistics");
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_flag("--json", *json, "print as JSON");
    commands->emplace_back(cmd, [dir, json] {
      auto c = OpenExisting(*dir, /*read_only=*/true);
      if (!c.ok()) return Fail(c.status());
      auto s = (*c)->Stats();
      if (!s.ok()) return Fail(s.status());
      const double avgdl = s->lex_doc_count ? static_cast<double>(s->lex_sum_ttf) / s->lex_doc_count : 0;
      auto dense = (*c)->dense().Info();  // NotFound (no dense index) leaves the dense lines out
      if (!dense.ok() && dense.status().code() != StatusCode::kNotFound) return Fail(dense.status());
      if (*json) {
        nlohmann::json j = {{"format_version", s->format_version}, {"documents", s->n_docs},
                            {"doc_numbers_assigned", s->next_docnum}, {"indexed_documents", s->lex_doc_count},
                            {"indexed_terms", s->lex_sum_ttf}, {"avg_doc_terms", avgdl},
                            {"segments", s->lex_segments}, {"segment_bytes", s->lex_bytes},
                            {"postings", s->lex_postings}, {"dead_documents", s->lex_dead},
                            {"disk_bytes", s->disk_bytes}};
        if (dense.ok()) {
          j["dense"] = {{"vectors", dense->n_vectors}, {"dim", dense->dim}, {"factory", dense->factory},
                        {"metric", dense->metric}, {"encoder", dense->encoder}, {"nprobe", dense->nprobe},
                        {"ef_search", dense->ef_search}, {"file_bytes", dense->file_bytes}};
        }
        std::printf("%s\n", DumpJson(j).c_str());
      } else {
        std::printf("format version      %u\n", s->format_version);
        std::printf("documents           %llu\n", static_cast<unsigned long long>(s->n_docs));
        std::printf("doc numbers used    %llu\n", static_cast<unsigned long long>(s->next_docnum));
        std::printf("indexed documents   %llu\n", static_cast<unsigned long long>(s->lex_doc_count));
        std::printf("indexed terms       %llu (%.1f per document)\n", static_cast<unsigned long long>(s->lex_sum_ttf), avgdl);
        std::printf("lexical segments    %llu (%llu bytes, %llu postings, %llu dead documents)\n",
                    static_cast<unsigned long long>(s->lex_segments), static_cast<unsigned long long>(s->lex_bytes),
                    static_cast<unsigned long long>(s->lex_postings), static_cast<unsigned long long>(s->lex_dead));
        std::printf("disk bytes          %llu\n", static_cast<unsigned long long>(s->disk_bytes));
        if (dense.ok()) {
          std::printf("dense vectors       %llu of dim %zu, %s (%s), %s\n", static_cast<unsigned long long>(dense->n_vectors),
                      dense->dim, dense->factory.c_str(), dense->metric.c_str(),
                      dense->encoder.empty() ? "imported" : ("encoder " + dense->encoder).c_str());
        }
      }
      return kExitOk;
    });
  }
  {
    auto* cmd = app.add_subcommand("compact", "Merge the lexical segments into one, dropping the postings of deleted and replaced documents");
    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_flag("--json", *json, "print JSON");
    commands->emplace_back(cmd, [dir, json] {
      auto c = OpenExisting(*dir, /*read_only=*/false);
      if (!c.ok()) return Fail(c.status());
      const auto start = std::chrono::steady_clock::now();
      auto dropped = (*c)->Compact();
      if (!dropped.ok()) return Fail(dropped.status());
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (*json) {
        std::printf("%s\n", DumpJson({{"dropped_documents", *dropped}, {"seconds", seconds}}).c_str());
      } else {
        std::printf("dropped the postings of %llu deleted or replaced documents\n", static_cast<unsigned long long>(*dropped));
      }
      return kExitOk;
    });
  }
  {
    auto* cmd = app.add_subcommand("check", "Verify that the collection's documents, indexes and counters agree (exit 4 if not)");
    auto dir = std::make_shared<std::string>();
    auto repair = std::make_shared<bool>(false), json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "collection directory")->required();
    cmd->add_flag("--repair", *repair, "rebuild damaged lexical segments from the stored documents (opens for writing)");
    cmd->add_flag("--json", *json, "print JSON (the problems listed in it, not on stderr)");
    commands->emplace_back(cmd, [dir, repair, json] {
      auto c = OpenExisting(*dir, /*read_only=*/!*repair);
      if (!c.ok()) return Fail(c.status());
      auto r = (*c)->Check(*repair);
      if (!r.ok()) return Fail(r.status());
      if (*json) {
        const nlohmann::json j = {{"ok", r->ok()},          {"documents", r->n_docs},   {"ids", r->n_ids},
                                  {"indexed", r->n_indexed}, {"segments", r->n_segments}, {"postings", r->n_postings},
                                  {"vectors", r->n_vectors}, {"problems", r->problems}};
        std::printf("%s\n", DumpJson(j).c_str());
        return r->ok() ? kExitOk : kExitCheckFailed;
      }
      for (const auto& p : r->problems) std::fprintf(stderr, "check: %s\n", p.c_str());
      std::printf("%s: %llu docs, %llu ids, %llu indexed in %llu segment%s: %s\n", dir->c_str(),
                  static_cast<unsigned long long>(r->n_docs), static_cast<unsigned long long>(r->n_ids),
                  static_cast<unsigned long long>(r->n_indexed), static_cast<unsigned long long>(r->n_segments),
                  r->n_segments == 1 ? "" : "s", r->ok() ? "OK" : "PROBLEMS FOUND");
      return r->ok() ? kExitOk : kExitCheckFailed;
    });
  }
}

}  // namespace quarry::cli
