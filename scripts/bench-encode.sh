#!/usr/bin/env bash
# Encoding speed of a real dual encoder: Quarry's runtime beside sentence-transformers on PyTorch (CPU)
# and ONNX Runtime (both from PyPI, scripts/venv.sh), on the same SciFact documents in one run.
#   scripts/bench-encode.sh [MODEL] [N_DOCS]     (default all-MiniLM-L6-v2, 200 documents)
# Max length 256 and 512 tokens, batches of 32, 1 and 2 threads; medians of 3 passes; prints a table
# with Quarry's ratio to each peer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-all-MiniLM-L6-v2} docs=${2:-200}
corpus=$root/../shared/datasets/scifact/corpus.jsonl
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
build=${QUARRY_BUILD_DIR:-$root/build}
python=$("$root/scripts/venv.sh" "$root/tools/bench/requirements-encode.txt")
"$root/scripts/models.sh" "$model" >&2
dir=${QUARRY_MODELS:-$HOME/.cache/quarry/models}/$model
work=$(mktemp -d /var/tmp/quarry-bench-encode.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$work/results.jsonl
echo "== Quarry" >&2
"$build/bench_encode" "$dir" "$corpus" --docs "$docs" --batch 32 --lengths 256,512 --threads 1,2 | tee -a "$out" >&2
echo "== sentence-transformers and ONNX Runtime" >&2
"$python" "$root/tools/bench/encode_peers.py" "$dir" "$corpus" --docs "$docs" --batch 32 --lengths 256,512 \
  --threads 1,2 --work "$work" 2> >(grep -v -i "warn" >&2) | tee -a "$out" >&2
python3 - "$out" "$model" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{sys.argv[2]}: documents/s ({rows[0]['docs']} SciFact documents, batch 32)")
print(f"{'max_len':>7} {'threads':>7} {'quarry':>8} {'sent-tr':>8} {'onnxrt':>8} {'vs st':>6} {'vs ort':>6}")
for r in rows:
    if r["system"] != "quarry":
        continue
    peers = {p["system"].split()[0]: p["docs_per_s"] for p in rows
             if p["system"] != "quarry" and p["max_length"] == r["max_length"] and p["threads"] == r["threads"]}
    st, ort = peers.get("sentence-transformers", 0), peers.get("onnxruntime", 0)
    print(f"{r['max_length']:7} {r['threads']:7} {r['docs_per_s']:8.1f} {st:8.1f} {ort:8.1f} "
          f"{r['docs_per_s'] / st if st else 0:5.2f}x {r['docs_per_s'] / ort if ort else 0:5.2f}x")
PY
