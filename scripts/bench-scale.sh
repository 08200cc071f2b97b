#!/usr/bin/env bash
# Collections at MS MARCO scale: Quarry beside Lucene 8.7 on the same files, in one run.
#   scripts/bench-scale.sh [N_DOCS]      (default 1,000,000; MS MARCO passage has 8,841,823)
# Generates a seeded MS MARCO-shaped corpus (tools/bench/gen_corpus: ~55 words per passage, Zipf(1)
# vocabulary of 1.6M terms, 6,980 queries of 2-10 words), then measures: ingest docs/s on 1 and 2
# threads; bytes on disk; open + first query in a fresh process with the page cache warm and dropped;
# RSS and anonymous RSS after 1,000 queries; q/s at k=10 and k=1000 on 1 and 2 threads;
# upsert-to-visible latency; and Lucene 8.7 (../shared/bench/lucene/run.sh, on disk, one indexing
# thread) on the same corpus and queries. Then the dense part (QUARRY_BENCH_DENSE_N vectors of dim 384,
# default 1,000,000; 0 skips it): import, IVF1024 and HNSW32 build, open, q/s, recall@10, write-to-visible.
# Work files go to $QUARRY_BENCH_DIR (default a fresh directory under /var/tmp, removed at the end unless
# QUARRY_BENCH_KEEP=1): about 1.2 KB per passage plus ~5 GB per million dense vectors.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
dense_n=${QUARRY_BENCH_DENSE_N:-1000000}
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
build=${QUARRY_BUILD_DIR:-$root/build}
lucene=$root/../shared/bench/lucene/run.sh
work=${QUARRY_BENCH_DIR:-$(mktemp -d /var/tmp/quarry-scale-XXXXXX)}
mkdir -p "$work"
[ "${QUARRY_BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
out=$work/results.jsonl
: > "$out"
log() { echo "== $*" >&2; }

log "corpus: $n passages"
"$build/gen_corpus" "$work/corpus" --docs "$n" >&2
corpus_bytes=$(stat -c %s "$work/corpus/corpus.jsonl")

log "Quarry ingest, 1 thread"
"$build/bench_scale" ingest "$work/corpus" "$work/q1" --threads 1 | tee -a "$out" >&2
rm -rf "$work/q1"
log "Quarry ingest, 2 threads"
"$build/bench_scale" ingest "$work/corpus" "$work/q" --threads 2 | tee -a "$out" >&2

log "Quarry open + first query, page cache warm; then q/s"
"$build/bench_scale" search "$work/q" "$work/corpus/queries.jsonl" | tee -a "$out" >&2
log "Quarry open + first query, page cache dropped"
sync
if echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  "$build/bench_scale" search "$work/q" "$work/corpus/queries.jsonl" --open-only yes | tee -a "$out" >&2
else
  echo '{"phase":"open_cold","skipped":"cannot write /proc/sys/vm/drop_caches"}' | tee -a "$out" >&2
fi
log "Quarry upsert-to-visible"
"$build/bench_scale" upsert "$work/q" | tee -a "$out" >&2

for k in 10 1000; do
  log "Lucene 8.7, k=$k (indexes again each time: run.sh always does)"
  line=$(LUCENE_INDEX_DIR="$work/lucene" LUCENE_INDEX_PASSES=1 LUCENE_SEARCH_PASSES=3 \
         /usr/bin/time -f "max_rss_kb=%M" -o "$work/lucene-time" bash "$lucene" "$work/corpus" "$work/lucene-$k.run" "$k" | tail -1)
  echo "$line" >&2
  python3 - "$line" "$(du -sb "$work/lucene" | cut -f1)" "$(cat "$work/lucene-time")" >> "$out" <<'PY'
import json, re, sys
kv = dict(re.findall(r"(\w+)=([\d.]+)", sys.argv[1] + " " + sys.argv[3]))
print(json.dumps({"phase": "lucene", **{k: float(v) for k, v in kv.items()}, "index_bytes": int(sys.argv[2])}))
PY
done
rm -rf "$work/lucene" "$work/q"

if [ "$dense_n" -gt 0 ]; then
  log "dense: $dense_n x 384 vectors"
  "$build/bench_scale" dense "$work" --n "$dense_n" --dim 384 --factories "IVF1024,Flat;HNSW32" --nprobe 16 --ef-search 64 |
    tee -a "$out" >&2
fi

python3 - "$out" "$n" "$corpus_bytes" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n, corpus_bytes = int(sys.argv[2]), int(sys.argv[3])
def one(phase, **match):
    for r in rows:
        if r.get("phase") == phase and all(r.get(k) == v for k, v in match.items()):
            return r
    return {}
ing1, ing2 = one("ingest", threads=1), one("ingest", threads=2)
lu10, lu1000 = one("lucene", k=10.0), one("lucene", k=1000.0)
opened, cold, up = one("open"), one("open_cold"), one("upsert")
def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"
print(f"\n== {n:,} passages ({corpus_bytes / 2**20:.0f} MiB of BEIR jsonl), this machine, one run")
print(f"{'measure':<44} {'Quarry':>14} {'Lucene 8.7':>14} {'ratio':>8}")
lu_docs = lu10.get("docs_per_s")
print(f"{'ingest docs/s, 1 thread':<44} {ing1.get('docs_per_s', 0):>14,.0f} {lu_docs or 0:>14,.0f} {ratio(ing1.get('docs_per_s'), lu_docs):>8}")
print(f"{'ingest docs/s, 2 threads (Lucene: 1)':<44} {ing2.get('docs_per_s', 0):>14,.0f} {lu_docs or 0:>14,.0f} {ratio(ing2.get('docs_per_s'), lu_docs):>8}")
lb = lu1000.get("index_bytes") or lu10.get("index_bytes")
print(f"{'lexical index bytes (Lucene: whole index)':<44} {ing2.get('lexical_bytes', 0):>14,} {lb or 0:>14,} {ratio(ing2.get('lexical_bytes'), lb):>8}")
print(f"{'collection bytes (with the documents)':<44} {ing2.get('collection_bytes', 0):>14,} {'-':>14} {'-':>8}")
print(f"{'open (ms), page cache warm':<44} {opened.get('open_ms', 0):>14.1f} {1000 * (lu10.get('open_s') or 0):>14.1f} {'':>8}")
print(f"{'first query (ms), page cache warm':<44} {opened.get('first_query_ms', 0):>14.1f} {'-':>14}")
if cold.get("open_ms") is not None:
    print(f"{'open + first query (ms), page cache dropped':<44} {cold['open_ms'] + cold['first_query_ms']:>14.1f} {'-':>14}")
else:
    print(f"{'open + first query, page cache dropped':<44} {'skipped':>14} ({cold.get('skipped', '')})")
rss = opened.get("rss_after_1000_queries_kb", {})
print(f"{'RSS / anonymous RSS after 1,000 queries (MiB)':<44} {rss.get('VmRSS', 0) / 1024:>7.0f} / {rss.get('RssAnon', 0) / 1024:<5.0f} {'peak ' + format((lu10.get('max_rss_kb') or 0) / 1024, '.0f'):>14}")
for k, lu in ((10, lu10), (1000, lu1000)):
    for t in (1, 2):
        q = one("search", k=k, threads=t).get("qps", 0)
        print(f"{f'q/s at k={k}, {t} thread(s) (Lucene: 1)':<44} {q:>14,.0f} {lu.get('qps') or 0:>14,.0f} {ratio(q, lu.get('qps')):>8}")
print(f"{'upsert-to-visible (ms), median / max':<44} {up.get('upsert_to_visible_ms_median', 0):>7.2f} / {up.get('upsert_to_visible_ms_max', 0):<6.2f}")
print(f"{'delete-to-invisible (ms), median':<44} {up.get('delete_to_invisible_ms_median', 0):>14.2f}")
dense = [r for r in rows if r.get("phase") == "dense"]
if dense:
    imp = one("dense_import")
    print(f"\n== dense: {imp.get('vectors', 0):,} x {imp.get('dim', 0)} seeded clustered unit vectors, inner product")
    print(f"import (PutVectors): {imp.get('vectors_per_s', 0):,.0f} vectors/s")
    print(f"{'index':<14} {'build s':>8} {'open+1st ms':>12} {'q/s 1 thr':>10} {'recall@10':>10} {'+anon MiB':>9} {'file MiB':>9} {'write->visible ms (median/max)':>31}")
    for d in dense:
        print(f"{d['factory']:<14} {d['build_s']:>8.1f} {d['open_and_first_search_ms']:>12.1f} {d['qps_1_thread']:>10,.0f} "
              f"{d['recall_at_10']:>10.4f} {d['reader_rss_growth_kb'].get('RssAnon', 0) / 1024:>9.0f} {d.get('file_bytes', 0) / 2**20:>9.0f} "
              f"{d['upsert_to_visible_ms_median']:>15.2f} / {d['upsert_to_visible_ms_max']:.1f}")
PY
