#!/usr/bin/env bash
# BlockRank scoring time for N = 10, 20, 50, 100 documents of 128 tokens, with block-sparse attention
# beside the same tokens through the same layers with full causal attention (ratio = causal / BlockRank), on a
# random-weight checkpoint the benchmark writes (hidden 1024, 16 layers, 16/4 heads, FFN 2816, vocab
# 32768; scoring layer 8). Then decoupled query time over N cached documents beside its two lower
# bounds, measured in the same run: the query block's FLOPs at the GEMM rate, and the cached bytes at
# the memory bandwidth (time/bound: the issue's goal is <= 2x). Needs ~1 GiB of disk under $TMPDIR.
# Takes ~5 minutes on 2 cores.
#   scripts/bench-rerank.sh [N ...]
#   scripts/bench-rerank.sh --mistral-7b [N [--bf16-activations]]   Mistral-7B's shape in bf16 (21 of
#     32 layers, scoring layer 20): one query over N (default 20) documents, uncached and decoupled,
#     and the peak RSS; with --bf16-activations, on the BF16 dot-product kernel.
#     Needs ~9.5 GiB of disk under $TMPDIR and ~10 GiB of memory; takes ~10 minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bench=${QUARRY_BUILD_DIR:-$root/build}/bench_rerank
if [ "${1:-}" = --mistral-7b ]; then
  shift
  "$bench" --mistral-7b "$tmp/model" "$@"
  exit
fi
if [ $# -eq 0 ]; then set -- 10 20 50 100; fi
"$bench" "$tmp/model" "$@"
