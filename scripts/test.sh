#!/usr/bin/env bash
# Builds everything and runs every test (unit tests in C++17 and C++20, compile-fail checks,
# packaging, CLI end to end, reproduction of the authors' release).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cmake --workflow --preset release
