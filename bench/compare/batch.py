"""Synthetic reward batches, bit-identical to shuffle_r1::synthetic_rewards.

The C++ benchmarks (bench/bench_cpu.cpp, seed 2024) and `sr1 demo` (seed 0) draw their batches
with shuffle_r1::synthetic_rewards (include/shuffle_r1/synthetic.hpp): per prompt a difficulty
(a fifth of the prompts solved with probability 0.97, a fifth with 0.03, the rest with a
probability uniform on (0, 1)), per response reward = 0.9 * correct + 0.1 * well_formatted
(formatted with probability 0.9). Every random word is Philox4x32-10 of a counter, keyed by the
seed. This module re-implements that generator with vectorized NumPy integer arithmetic, so the
Python implementations and the C++ library are timed and checked on exactly the same batch.
"""

from __future__ import annotations

import numpy as np

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

#: The fourth counter word synthetic_rewards uses (a stream tag).
SYNTHETIC_TAG = 0xD1FF
#: The seed of the C++ benchmark batches (bench/bench_cpu.cpp).
BENCH_SEED = 2024


def philox4x32_10(counter, key):
    """Philox4x32-10 on arrays.

    counter: four arrays (or ints) of 32-bit words c0..c3, broadcast together.
    key: (k0, k1), two 32-bit ints.
    Returns the four output words as uint64 arrays holding 32-bit values.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _MASK32 for c in counter)
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0, k1 = np.uint64(key[0]) & _MASK32, np.uint64(key[1]) & _MASK32
    for _ in range(10):
        p0 = _M0 * c0  # 32 x 32 -> 64 bits: exact in uint64
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _SHIFT32) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def key_from_seed(seed: int) -> tuple[int, int]:
    """The Philox key of a 64-bit seed, low word first (shuffle_r1::philox_key_from_seed)."""
    seed &= (1 << 64) - 1
    return seed & 0xFFFFFFFF, seed >> 32


def uniform01(lo, hi) -> np.ndarray:
    """Doubles uniform on [0, 1) from the top 53 bits of (hi << 32 | lo), exactly as the library."""
    bits = (np.asarray(hi, dtype=np.uint64) << _SHIFT32) | np.asarray(lo, dtype=np.uint64)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def synthetic_rewards(prompts: int, rollouts: int, seed: int = BENCH_SEED,
                      chunk_rows: int = 1 << 20) -> np.ndarray:
    """Rewards of `prompts` x `rollouts` responses, prompt-major, float32.

    Bit-identical to shuffle_r1::synthetic_rewards<float>(prompts, rollouts, seed, ...).
    Works in chunks of `chunk_rows` rows to bound memory on large batches.
    """
    if prompts < 0 or rollouts < 0:
        raise ValueError(f"prompts = {prompts} and rollouts = {rollouts} must be >= 0")
    key = key_from_seed(seed)
    g = np.arange(prompts, dtype=np.uint64)
    d0, d1, d2, d3 = philox4x32_10((g, g >> _SHIFT32, 0, SYNTHETIC_TAG), key)
    kind = uniform01(d0, d1)
    spread = uniform01(d2, d3)
    p_correct = np.where(kind < 0.2, 0.97, np.where(kind < 0.4, 0.03, spread))

    rows = prompts * rollouts
    out = np.empty(rows, dtype=np.float32)
    for start in range(0, rows, chunk_rows):
        row = np.arange(start, min(rows, start + chunk_rows), dtype=np.uint64)
        r0, r1, r2, r3 = philox4x32_10((row, row >> _SHIFT32, 1, SYNTHETIC_TAG), key)
        correct = uniform01(r0, r1) < p_correct[(row // np.uint64(rollouts)).astype(np.int64)]
        formatted = uniform01(r2, r3) < 0.9
        # Computed in double, rounded once to float, as the C++ code does.
        out[start:start + row.size] = (0.9 * correct + 0.1 * formatted).astype(np.float32)
    return out
