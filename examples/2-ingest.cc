// 2-ingest: create a collection, stream a corpus file into it, add and replace a document.
// Usage: 2-ingest DIR corpus.jsonl   (BEIR format: {"_id", "title", "text"})
#include <cstdio>

#include "quarry/collection.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR corpus.jsonl\n", argv[0]);
    return 2;
  }
  auto c = quarry::Collection::Open(argv[1], {.create_if_missing = true});
  if (!c.ok()) return std::fprintf(stderr, "%s\n", c.status().ToString().c_str()), 1;
  quarry::Collection& collection = **c;

  // Atomic batches of 1000; a bad line stops with "file:line: reason", earlier batches kept.
  auto report = collection.IngestFile(argv[2], {.format = quarry::InputFormat::kBeir}, {.batch_docs = 1000});
  if (!report.ok()) return std::fprintf(stderr, "%s\n", report.status().ToString().c_str()), 1;
  std::printf("ingested %llu documents\n", static_cast<unsigned long long>(report->n_read));

  // Upsert: the same id replaces the document, in one atomic batch.
  quarry::Status s = collection.Upsert({{"example-1", "A title", "First version.", ""}});
  if (s.ok()) s = collection.Upsert({{"example-1", "A title", "Second version about muscles.", ""}});
  if (!s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  auto doc = collection.Get("example-1");
  if (!doc.ok() || !*doc) return 1;
  std::printf("example-1: %s\n", (*doc)->text.c_str());

  auto stats = collection.Stats();
  auto check = collection.Check();
  if (!stats.ok() || !check.ok()) return 1;
  std::printf("%llu documents, check %s\n", static_cast<unsigned long long>(stats->n_docs), check->ok() ? "OK" : "FAILED");
  return check->ok() ? 0 : 1;
}
