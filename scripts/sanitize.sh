#!/usr/bin/env bash
# Builds the tests, the tools and the examples with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs the whole suite (packaging and the 16M-row scale tests excepted); any report fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cmake --workflow --preset asan
