#!/usr/bin/env bash
# Installs the Debian 12 packages shuffle_r1 needs, only those missing; safe to run again.
#   scripts/setup.sh demo   what building sr1 needs
#   scripts/setup.sh test   plus the test, benchmark and comparison dependencies (default)
#   scripts/setup.sh fuzz   plus clang 14 and its libFuzzer/sanitizer runtimes
set -euo pipefail

profile="${1:-test}"
packages=(g++ cmake ninja-build libeigen3-dev libcli11-dev)
if [[ "$profile" == "test" || "$profile" == "fuzz" ]]; then
  packages+=(doctest-dev libbenchmark-dev python3 python3-numpy python3-torch python3-matplotlib)
  [[ "$profile" == "fuzz" ]] && packages+=(clang-14 libclang-rt-14-dev)
elif [[ "$profile" != "demo" ]]; then
  echo "usage: scripts/setup.sh [demo|test|fuzz]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
