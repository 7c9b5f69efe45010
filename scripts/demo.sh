#!/usr/bin/env bash
# Builds sr1 and runs the main job: the demo on its built-in default batch.
# Extra arguments go to `sr1 demo` (for example --prompts 4096 --seed 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cmake --workflow --preset demo >/dev/null
exec build/demo/tools/sr1/sr1 demo "$@"
