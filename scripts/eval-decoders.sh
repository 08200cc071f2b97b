#!/usr/bin/env bash
# In-context ranking with the real decoders of scripts/models.sh (no fine-tuning): BlockRank's
# block-sparse prompt in the decoupled mode (the query only in the last block, so every document block
# is encoded once and cached in the collection: `quarry index --rerank-cache`), attention scores at six
# layers from one pass, with and without Chen et al. 2024's calibration, over BM25's top 20 and top 100
# of SciFact test (300 queries) and TREC DL 2019 (run.bm25.trec, 43 queries). nDCG@10 against BM25 and
# against a seeded shuffle of the same candidates (paired randomisation tests, 10,000 permutations),
# and seconds per query. Before the runs, the cached scores are checked against the uncached
# computation on DL 2019's first 10 queries (top 20).
#   scripts/eval-decoders.sh [MODEL ...]      (default: scripts/models.sh --list decoders)
# Environment: QUARRY_EVAL_DIR (default /var/tmp/quarry-eval-decoders; collections are reused when
# their caches are complete), QUARRY_EVAL_DATASETS ("scifact dl19"), QUARRY_EVAL_DEPTHS ("20 100"),
# QUARRY_CACHE_PRECISION (f16, the default: half the gigabytes; or f32), QUARRY_EVAL_DROP_CACHES=1
# (delete a model's collections after its runs), QUARRY_BIN (use this quarry binary, build nothing). Rows go to $QUARRY_EVAL_DIR/results.jsonl; the
# tables are printed at the end (tools/decoder_tables.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
datasets=$root/../shared/datasets
scifact=$datasets/scifact dl19=$datasets/trec-dl-2019-passage
work=${QUARRY_EVAL_DIR:-/var/tmp/quarry-eval-decoders}
models_dir=${QUARRY_MODELS:-$HOME/.cache/quarry/models}
precision=${QUARRY_CACHE_PRECISION:-f16}
if [ -n "${QUARRY_BIN:-}" ]; then
  quarry=$QUARRY_BIN  # a binary built earlier (the runs take hours; the tree may change meanwhile)
else
  "$root/scripts/build.sh" >/dev/null
  quarry=${QUARRY_BUILD_DIR:-$root/build}/quarry
fi
models=("$@")
[ ${#models[@]} -gt 0 ] || mapfile -t models < <("$root/scripts/models.sh" --list decoders)
"$root/scripts/models.sh" "${models[@]}" >&2
mkdir -p "$work/runs"
results=$work/results.jsonl
touch "$results"
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
half=()
[ "$precision" = f16 ] && half=(--half-precision)

# eval_json RUN QRELS [--compare B]: the eval's JSON on one line.
eval_json() {
  local run=$1 qrels=$2
  shift 2
  "$quarry" eval --qrels "$qrels" --run "$run" --metrics ndcg@10 "$@" --json
}

# Six scoring layers (0-based), up to the model's last; Qwen2.5-Coder's only up to 12 of its 24, which
# halves its encoding time (its deeper layers ranked DL 2019 worse than layers 4-8 in the README's run).
layers_of() {
  case $1 in
    SmolLM2-135M*) echo 5,10,15,20,25,29 ;;
    Qwen2.5-Coder-0.5B*) echo 2,4,6,8,10,12 ;;
    gemma-3-270m*) echo 2,5,8,11,14,17 ;;
    *) echo "eval-decoders: no scoring layers known for '$1'" >&2; return 2 ;;
  esac
}

# Candidates: SciFact from Quarry's BM25 (equal to Lucene's, README), DL 2019 Anserini's run.bm25.trec.
# A dataset's collection holds only the documents among its run's top max(depths): the caches of no
# other document are ever read.
if [ ! -s "$work/scifact-bm25.run" ]; then
  rm -rf "$work/scifact-bm25"
  "$quarry" ingest "$work/scifact-bm25" --beir "$scifact" >&2
  "$quarry" eval "$work/scifact-bm25" --beir "$scifact" --split test -k 100 --run-out "$work/scifact-bm25.run" >&2
fi
declare -A bm25_run=([scifact]=$work/scifact-bm25.run [dl19]=$dl19/run.bm25.trec)
declare -A queries=([scifact]=$scifact/queries.jsonl [dl19]=$dl19/queries.tsv)
declare -A qrels=([scifact]=$scifact/qrels/test.tsv [dl19]=$dl19/qrels.txt)
depths=${QUARRY_EVAL_DEPTHS:-20 100}
pool_depth=$(printf '%s\n' $depths | sort -n | tail -1)
ingest() {  # ingest DATASET DIR: the documents of the dataset's candidate pool
  local pool=$work/$1-top$pool_depth
  if [ ! -s "$pool.ids" ]; then
    awk -v d="$pool_depth" '$4 <= d { print $3 }' "${bm25_run[$1]}" | sort -u > "$pool.ids"
  fi
  if [ "$1" = scifact ]; then
    python3 -c '
import json, sys
keep = set(open(sys.argv[1]).read().split())
for line in open(sys.argv[2]):
    if json.loads(line)["_id"] in keep: sys.stdout.write(line)' "$pool.ids" "$scifact/corpus.jsonl" > "$pool.jsonl"
    "$quarry" ingest "$2" --beir "$pool.jsonl" >&2
  else
    awk -F'\t' 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' "$pool.ids" "$dl19/collection.tsv" > "$pool.tsv"
    "$quarry" ingest "$2" --msmarco "$pool.tsv" >&2
  fi
}

# The random baseline: each query's top DEPTH in a seeded shuffle (Python's random.Random(42)).
shuffled() {  # shuffled DATASET DEPTH -> path
  local out=$work/runs/$1-top$2.random
  [ -s "$out" ] || python3 - "${bm25_run[$1]}" "$2" "$out" <<'EOF'
import collections, random, sys
run, depth, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hits = collections.defaultdict(list)
for line in open(run):
    qid, _, doc, rank, score, _ = line.split()
    hits[qid].append((int(rank), doc))
rng = random.Random(42)
with open(out, "w") as f:
    for qid in sorted(hits):
        docs = [d for _, d in sorted(hits[qid])[:depth]]
        rng.shuffle(docs)
        for i, d in enumerate(docs):
            f.write(f"{qid} Q0 {d} {i + 1} {len(docs) - i} random\n")
EOF
  echo "$out"
}

for model in "${models[@]}"; do
  gguf=$models_dir/$model/model.gguf
  layers=$(layers_of "$model")
  deepest=${layers##*,}
  rerank=(--rerank-model "$gguf" --max-block-length 128 --query-in-instruction false --scoring-layers "$layers")
  for ds in ${QUARRY_EVAL_DATASETS:-scifact dl19}; do
    dir=$work/$ds-top$pool_depth-$model
    if [ ! -f "$dir.cached" ]; then
      rm -rf "$dir"
      ingest "$ds" "$dir"
      log "$model: encoding every $ds document block once ($precision)"
      "$quarry" index "$dir" --rerank-cache "$gguf" --scoring-layer "$deepest" --max-block-length 128 "${half[@]}" \
        --json > "$dir.cached.json"
      mv "$dir.cached.json" "$dir.cached"
    fi
    if [ "$ds" = dl19 ] && [ ! -f "$work/runs/check-$model.json" ]; then
      # The caches against the uncached computation (a collection without them), DL 2019's first 10
      # queries, top 20: per layer the largest score difference and whether the orders agree.
      log "$model: cached vs uncached scores"
      rm -rf "$work/dl19-nocache"
      ingest dl19 "$work/dl19-nocache"
      head_run=$work/runs/dl19-first10.run
      awk '!($1 in seen) { if (++n > 10) exit; seen[$1] = 1 } ($1 in seen)' "${bm25_run[dl19]}" > "$head_run"
      "$quarry" rerank "$dir" "${rerank[@]}" --rerank-depth 20 --run "$head_run" --queries "${queries[dl19]}" \
        --run-out "$work/runs/check-$model.cached" --json >/dev/null
      "$quarry" rerank "$work/dl19-nocache" "${rerank[@]}" --rerank-depth 20 --run "$head_run" \
        --queries "${queries[dl19]}" --run-out "$work/runs/check-$model.uncached" --json >/dev/null
      python3 - "$work/runs/check-$model" "$layers" > "$work/runs/check-$model.json" <<'EOF'
import collections, json, sys
base, layers = sys.argv[1], sys.argv[2].split(",")
def load(path):
    run = collections.defaultdict(list)
    for line in open(path):
        qid, _, doc, rank, score, _ = line.split()
        run[qid].append((int(rank), doc, float(score)))
    return {q: sorted(v)[:20] for q, v in run.items()}
rows = {}
for l in layers:
    a, b = load(f"{base}.cached.layer{l}"), load(f"{base}.uncached.layer{l}")
    scores_a = {(q, d): s for q in a for _, d, s in a[q]}
    diff = max(abs(s - scores_a[(q, d)]) for q in b for _, d, s in b[q])
    same = sum([d for _, d, _ in a[q]] == [d for _, d, _ in b[q]] for q in b)
    rows[l] = {"max_score_diff": diff, "queries_same_order": same, "queries": len(b)}
print(json.dumps(rows))
EOF
      rm -rf "$work/dl19-nocache"
      log "$model: $(cat "$work/runs/check-$model.json")"
    fi
    for depth in $depths; do
      random=$(shuffled "$ds" "$depth")
      for setting in plain calibrated; do
        out=$work/runs/$ds-$model-top$depth-$setting
        cal=()
        [ $setting = calibrated ] && cal=(--calibrate)
        log "$model: $ds top $depth, $setting"
        "$quarry" rerank "$dir" "${rerank[@]}" "${cal[@]}" --rerank-depth "$depth" --run "${bm25_run[$ds]}" \
          --queries "${queries[$ds]}" --run-out "$out" --json > "$out.json"
        for layer in ${layers//,/ }; do
          vs_bm25=$(eval_json "$out.layer$layer" "${qrels[$ds]}" --compare "${bm25_run[$ds]}")
          vs_random=$(eval_json "$out.layer$layer" "${qrels[$ds]}" --compare "$random")
          python3 - "$model" "$ds" "$depth" "$setting" "$layer" "$out.json" "$vs_bm25" "$vs_random" \
            "$(eval_json "${bm25_run[$ds]}" "${qrels[$ds]}")" "$(eval_json "$random" "${qrels[$ds]}")" \
            "$(cat "$dir.cached")" >> "$results" <<'EOF'
import json, sys
model, ds, depth, setting, layer, timing = sys.argv[1:7]
vs_bm25, vs_random, bm25, random, cache = (json.loads(a) for a in sys.argv[7:12])
t = json.load(open(timing))
def cmp(j):
    m = j["compare"]["metrics"]["nDCG@10"]
    return {"diff": m["diff"], "p": m["p_randomization"]}
print(json.dumps({"model": model, "dataset": ds, "depth": int(depth), "setting": setting, "layer": int(layer),
                  "ndcg10": vs_bm25["metrics"]["nDCG@10"], "bm25": bm25["metrics"]["nDCG@10"],
                  "random": random["metrics"]["nDCG@10"], "vs_bm25": cmp(vs_bm25), "vs_random": cmp(vs_random),
                  "queries": t["queries"], "seconds_per_query": t["seconds_per_query"],
                  "cache_seconds": cache["rerank_cache"]["seconds"], "cache_documents": cache["rerank_cache"]["documents"],
                  "cache_precision": cache["rerank_cache"]["precision"]}))
EOF
        done
      done
    done
    if [ "${QUARRY_EVAL_DROP_CACHES:-0}" = 1 ]; then rm -rf "$dir" "$dir.cached"; fi
  done
done
python3 "$root/tools/decoder_tables.py" "$results"
