#!/usr/bin/env bash
# README.md's samples against the binary (tools/readme_samples.py): the BM25 and ResMem tables and the
# shell session that scripts/demo.sh's commands print, and every command and flag of "The CLI at a
# glance". The slow samples (WordNet training, the real encoder) are checked by scripts/demo.sh itself.
#   tests/readme/samples.sh BUILD_DIR        (run by ctest; exit 77 = skipped when SciFact is absent)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
quarry=$1/quarry
data=$root/../shared/datasets/scifact
if [ ! -f "$data/corpus.jsonl" ]; then
  echo "readme samples: skipped: $data/corpus.jsonl is absent (../shared/datasets/scifact)" >&2
  exit 77
fi
check() { python3 "$root/tools/readme_samples.py" "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
collection=$tmp/scifact
check flags cli "$quarry"
"$quarry" ingest "$collection" --beir "$data" >/dev/null
# The same commands as scripts/demo.sh's.
"$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100,recall@1000,mrr@10,map \
  --run-out "$collection.run" | check check demo-bm25
"$quarry" resmem build "$collection" --beir "$data" --split train --tune >/dev/null
"$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100,mrr@10 --resmem \
  --run-out "$collection.resmem.run" --compare "$collection.run" | check check demo-resmem --replace "$collection=scifact"
check shell shell "$quarry" "$collection"
