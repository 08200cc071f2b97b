#!/usr/bin/env bash
# Prompt-processing speed of Quarry's Llama forward on random-weight checkpoints that the benchmark
# writes itself (0.42B llama shape: hidden 896, 24 layers, 14/2 heads, FFN 4864, vocab 32768), F32 and
# BF16, 128 and 512 tokens, 1 and 2 threads (median of 3), and peak RSS against weight bytes.
# Peer: llama.cpp on the same shape and machine (../shared/DESIGN.md): 512 tokens F32 94 tok/s
# (1 thread) / 160 (2 threads); BF16 175 / 272. Needs ~3 GiB of disk under $TMPDIR for the checkpoints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
bench=${QUARRY_BUILD_DIR:-$root/build}/bench_model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for dtype in f32 bf16; do
  "$bench" "$tmp/$dtype" "$dtype" 128 512 | tee -a "$tmp/out.txt"
  rm -rf "${tmp:?}/$dtype"
done
python3 - "$tmp/out.txt" <<'PY'
import re, sys
peer = {("F32", 1): 94, ("F32", 2): 160, ("BF16", 1): 175, ("BF16", 2): 272}
print("\n== 512 tokens against llama.cpp (same shape, these machines)")
for line in open(sys.argv[1]):
    m = re.match(r"dtype=(\w+) tokens=512 threads=(\d) median_s=[\d.]+ tok_per_s=([\d.]+)", line)
    if m:
        d, t, v = m.group(1), int(m.group(2)), float(m.group(3))
        print(f"{d:5} {t} thread(s): Quarry {v:6.1f} tok/s, llama.cpp {peer[(d, t)]} tok/s, ratio {v / peer[(d, t)]:.2f}x")
PY
