#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang 14, ASan + UBSan) and runs each for SECONDS (default 60)
# from the seed corpus in tests/fuzz/corpus. Fails on any crash, leak, sanitizer report or
# violated invariant; the failing input is left in build/fuzz/artifacts/. docs/fuzzing.md.
#   scripts/fuzz.sh [SECONDS]       both harnesses, in parallel
#   FUZZ_TARGETS=csv scripts/fuzz.sh 600   one of them
#   FUZZ_SEED=1 scripts/fuzz.sh 60          a fixed libFuzzer seed (what .ci/run does), so that
#                                           the CI gate replays the same mutations every time
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
targets="${FUZZ_TARGETS:-pipeline csv}"
seed_args=()
if [ -n "${FUZZ_SEED:-}" ]; then seed_args=(-seed="$FUZZ_SEED"); fi
scripts/setup.sh fuzz

build=build/fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DSHUFFLE_R1_BUILD_TESTS=ON -DSHUFFLE_R1_BUILD_FUZZERS=ON -DSHUFFLE_R1_BUILD_TOOLS=OFF \
  -DSHUFFLE_R1_BUILD_EXAMPLES=OFF -DSHUFFLE_R1_BUILD_BENCHMARKS=OFF -DSHUFFLE_R1_INSTALL=OFF >/dev/null
names=()
for t in $targets; do names+=("shuffle_r1_fuzz_$t"); done
cmake --build "$build" --target "${names[@]}"

mkdir -p "$build/artifacts"
pids=()
for t in $targets; do
  work="$build/corpus/$t"  # grows with what the fuzzer finds; the seeds stay untouched
  # With a fixed seed, start from the seeds alone so that the run is the same every time.
  if [ -n "${FUZZ_SEED:-}" ]; then rm -rf "$work"; fi
  mkdir -p "$work"
  echo "fuzz: $t for ${seconds} s (log $build/$t.log)"
  "$build/tests/fuzz/shuffle_r1_fuzz_$t" "$work" "tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=8192 \
    -print_final_stats=1 "${seed_args[@]}" -artifact_prefix="$build/artifacts/$t-" >"$build/$t.log" 2>&1 &
  pids+=("$!")
done
status=0
i=0
for t in $targets; do
  if wait "${pids[$i]}"; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1)
    echo "fuzz: $t ok: ${runs:-?} inputs in ${seconds} s, ${cov:-cov ?}, corpus $(ls "$build/corpus/$t" | wc -l) files"
  else
    echo "fuzz: $t FAILED; the end of its log:"
    tail -40 "$build/$t.log"
    status=1
  fi
  i=$((i + 1))
done
exit $status
