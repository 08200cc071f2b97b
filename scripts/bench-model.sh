#!/usr/bin/env bash
# Prompt-processing speed of Quarry's Llama forward beside llama.cpp's, in the same run, on a
# random-weight checkpoint the benchmark writes itself (0.42B llama shape: hidden 896, 24 layers, 14/2
# heads, FFN 4864, vocab 32768): F32, BF16, Q8_0 and Q4_0; 128 and 512 tokens; 1 and 2 threads (median
# of 3); peak RSS against the bytes of the weights as each system holds them.
# Quarry reads the safetensors checkpoints (F32; BF16 used in place, exact float32 arithmetic, and as
# BF16-DOT with bf16-rounded activations, on AVX512-BF16 where present, as llama.cpp computes BF16)
# and the GGUF files (Q8_0 and Q4_0 kept in their blocks and dequantized per panel as they are
# multiplied, exact float32 arithmetic; and as Q8_0-INT8 / Q4_0-INT8, repacked for int8 dot products
# with activations quantized per 32 values as llama.cpp quantizes them:
# LoadOptions::quantized_activations). Then the int8 products alone on each kernel the CPU has
# (AVX512-VNNI, AVX2) beside the float32 sgemm (tools/bench/bench_int8.cc). llama.cpp is
# llama-cpp-python compiled from its sdist (tools/goldens/requirements-decoders.txt, $QUARRY_VENV_LLAMA; the first run compiles it,
# ~15 minutes on 2 cores) on GGUF files of the same weights written by tools/bench/llama_cpp_peer.py.
# Both print the last token's top logit: equal models give equal ones. Needs ~5 GiB under $TMPDIR;
# takes ~10 minutes.
#   scripts/bench-model.sh [TOKENS ...]          (default: 128 512)
#   scripts/bench-model.sh --real [TOKENS ...]   the real GGUF decoders of scripts/models.sh instead: each
#                                                file as stored, with 8-bit activations (-INT8), and llama.cpp
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
real=0
if [ "${1:-}" = --real ]; then real=1; shift; fi
lengths=("$@")
[ ${#lengths[@]} -gt 0 ] || lengths=(128 512)
"$root/scripts/build.sh" -DQUARRY_BUILD_BENCH=ON >/dev/null
bench=${QUARRY_BUILD_DIR:-$root/build}/bench_model
python=$(QUARRY_VENV=${QUARRY_VENV_LLAMA:-$HOME/.cache/quarry/venv-llama} CMAKE_ARGS="-DLLAVA_BUILD=OFF" \
  "$root/scripts/venv.sh" "$root/tools/goldens/requirements-decoders.txt")
peer=("$python" "$root/tools/bench/llama_cpp_peer.py")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out.txt
if [ $real = 1 ]; then
  mapfile -t models < <("$root/scripts/models.sh" --list decoders)
  "$root/scripts/models.sh" "${models[@]}" >&2
  for model in "${models[@]}"; do
    file=${QUARRY_MODELS:-$HOME/.cache/quarry/models}/$model/model.gguf
    "$bench" "$file" "$model" "${lengths[@]}" | tee -a "$out"
    "$bench" "$file" "$model-INT8" "${lengths[@]}" | tee -a "$out"
    "${peer[@]}" bench "$file" "$model" "${lengths[@]}" | tee -a "$out"
  done
else
  "$bench" "$tmp/f32" f32 "${lengths[@]}" | tee -a "$out"
  "$bench" "$tmp/bf16" bf16 "${lengths[@]}" | tee -a "$out"
  "$bench" "$tmp/bf16" bf16-dot "${lengths[@]}" | tee -a "$out"
  rm -rf "$tmp/bf16"
  for type in F32 BF16 Q8_0 Q4_0; do
    "${peer[@]}" convert "$tmp/f32" "$tmp/$type.gguf" "$type"
    "${peer[@]}" bench "$tmp/$type.gguf" "$type" "${lengths[@]}" | tee -a "$out"
    case $type in Q8_0 | Q4_0)
      "$bench" "$tmp/$type.gguf" "$type" "${lengths[@]}" | tee -a "$out"
      "$bench" "$tmp/$type.gguf" "$type-INT8" "${lengths[@]}" | tee -a "$out" ;;
    esac
    rm -f "$tmp/$type.gguf"
  done
fi
python3 - "$out" <<'PY'
import json, sys
speed, rss, top = {}, {}, {}
labels = []  # Quarry's, in the order they ran
for line in open(sys.argv[1]):  # JSON lines from bench_model and llama_cpp_peer.py
    if not line.startswith("{"):
        continue
    f = json.loads(line)
    system, dtype = f["system"], f["dtype"].upper()
    if system == "quarry" and dtype not in labels:
        labels.append(dtype)
    if "tok_per_s" in f:
        speed[(system, dtype, f["tokens"], f["threads"])] = f["tok_per_s"]
    elif "last_argmax" in f:
        top[(system, dtype, f["tokens"])] = (f["last_argmax"], f"{f['last_max']:.4f}")
    elif "peak_rss_MiB" in f:
        rss[(system, dtype)] = (f"{f['peak_rss_MiB']:.0f}", f"{f['weights_MiB']:.0f}" if "weights_MiB" in f else "-")
def peer_of(label):  # BF16-DOT is compared with llama.cpp's BF16, X-INT8 with its X
    for suffix in ("-DOT", "-INT8"):
        if label.endswith(suffix):
            return label[: -len(suffix)]
    return label
width = max(9, max(len(l) for l in labels))
print("\n== prompt processing, tokens/s: Quarry / llama.cpp (ratio); same run, same weights")
lengths = sorted({k[2] for k in speed})
print(f"{'weights':{width}} {'threads':>7} " + " ".join(f"{str(n) + ' tokens':>24}" for n in lengths))
for dtype in labels:
    peer = peer_of(dtype)
    for threads in (1, 2):
        cells = []
        for n in lengths:
            q, l = speed.get(("quarry", dtype, n, threads)), speed.get(("llama.cpp", peer, n, threads))
            cells.append(f"{q:7.1f} / {l:7.1f} ({q / l:4.2f}x)" if q and l else "-")
        print(f"{dtype:{width}} {threads:>7} " + " ".join(f"{c:>24}" for c in cells))
print("\n== peak RSS, MiB (Quarry: weights as held / peak; llama.cpp: peak, weights mapped from the file)")
for dtype in labels:
    q, l = rss.get(("quarry", dtype), ("-", "-")), rss.get(("llama.cpp", peer_of(dtype)), ("-", "-"))
    print(f"{dtype:{width}} Quarry {q[1]:>6} / {q[0]:>6}   llama.cpp {l[0]:>6}")
print("\n== last token's top logit (id, value): the two systems compute the same model")
for (system, dtype, n), (arg, val) in sorted(top.items()):
    print(f"{dtype:{width}} {n:5} tokens  {system:10} {arg:>6} {val}")
PY
if [ $real = 0 ]; then
  echo
  echo "== int8 products alone, GOP/s per kernel (ratio to the float32 sgemm on the dequantized matrix)"
  "${QUARRY_BUILD_DIR:-$root/build}/bench_int8" "${lengths[@]}"
fi
