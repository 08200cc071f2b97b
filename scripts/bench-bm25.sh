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
import re, sys
q = open(sys.argv[1]).read(); l = open(sys.argv[2]).read()
def grab(pattern, text):
    m = re.search(pattern, text); return float(m.group(1)) if m else float("nan")
print("\n== Ratios (Quarry / Lucene)")
lk = {int(k): float(v) for k, v in re.findall(r"k=(\d+) search_s=[\d.]+ qps=([\d.]+)", l)}
for k in (10, 1000):
    one = grab(rf"k={k} threads=1 queries=\d+ median_s=[\d.]+ qps=([\d.]+)", q)
    allt = grab(rf"k={k} threads=all queries=\d+ median_s=[\d.]+ qps=([\d.]+)", q)
    print(f"k={k:<5} Quarry 1 thread {one:9.1f} q/s   all threads {allt:9.1f} q/s   Lucene 1 thread {lk.get(k, float('nan')):8.1f} q/s"
          f"   ratio 1 thread {one / lk.get(k, float('nan')):.2f}x")
qd = grab(r"docs_per_s=([\d.]+)", q); ld = grab(r"docs_per_s=([\d.]+)", l)
print(f"indexing: Quarry {qd:.0f} docs/s into RocksDB (on disk, durable) vs Lucene {ld:.0f} docs/s "
      f"(in-memory ByteBuffersDirectory): {qd / ld:.2f}x")
PY
