#!/usr/bin/env bash
# BM25 speed beside the Lucene 8.7 peer, in one run on this machine (medians; ratios = Quarry / Lucene).
# Quarry: tools/bench/bench_bm25 (index build, then queries/s at k=10 and k=1000 over SciFact's 300
# test queries, 1 thread and all threads). Lucene: ../shared/bench/lucene/run.sh (in-memory index,
# one thread, best of 5 passes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/datasets/scifact}
lucene=$root/../shared/bench/lucene/run.sh
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
build=${QUARRY_BUILD_DIR:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== Quarry ($data)"
"$build/bench_bm25" "$data" "$tmp/quarry" | tee "$tmp/quarry.txt"
echo "== Lucene 8.7 (same machine, same queries)"
for k in 10 1000; do
  bash "$lucene" "$data" "$tmp/lucene-$k.run" "$k" | tee -a "$tmp/lucene.txt"
done
python3 - "$tmp/quarry.txt" "$tmp/lucene.txt" <<'PY'
import json, re, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]  # bench_bm25: JSON lines
l = open(sys.argv[2]).read()  # the Lucene peer's text, as ../shared/bench/lucene/run.sh prints it
def grab(pattern, text):
    m = re.search(pattern, text); return float(m.group(1)) if m else float("nan")
def search_qps(k, threads):
    for r in rows:
        if r["phase"] == "search" and r["k"] == k and r["threads"] == threads and not r["exhaustive"]:
            return r["qps"]
    return float("nan")
print("\n== Ratios (Quarry / Lucene)")
lk = {int(k): float(v) for k, v in re.findall(r"k=(\d+) search_s=[\d.]+ qps=([\d.]+)", l)}
for k in (10, 1000):
    one, allt = search_qps(k, "1"), search_qps(k, "all")
    print(f"k={k:<5} Quarry 1 thread {one:9.1f} q/s   all threads {allt:9.1f} q/s   Lucene 1 thread {lk.get(k, float('nan')):8.1f} q/s"
          f"   ratio 1 thread {one / lk.get(k, float('nan')):.2f}x")
qd = next(r["docs_per_s"] for r in rows if r["phase"] == "ingest"); ld = grab(r"docs_per_s=([\d.]+)", l)
print(f"indexing: Quarry {qd:.0f} docs/s into RocksDB (on disk, durable) vs Lucene {ld:.0f} docs/s "
      f"(in-memory ByteBuffersDirectory): {qd / ld:.2f}x")
PY
