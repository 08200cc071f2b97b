#!/usr/bin/env bash
# Dense retrieval: recall@10 against exact (Flat) search and queries/s, one thread, for FAISS HNSW32 and
# IVF-Flat at several settings, Quarry's IVF with and without SOAR spilling (at equal nprobe, and at
# equal work: entries scanned per query; bytes printed), and the auto-tuner (targets 0.90/0.95/0.99 chosen
# on 500 tuning queries, checked on the benchmark queries). Two seeded synthetic sets of clustered unit
# vectors: 200,000 x 128 (1,000 clusters, offsets of norm 1.5 around unit centres, 1,024 lists) and
# SciFact-sized 5,183 x 384 (100 clusters, offsets of norm 2, 64 lists). About 10 minutes on 2 cores.
# Pass --threads 2 to use both cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
bench="${QUARRY_BUILD_DIR:-$root/build}/bench_dense"
echo "== 200k x 128 =="
"$bench" --n 200000 --dim 128 --clusters 1000 --spread 1.5 --lists 1024 --queries 1000 "$@"
echo
echo "== SciFact-sized: 5,183 x 384 =="
"$bench" --n 5183 --dim 384 --clusters 100 --spread 2 --lists 64 --queries 300 "$@"
