#!/usr/bin/env bash
# Runs libFuzzer targets of tests/fuzz/quarry_fuzz.cc (built by scripts/test.sh --sanitize).
#   scripts/fuzz.sh QUARRY_FUZZ_BINARY SECONDS [TARGET ...]   (default: every target)
# Each target starts from its seeds: tests/data/fuzz/<target>/ (hand-written inputs and every input
# that ever crashed it), inputs the writers make (QUARRY_FUZZ_SEEDS), and, when present, the checkpoint
# files of ../shared/fixtures and the golden tokenizer.json files (read in place, never copied).
# Prints executions and coverage per target; exits 1 if any target crashed (the crashing input is kept under $QUARRY_FUZZ_ARTIFACTS, default
# build-sanitize/fuzz-artifacts, to be added to tests/data/fuzz/<target>/ once fixed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$1 seconds=$2
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(beir msmarco jsonl queries_jsonl queries_tsv qrels run npy safetensors gguf tokenizer_json config_json sentence_transformers vocab sp_model edges
           wordnet json analyzer segment search manifest document_record block_cache resmem)
fi
artifacts=${QUARRY_FUZZ_ARTIFACTS:-$(dirname "$binary")/fuzz-artifacts}
mkdir -p "$artifacts"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
QUARRY_FUZZ_SEEDS="$tmp/generated" "$binary" >/dev/null 2>&1 || true
shared=$root/../shared/fixtures
failed=0
printf '%-16s %10s %8s %8s %s\n' target execs exec/s cov result
for t in "${targets[@]}"; do
  corpus=$tmp/corpus-$t
  mkdir -p "$corpus"
  seeds=()
  for d in "$root/tests/data/fuzz/$t" "$tmp/generated/$t"; do [ -d "$d" ] && seeds+=("$d"); done
  case $t in
    sp_model) for f in "$shared"/*/tokenizer.model; do [ -f "$f" ] && mkdir -p "$tmp/shared-$t" && ln -sf "$f" "$tmp/shared-$t/$(basename "$(dirname "$f")")"; done ;;
    vocab) for f in "$shared"/*/vocab.txt; do [ -f "$f" ] && mkdir -p "$tmp/shared-$t" && ln -sf "$f" "$tmp/shared-$t/$(basename "$(dirname "$f")")"; done ;;
    tokenizer_json) for f in "$root"/tests/data/golden/bpe/*/tokenizer.json; do [ -f "$f" ] && mkdir -p "$tmp/shared-$t" && ln -sf "$f" "$tmp/shared-$t/$(basename "$(dirname "$f")")"; done ;;
    config_json) for f in "$shared"/*/config.json; do [ -f "$f" ] && mkdir -p "$tmp/shared-$t" && ln -sf "$f" "$tmp/shared-$t/$(basename "$(dirname "$f")")"; done ;;
  esac
  [ -d "$tmp/shared-$t" ] && seeds+=("$tmp/shared-$t")
  log=$tmp/$t.log
  if QUARRY_FUZZ_TARGET=$t "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $artifacts; log below)"
    failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  printf '%-16s %10s %8s %8s %s\n' "$t" "$execs" "$rate" "$cov" "$result"
  [ "$result" = ok ] || tail -40 "$log"
done
exit $failed
