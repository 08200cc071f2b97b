#!/usr/bin/env bash
# Ingest speed and size: SciFact (BEIR jsonl) and the TREC DL 2019 passages (MS MARCO tsv), each into a
# fresh collection with the default durable settings (fsync per 1000-document batch), median of 3 runs;
# then Lucene 8.7's indexing rate on SciFact in the same run (Lucene builds an in-memory index and
# does not fsync, so the ratio flatters Lucene).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$root/../shared
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
quarry=${QUARRY_BUILD_DIR:-$root/build}/quarry
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # name, format flag, path
  local rates=()
  for i in 1 2 3; do
    rm -rf "$tmp/c"
    rates+=("$("$quarry" ingest "$tmp/c" "$2" "$3" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["docs_per_s"])')")
  done
  local bytes docs
  bytes=$("$quarry" stats "$tmp/c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["disk_bytes"])')
  docs=$("$quarry" stats "$tmp/c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])')
  local input_bytes
  input_bytes=$(stat -c %s "$3")
  python3 - "$1" "$docs" "$bytes" "$input_bytes" "${rates[@]}" <<'PY'
import sys, statistics
name, docs, disk, inp, *rates = sys.argv[1:]
print(f"{name:<28} docs={docs:>6}  docs/s median={statistics.median(map(float, rates)):8.0f}  "
      f"on disk={int(disk)/2**20:6.1f} MiB ({int(disk)/int(inp):.2f}x the input's {int(inp)/2**20:.1f} MiB)")
PY
}
echo "== Quarry ingest (durable RocksDB collection, documents + BM25 index)"
run "scifact corpus.jsonl" --beir "$shared/datasets/scifact/corpus.jsonl"
run "dl19 collection.tsv" --msmarco "$shared/datasets/trec-dl-2019-passage/collection.tsv"
echo "== Lucene 8.7 on scifact (in-memory index, best of 3)"
bash "$shared/bench/lucene/run.sh" "$shared/datasets/scifact" "$tmp/lucene.run" 10 | sed 's/ queries=.*//'
