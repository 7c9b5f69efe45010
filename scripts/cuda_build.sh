#!/usr/bin/env bash
# Configures and builds the CUDA preset (build/cuda): the CUDA tests, the compile-fail check,
# the CUDA benchmark, the CUDA example and sr1 with --backend cuda, with nvcc from
# /usr/local/cuda (CUDA 12 or later) for sm_90 (H100 / H200). Then runs the CUDA tests: without
# a GPU the device tests are reported as skipped; the host checks of the device code, the
# compile-fail check and sr1's no-device message still run.
#   scripts/cuda_build.sh            configure, build, test
#   scripts/cuda_build.sh --no-test  configure and build only
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests=1
for arg in "$@"; do
  case "$arg" in
    --no-test) run_tests=0 ;;
    *) echo "usage: scripts/cuda_build.sh [--no-test]" >&2; exit 2 ;;
  esac
done

nvcc=/usr/local/cuda/bin/nvcc
if [[ ! -x "$nvcc" ]]; then
  echo "cuda_build: $nvcc not found; install the CUDA toolkit (12.0 or later)" >&2
  exit 1
fi
scripts/setup.sh test

start=$(date +%s)
echo "== cuda_build: configure (preset cuda, $("$nvcc" --version | tail -1))"
cmake --preset cuda
echo "== cuda_build: build"
cmake --build --preset cuda
echo "== cuda_build: built in $(( $(date +%s) - start )) s"
if (( run_tests )); then
  echo "== cuda_build: test (device tests are skipped when no GPU is present)"
  ctest --preset cuda
fi
