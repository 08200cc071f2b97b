#!/usr/bin/env bash
# BM25 through Python beside C++ and beside the Python peers, in one run on this machine (medians).
#   scripts/bench-python.sh [BEIR_DIR] [--skip pyserini,bm25s]
# 1. tools/bench/bench_bm25: the C++ library's queries/s over SciFact's 300 test queries (k=10, k=1000;
#    one thread, all threads), the figure the Python package must come within 10% of;
# 2. tools/bench/python_peers.py: the same queries through `import quarry`, Pyserini's LuceneSearcher
#    (Anserini's jar on Debian's JDK) and bm25s, each system's nDCG@10 from its own k=1000 run.
# Prints the figures, then the ratios: Python/C++ for Quarry (medians of alternating rounds), Quarry/peer
# through Python.
# The peers come from PyPI into $QUARRY_VENV_PEERS (default ~/.cache/quarry/venv-peers; torch is ~3 GB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/../shared/datasets/scifact
skip=""
while (($#)); do
  case "$1" in
    --skip) skip=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) data=$1; shift ;;
  esac
done
[ -f "$data/corpus.jsonl" ] || { echo "bench-python: no BEIR folder at $data" >&2; exit 2; }
if ! command -v javac >/dev/null; then
  apt-get install -y -qq default-jdk-headless >/dev/null
fi
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
py=$(QUARRY_VENV=${QUARRY_VENV_PEERS:-$HOME/.cache/quarry/venv-peers} "$root/scripts/venv.sh" \
  "$root/python/requirements-dev.txt" "$root/tools/bench/requirements-python-peers.txt")
build=${QUARRY_BUILD_DIR:-$root/build}
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON -DQUARRY_BUILD_PYTHON=ON "-DPython_EXECUTABLE=$py" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The Python-vs-C++ comparison is within 10%, finer than this machine's drift between two runs a minute
# apart: C++ and Python alternate for $rounds rounds; a ratio is the median over the rounds of each round's
# ratio (its range is printed too), a figure the median over the rounds.
rounds=${QUARRY_BENCH_ROUNDS:-5}
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds: C++ (bench_bm25, $data)"
  "$build/bench_bm25" "$data" "$tmp/cpp" | tee -a "$tmp/cpp.txt"
  echo "== round $r/$rounds: Python (import quarry)"
  rm -rf "$tmp/py" && mkdir "$tmp/py"
  PYTHONPATH=$build/python "$py" "$root/tools/bench/python_peers.py" "$data" "$tmp/py" --skip pyserini,bm25s \
    | tee -a "$tmp/py.jsonl"
done
echo "== Python peers (bm25s, Pyserini on $(JAVA_HOME= "$JAVA_HOME/bin/java" -version 2>&1 | head -1))"
rm -rf "$tmp/py" && mkdir "$tmp/py"
PYTHONPATH=$build/python "$py" "$root/tools/bench/python_peers.py" "$data" "$tmp/py" --skip "quarry,$skip" \
  | tee -a "$tmp/py.jsonl"
"$py" - "$tmp/cpp.txt" "$tmp/py.jsonl" <<'PY'
import json, statistics, sys
from collections import defaultdict
cpp_rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]  # bench_bm25: JSON lines
rows = [json.loads(line) for line in open(sys.argv[2])]
cpp_rounds, py_rounds = defaultdict(list), defaultdict(list)
for r in cpp_rows:
    if r["phase"] == "search" and not r["exhaustive"]:
        cpp_rounds[(r["k"], r["threads"])].append(r["qps"])
for r in rows:
    if "qps" in r:
        py_rounds[(r["system"], r["k"], r["how"], r["threads"])].append(r["qps"])
cpp = {key: statistics.median(v) for key, v in cpp_rounds.items()}
qps = {key: statistics.median(v) for key, v in py_rounds.items()}
all_threads = max(t for (_, _, _, t) in qps)
def paired(py_key, cpp_rounds_of):
    """Median and range over the rounds of Python/C++ within each round."""
    ratios = [p / c for p, c in zip(py_rounds[py_key], cpp_rounds_of)]
    return statistics.median(ratios), min(ratios), max(ratios)

print("\n== Quarry through Python / the C++ library (same queries, no text fetched)")
for k in (10, 1000):
    # bench_bm25's 1-thread figure is a loop of searches; its all-threads one a SearchBatch
    for how, threads, cpp_threads in (("loop", 1, "1"), ("batch", all_threads, "all")):
        key = ("quarry", k, how, threads)
        if key in qps and (k, cpp_threads) in cpp:
            r, lo, hi = paired(key, cpp_rounds[(k, cpp_threads)])
            print(f"k={k:<5} {how:5} {threads} thread(s)  Python {qps[key]:9.1f} q/s   C++ {cpp[(k, cpp_threads)]:9.1f} q/s"
                  f"   ratio {r:.3f} (rounds {lo:.3f}..{hi:.3f})")
print("\n== The binding's own cost: Python loop / the same loop in C++ in the same process")
for k in (10, 1000):
    key, inproc = ("quarry", k, "loop", 1), ("quarry-c++-in-process", k, "loop", 1)
    if key in qps and inproc in qps:
        r, lo, hi = paired(key, py_rounds[inproc])
        print(f"k={k:<5} loop  1 thread(s)  Python {qps[key]:9.1f} q/s   C++ {qps[inproc]:9.1f} q/s"
              f"   ratio {r:.3f} (rounds {lo:.3f}..{hi:.3f})")
print("\n== Through Python: Quarry / peer (q/s ratios; > 1 means Quarry is faster)")
for peer in ("pyserini", "bm25s"):
    for k in (10, 1000):
        for how, threads in (("loop", 1), ("batch", 1), ("batch", all_threads)):
            p, q = qps.get((peer, k, how, threads)), qps.get(("quarry", k, how, threads))
            if p and q:
                print(f"{peer:9} k={k:<5} {how:5} {threads} thread(s)  Quarry {q:9.1f}  {peer} {p:9.1f}   ratio {q / p:.2f}x")
print("\n== Quality of each system's own k=1000 run (quarry.evaluate = trec_eval)")
seen = set()
for r in rows:
    if "ndcg10" in r and r["system"] not in seen:
        seen.add(r["system"])
        print(f"{r['system']:9} nDCG@10 {r['ndcg10']:.4f}   Recall@100 {r['recall100']:.4f}")
index_s = defaultdict(list)
for r in rows:
    if "index_s" in r:
        index_s[r["system"]].append(r["index_s"])
for system, v in index_s.items():
    print(f"{system:9} index build {statistics.median(v):.2f} s")
PY
