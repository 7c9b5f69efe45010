#!/usr/bin/python3
"""The Python implementations of bench/compare compute the selection shuffle_r1 computes.

On small batches the loop, NumPy and PyTorch implementations of bench/compare/impls.py give the
same advantages (to float32 rounding) and identical pairs, valid ABS output, and the same
advantages and pairs as `sr1 select` on the same batch. Also checks bench/compare/batch.py, the
Python replica of shuffle_r1::synthetic_rewards the comparison is run on: Philox4x32-10 known
answers (SPEC.md section 4).

Run by ctest ("cli: test_compare_impls") or directly: /usr/bin/python3 test_compare_impls.py.
"""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr1cli  # noqa: E402
from sr1cli import select, write_batch  # noqa: E402

sys.path.insert(0, str(sr1cli.COMPARE_DIR))
import batch  # noqa: E402
import impls  # noqa: E402

TOLERANCE = 1e-5


def handmade_batch():
    """8 prompts x 8 rollouts: ties, a zero-variance group, SPEC.md's worked groups."""
    groups = [
        [1, 1, 0, 0, 0, 1, 0, 0],
        [0.9, 0.2, 0.5, 0.5, 0.1, 0.7, 0.3, 0.8],
        [1, 0, 0, 0, 0, 0, 0, 0],
        [0.9] * 8,
        [0.1, 0.1, 1.0, 1.0, 0.0, 0.9, 0.9, 0.1],
        [0.25, -1.5, 3.0, 0.0, 0.25, 0.125, -1.5, 2.0],
        [0, 1] * 4,
        [0.0] * 8,
    ]
    return np.array(groups, dtype=np.float32).reshape(-1), len(groups), 8


class CompareImplsTest(unittest.TestCase):
    def batches(self):
        yield "handmade 8x8", handmade_batch()
        for prompts, rollouts, seed in ((64, 16, 5), (48, 8, 6), (16, 2, 7)):
            yield (f"synthetic {prompts}x{rollouts}",
                   (batch.synthetic_rewards(prompts, rollouts, seed), prompts, rollouts))

    def test_implementations_agree_with_each_other_and_sr1(self):
        for name, (rewards, prompts, rollouts) in self.batches():
            with self.subTest(batch=name):
                selections = {cls.name: impls.select(cls(), rewards, prompts, rollouts, seed=3)
                              for cls in impls.IMPLEMENTATIONS}
                self.assertEqual(set(selections), {"loop", "numpy", "torch"})
                for impl, sel in selections.items():
                    self.assertEqual(impls.invariant_violations(sel), [], impl)
                    self.assertEqual(sel.pairs.shape, (prompts * int(rollouts // 2 * 0.5), 2))
                    self.assertEqual(sel.per_round,
                                     min(sel.pairs.shape[0] // 8, int(np.sum(sel.weights > 0))))
                loop = selections["loop"]
                for impl in ("numpy", "torch"):
                    self.assertEqual(impls.differences(loop, selections[impl], TOLERANCE), [],
                                     impl)

                with tempfile.TemporaryDirectory() as tmp:
                    csv = write_batch(Path(tmp) / "b.csv",
                                      [f"p{b // rollouts}" for b in range(rewards.size)], rewards)
                    out = select(csv, "--on-short", "shrink")
                for impl, sel in selections.items():
                    adv = np.asarray(out["advantages"])
                    self.assertLessEqual(float(np.max(np.abs(adv - sel.advantages))), TOLERANCE,
                                         impl)
                    self.assertTrue(np.all(sel.advantages[adv == 0] == 0), impl)
                    self.assertEqual(sel.pairs.tolist(), out["pairs"], impl)
                    np.testing.assert_allclose(sel.weights, out["pair_weights"], atol=2e-5)
                    self.assertEqual(sel.per_round, out["stats"]["per_round"], impl)

    def test_first_draw_follows_the_weights(self):
        """ABS draws pair j first with probability p_j = w_j / sum w. One round of all K = 4
        pairs per run, many seeds; the threshold is 4.5 standard deviations (fixed seeds)."""
        rewards = np.array([0.9, 0.2, 0.5, 0.5, 0.1, 0.7, 0.3, 0.8,
                            1, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
        for cls, runs in ((impls.LoopImpl, 300), (impls.NumpyImpl, 2000), (impls.TorchImpl, 2000)):
            with self.subTest(impl=cls.name):
                impl = cls(impls.Config(rounds=1))
                inputs = impl.prepare(rewards, 2, 8)
                firsts, p = [], None
                for seed in range(runs):
                    sel = impl.collect(impl.run(inputs, seed))
                    self.assertEqual(sorted(sel.order.tolist()), [0, 1, 2, 3])
                    firsts.append(int(sel.order[0]))
                    p = sel.weights / sel.weights.sum()
                share = np.bincount(firsts, minlength=4) / runs
                sd = np.sqrt(p * (1 - p) / runs)
                self.assertTrue(np.all(np.abs(share - p) <= 4.5 * sd), f"{share} vs {p}")


class SyntheticBatchTest(unittest.TestCase):
    def test_philox_known_answers(self):
        cases = [((0, 0, 0, 0), (0, 0), "6627e8d5 e169c58d bc57ac4c 9b00dbd8"),
                 ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, "408f276d 41c83b0e a20bc7c6 6d5451fd"),
                 ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
                  "d16cfe09 94fdcceb 5001e420 24126ea1")]
        for counter, key, want in cases:
            got = " ".join(f"{int(w):08x}" for w in batch.philox4x32_10(counter, key))
            self.assertEqual(got, want)

    def test_rewards_are_rule_based_and_reproducible(self):
        a = batch.synthetic_rewards(100, 16, 2024)
        self.assertEqual(a.dtype, np.float32)
        self.assertTrue(np.array_equal(a, batch.synthetic_rewards(100, 16, 2024)))
        self.assertFalse(np.array_equal(a, batch.synthetic_rewards(100, 16, 2025)))
        self.assertTrue(set(np.unique(a)) <= {np.float32(v) for v in (0, 0.1, 0.9, 1.0)})
        # Chunked generation gives the same rows as one chunk.
        self.assertTrue(np.array_equal(a, batch.synthetic_rewards(100, 16, 2024, chunk_rows=7)))


if __name__ == "__main__":
    unittest.main(verbosity=1)
