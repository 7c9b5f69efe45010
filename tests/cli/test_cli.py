#!/usr/bin/python3
"""End-to-end tests of the sr1 tool: `sr1 demo` and `sr1 select`.

Checks the JSON of `sr1 select` against the worked numbers of SPEC.md and against invariants
recomputed here from the input (advantages, pairs, weights, order, rows, stats), reproducibility
(same seed and step: same bytes), group ids and CSV dialects, and the error contract: bad input
or options give exit status 2, exactly one line on stderr naming the file line or the option,
nothing on stdout, and an existing --output file left byte for byte untouched with no temporary
file next to it.

Run by ctest ("cli: test_cli", env SR1 = the binary) or directly: /usr/bin/python3 test_cli.py.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr1cli  # noqa: E402
from sr1cli import run, select, write_batch, write_csv  # noqa: E402

sys.path.insert(0, str(sr1cli.COMPARE_DIR))
import batch as synthetic  # noqa: E402  (bit-exact replica of shuffle_r1::synthetic_rewards)
import numpy as np  # noqa: E402

# SPEC.md section 2/3 worked group.
WORKED = [1, 1, 0, 0, 0, 1, 0, 0]


# ------------------------------------------------------------------------------------------
# Reference computations (float64) used by the invariant checks.

def group_rows(groups) -> dict:
    """group name -> its rows in batch order; dict order = first appearance."""
    rows: dict = {}
    for b, g in enumerate(groups):
        rows.setdefault(g, []).append(b)
    return rows


def expected_advantages(groups, rewards, estimator="grpo", ddof=1, eps=1e-6) -> list[float]:
    """SPEC.md section 2 in float64; zero-variance groups exactly 0. Groups of >= 2 rows."""
    adv = [0.0] * len(rewards)
    batch_mean = sum(rewards) / len(rewards)
    batch_sigma = math.sqrt(sum((x - batch_mean) ** 2 for x in rewards) / (len(rewards) - ddof))
    for rows in group_rows(groups).values():
        x = [rewards[b] for b in rows]
        n, mu = len(x), sum(x) / len(x)
        if max(x) == min(x):
            continue
        sigma = math.sqrt(sum((v - mu) ** 2 for v in x) / (n - ddof))
        for b, v in zip(rows, x):
            adv[b] = {"grpo": (v - mu) / (sigma + eps), "mean_only": v - mu,
                      "rloo": v - (sum(x) - v) / (n - 1),
                      "batch_std": (v - mu) / (batch_sigma + eps)}[estimator]
    return adv


def expected_pairs(groups, rewards, keep_ratio=0.5, keep_pairs=None) -> list[list[int]]:
    """SPEC.md section 3 for even groups. Every estimator is increasing in the reward inside a
    group, so sorting by reward (descending, stable) is sorting by advantage, with exact ties."""
    pairs = []
    for rows in group_rows(groups).values():
        s = sorted(rows, key=lambda b: rewards[b], reverse=True)  # stable
        p = len(s) // 2
        m = keep_pairs if keep_pairs is not None else math.floor(keep_ratio * p)
        pairs += [[s[k], s[len(s) - 1 - k]] for k in range(m)]
    return pairs


def pair_weight(a_hi: float, a_lo: float, kind: str) -> float:
    return {"sum": abs(a_hi) + abs(a_lo), "max": max(abs(a_hi), abs(a_lo)),
            "mean": (abs(a_hi) + abs(a_lo)) / 2, "pos": abs(max(a_hi, a_lo))}[kind]


# ------------------------------------------------------------------------------------------

class TempDirTest(unittest.TestCase):
    """A fresh temporary directory per test."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sr1_cli_"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def batch_csv(self, groups, rewards, name="batch.csv") -> Path:
        return write_batch(self.dir / name, groups, rewards)

    def assert_valid_selection(self, out, groups, rewards, *, estimator="grpo", ddof=1, eps=1e-6,
                               keep_ratio=0.5, keep_pairs=None, weight="sum", rounds=8,
                               per_round=None, on_short="error", every_pair_has_mass=False,
                               dtype="float32", atol=2e-6):
        """Every field of `out` is what the options imply for this (even-group) batch.

        every_pair_has_mass: the transform gives zero-weight pairs mass too (power with
        coeff 0, softmax, inverse), so they may be drawn and count as non-zero pairs.
        dtype: sr1 rounds the rewards to it before computing (in double).
        """
        if dtype == "float32":
            rewards = [float(np.float32(r)) for r in rewards]
        B = len(rewards)
        adv = out["advantages"]
        rows_of = group_rows(groups)
        group_of = {b: g for g, rows in rows_of.items() for b in rows}

        # Advantages, in input order; zero-variance groups exactly 0.
        want = expected_advantages(groups, rewards, estimator, ddof, eps)
        self.assertEqual(len(adv), B)
        for b in range(B):
            self.assertAlmostEqual(adv[b], want[b], delta=atol * max(1.0, abs(want[b])),
                                   msg=f"advantage of row {b}")
        zero_var = [g for g, rows in rows_of.items() if len({rewards[b] for b in rows}) == 1]
        for g in zero_var:
            self.assertTrue(all(adv[b] == 0.0 for b in rows_of[g]), f"group {g!r} not exactly 0")

        # Groups, their means and stds.
        self.assertEqual(out["groups"], [str(g) for g in rows_of])
        for i, rows in enumerate(rows_of.values()):
            x = [rewards[b] for b in rows]
            mu = sum(x) / len(x)
            self.assertAlmostEqual(out["group_mean"][i], mu, delta=1e-12 * max(1, abs(mu)))
            sd = 0.0 if max(x) == min(x) else math.sqrt(
                sum((v - mu) ** 2 for v in x) / (len(x) - ddof))
            self.assertAlmostEqual(out["group_std"][i], sd, delta=1e-12 * max(1, sd))

        # Pairs: the expected ones, in group order then rank; and their invariants.
        pairs = out["pairs"]
        self.assertEqual(pairs, expected_pairs(groups, rewards, keep_ratio, keep_pairs))
        used = [b for p in pairs for b in p]
        self.assertEqual(len(used), len(set(used)), "pairs are not disjoint")
        for hi, lo in pairs:
            self.assertEqual(group_of[hi], group_of[lo], "a pair spans two groups")
            self.assertGreaterEqual(adv[hi], adv[lo])
        K = len(pairs)
        self.assertEqual(len(out["pair_weights"]), K)
        for (hi, lo), w in zip(pairs, out["pair_weights"]):
            want_w = pair_weight(adv[hi], adv[lo], weight)
            self.assertAlmostEqual(w, want_w, delta=1e-6 * max(1.0, want_w))

        # Order: S rounds of T distinct pairs; rows are the drawn pairs' rows.
        order, weights = out["order"], out["pair_weights"]
        nonzero = K if every_pair_has_mass else sum(1 for w in weights if w > 0)
        T = per_round if per_round is not None else K // rounds
        if on_short == "shrink":
            T = min(T, nonzero)
        self.assertEqual(len(order), rounds * T)
        for s in range(rounds):
            chunk = order[s * T:(s + 1) * T]
            self.assertEqual(len(set(chunk)), len(chunk), f"round {s} repeats a pair")
            self.assertTrue(all(0 <= j < K for j in chunk))
            if every_pair_has_mass:
                continue  # any pairs may be drawn
            # Only pairs of non-zero weight; under fill, all of them first, then zero-weight ones.
            k = min(T, nonzero) if on_short == "fill" else T
            self.assertTrue(all(weights[j] > 0 for j in chunk[:k]), "a zero-weight pair drawn")
            self.assertTrue(all(weights[j] == 0 for j in chunk[k:]))
        self.assertEqual(out["rows"], [b for j in order for b in pairs[j]])

        # Stats.
        st = out["stats"]
        counts = Counter(order)
        histogram = [0] * (rounds + 1)
        for j in range(K):
            histogram[counts[j]] += 1
        self.assertEqual(st["rows"], B)
        self.assertEqual(st["groups"], len(rows_of))
        self.assertEqual(st["zero_variance_groups"], len(zero_var))
        self.assertEqual(st["pairs"], K)
        self.assertEqual(st["nonzero_pairs"], nonzero)
        self.assertEqual(st["rounds"], rounds)
        self.assertEqual(st["per_round"], T)
        self.assertEqual(st["order_size"], len(order))
        self.assertEqual(st["distinct_pairs_used"], len(counts))
        self.assertEqual(st["multiplicity_histogram"], histogram)
        self.assertAlmostEqual(st["collapse_ratio_all"],
                               sum(abs(a) < 0.1 for a in adv) / B, places=12)
        if K:
            self.assertAlmostEqual(st["collapse_ratio_after_pts"],
                                   sum(abs(adv[b]) < 0.1 for b in used) / len(used), places=12)
        if order:
            self.assertAlmostEqual(st["nonzero_gradient_ratio"],
                                   sum(adv[b] != 0 for b in out["rows"]) / len(out["rows"]),
                                   places=12)


def random_batch(rng: random.Random, groups: int, continuous: bool):
    """Ragged even groups with string ids in shuffled row order, ties and zero-variance groups."""
    names, rewards = [], []
    for g in range(groups):
        n = rng.choice([2, 4, 6, 8, 16])
        kind = rng.random()
        for _ in range(n):
            if kind < 0.2:
                r = 0.9  # zero variance (the release's float32 residue case)
            elif continuous:
                r = round(rng.uniform(-1, 2), 3)
            else:
                r = 0.9 * (rng.random() < 0.5) + 0.1 * (rng.random() < 0.9)
            names.append(f"prompt {g:03d}/{'ab'[g % 2]}")
            rewards.append(r)
    order = list(range(len(rewards)))
    rng.shuffle(order)
    return [names[i] for i in order], [rewards[i] for i in order]


# ------------------------------------------------------------------------------------------

class DemoTest(unittest.TestCase):
    """`sr1 demo` prints its summary, and its numbers are `sr1 select`'s on the same batch."""

    PATTERNS = {
        "header": r"(\d+) prompts x (\d+) rollouts = (\d+) rows \(seed (\d+)\)",
        "groups": r"^\s*groups\s+(\d+)\s*$",
        "zero_variance": r"zero-variance groups\s+(\d+) \(([\d.]+)%\)",
        "pairs": r"pairs kept \(PTS, alpha 0\.5\)\s+(\d+) of (\d+) \((\d+) with non-zero weight\)",
        "shuffle": r"shuffled batch \(ABS\)\s+(\d+) rounds x (\d+) pairs = (\d+) pairs, (\d+) rows",
        "distinct": r"distinct pairs used\s+(\d+) of (\d+)",
        "histogram": r"pair multiplicity histogram\s+((?:\s*\d+x:\d+)+)\s*$",
        "collapse": r"rows with \|A\| < 0\.1\s+([\d.]+)% of all rows, ([\d.]+)% after PTS, "
                    r"([\d.]+)% of the training batch",
        "nonzero": r"non-zero-gradient rows\s+([\d.]+)% of the training batch",
        "time": r"time \(1 CPU thread\)\s+([\d.]+) us per step",
    }

    def summary(self, *args) -> dict:
        done = run("demo", *args)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        found = {}
        for name, pattern in self.PATTERNS.items():
            m = re.search(pattern, done.stdout, re.MULTILINE)
            self.assertIsNotNone(m, f"demo output lacks the {name} line:\n{done.stdout}")
            found[name] = m.groups()
        return found

    def check_against_select(self, prompts, rollouts, seed):
        s = self.summary("--prompts", prompts, "--rollouts", rollouts, "--seed", seed)
        self.assertEqual(s["header"], (str(prompts), str(rollouts), str(prompts * rollouts),
                                       str(seed)))
        rewards = synthetic.synthetic_rewards(prompts, rollouts, seed)
        groups = [f"p{b // rollouts}" for b in range(prompts * rollouts)]
        with tempfile.TemporaryDirectory() as tmp:
            out = select(write_batch(Path(tmp) / "demo.csv", groups, rewards))
        st = out["stats"]
        self.assertEqual(int(s["groups"][0]), prompts)
        self.assertEqual(int(s["zero_variance"][0]), st["zero_variance_groups"])
        self.assertEqual(s["pairs"], (str(st["pairs"]), str(prompts * rollouts // 2),
                                      str(st["nonzero_pairs"])))
        self.assertEqual(s["shuffle"], (str(st["rounds"]), str(st["per_round"]),
                                        str(st["order_size"]), str(2 * st["order_size"])))
        self.assertEqual(s["distinct"], (str(st["distinct_pairs_used"]), str(st["pairs"])))
        histogram = [int(c) for _, c in re.findall(r"(\d+)x:(\d+)", s["histogram"][0])]
        self.assertEqual(histogram, st["multiplicity_histogram"])
        self.assertEqual(sum(histogram), st["pairs"])
        self.assertEqual(sum(m * c for m, c in enumerate(histogram)), st["order_size"])
        train = [abs(out["advantages"][b]) < 0.1 for b in out["rows"]]
        self.assertEqual(s["collapse"], (f"{100 * st['collapse_ratio_all']:.1f}",
                                         f"{100 * st['collapse_ratio_after_pts']:.1f}",
                                         f"{100 * sum(train) / max(1, len(train)):.1f}"))
        self.assertEqual(s["nonzero"][0], f"{100 * st['nonzero_gradient_ratio']:.1f}")
        self.assertGreater(float(s["time"][0]), 0.0)
        return s

    def test_default_summary_is_the_paper_configuration(self):
        s = self.summary()
        self.assertEqual(s["header"], ("512", "16", "8192", "0"))
        self.assertEqual(s["groups"], ("512",))
        self.assertEqual(s["pairs"][:2], ("2048", "4096"))  # alpha 0.5: 4 of 8 pairs per group
        self.assertEqual(s["shuffle"], ("8", "256", "2048", "4096"))  # S = 8, T = 256

    def test_default_summary_matches_select_on_the_same_batch(self):
        self.check_against_select(512, 16, 0)

    def test_other_sizes_and_seeds_match_select(self):
        self.check_against_select(64, 8, 3)
        self.check_against_select(40, 2, 7)  # one pair per group, none kept

    def test_bad_demo_options_exit_2_with_one_line(self):
        for args, option in ((["--prompts", "0"], "--prompts"), (["--rollouts", "1"], "--rollouts"),
                             (["--rollouts", "x"], "--rollouts"), (["--seed", "x"], "--seed"),
                             (["--rollouts", "3"], "odd")):
            with self.subTest(args=args):
                done = run("demo", *args)
                self.assertEqual(done.returncode, 2)
                self.assertEqual(done.stdout, "")
                self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
                self.assertIn(option, done.stderr)


class SelectWorkedNumbersTest(TempDirTest):
    """SPEC.md's worked numbers through `sr1 select`."""

    def test_grpo_worked_group(self):
        out = select(self.batch_csv(["g"] * 8, WORKED))
        for b, r in enumerate(WORKED):
            self.assertAlmostEqual(out["advantages"][b], 1.2076 if r else -0.7246, delta=5e-5)
        self.assertEqual(out["pairs"], [[0, 7], [1, 6]])
        for w in out["pair_weights"]:
            self.assertAlmostEqual(w, 1.9322, delta=5e-5)
        self.assertAlmostEqual(out["group_mean"][0], 0.375, places=12)
        self.assertAlmostEqual(out["group_std"][0], 0.517549, delta=1e-6)
        # K = 2 pairs < S = 8 rounds: T = K // S = 0, an empty training batch.
        self.assertEqual((out["order"], out["rows"], out["stats"]["per_round"]), ([], [], 0))

    def test_estimator_conventions(self):
        csv = self.batch_csv(["g"] * 8, WORKED)
        for options, one, zero in ((["--eps", "1e-4"], 1.2074, -0.7244),
                                   (["--ddof", "0", "--eps", "1e-8"], 1.2910, -0.7746),
                                   (["--estimator", "mean_only"], 0.6250, -0.3750),
                                   (["--estimator", "rloo"], 0.7143, -0.4286)):
            with self.subTest(options=options):
                for dtype in ("float32", "float64"):
                    adv = select(csv, *options, "--dtype", dtype)["advantages"]
                    for b, r in enumerate(WORKED):
                        self.assertAlmostEqual(adv[b], one if r else zero, delta=5e-5)

    def test_float64_agrees_with_double_arithmetic(self):
        rewards = [0.9, 0.2, 0.5, 0.5, 0.1, 0.7, 0.3, 0.8]
        out = select(self.batch_csv(["g"] * 8, rewards), "--dtype", "float64")
        for a, want in zip(out["advantages"], expected_advantages(["g"] * 8, rewards)):
            self.assertAlmostEqual(a, want, delta=1e-13)
        self.assertEqual(out["stats"]["dtype"], "float64")

    def test_kept_pairs_and_weights(self):
        for rewards, pairs, weights in (
                ([0.9, 0.2, 0.5, 0.5, 0.1, 0.7, 0.3, 0.8], [[0, 4], [7, 1]], [2.7792, 2.0844]),
                ([1, 0, 0, 0, 0, 0, 0, 0], [[0, 7], [1, 6]], [None, 0.7071])):
            with self.subTest(rewards=rewards):
                out = select(self.batch_csv(["g"] * 8, rewards), "--keep-ratio", "0.5")
                self.assertEqual(out["pairs"], pairs)
                for w, want in zip(out["pair_weights"], weights):
                    if want is not None:
                        self.assertAlmostEqual(w, want, delta=5e-5)

    def test_ties_rank_one_takes_the_last_tied_minimum(self):
        out = select(self.batch_csv(["g"] * 8, WORKED), "--keep-ratio", "1")
        self.assertEqual(out["pairs"], [[0, 7], [1, 6], [5, 4], [2, 3]])  # dropped: (5,4), (2,3)

    def test_pair_weight_kinds(self):
        rewards = [0.9, 0.2, 0.5, 0.5, 0.1, 0.7, 0.3, 0.8]
        for kind in ("sum", "max", "mean", "pos"):
            with self.subTest(weight=kind):
                out = select(self.batch_csv(["g"] * 8, rewards), "--weight", kind,
                             "--keep-ratio", "1", "--rounds", "2")
                self.assert_valid_selection(out, ["g"] * 8, rewards, keep_ratio=1, weight=kind,
                                            rounds=2)

    def test_zero_variance_group_is_exactly_zero(self):
        groups = ["flat"] * 16 + ["mixed"] * 8
        rewards = [0.9] * 16 + WORKED
        out = select(self.batch_csv(groups, rewards), "--keep-ratio", "1", "--rounds", "2",
                     "--on-short", "shrink")
        self.assertEqual(out["advantages"][:16], [0] * 16)  # the release: about -0.056
        self.assertEqual(out["stats"]["zero_variance_groups"], 1)
        self.assertEqual(out["pair_weights"][:8], [0] * 8)
        self.assert_valid_selection(out, groups, rewards, keep_ratio=1, rounds=2,
                                    on_short="shrink")

    def test_policies_for_odd_and_singleton_groups(self):
        groups = ["odd"] * 5 + ["one"]
        rewards = [0.9, 0.1, 0.5, 0.3, 0.7, 2.0]
        csv = self.batch_csv(groups, rewards)
        out = select(csv, "--odd", "drop_median", "--singleton", "verl", "--keep-ratio", "1",
                     "--rounds", "1", "--dtype", "float64")
        self.assertEqual(out["pairs"], [[0, 1], [4, 3]])  # the median row 2 is left out
        self.assertAlmostEqual(out["advantages"][5], 2.0 / (1 + 1e-6), delta=1e-12)
        self.assertEqual(out["stats"]["singleton_groups"], 1)
        out = select(csv, "--odd", "drop_median", "--singleton", "zero", "--rounds", "1")
        self.assertEqual(out["advantages"][5], 0)

    def test_explicit_keep_pairs_and_per_round(self):
        groups, rewards = ["a"] * 8 + ["b"] * 8, [0.1 * i for i in range(8)] + WORKED
        out = select(self.batch_csv(groups, rewards), "--keep-pairs", "3", "--rounds", "3",
                     "--per-round", "4")
        self.assert_valid_selection(out, groups, rewards, keep_pairs=3, rounds=3, per_round=4)

    def test_short_policies(self):
        groups = ["a", "a", "b", "b", "c", "c", "d", "d"]
        rewards = [1, 0, 1, 1, 0, 0, 0.5, 0.5]  # one pair of non-zero weight among four
        csv = self.batch_csv(groups, rewards)
        for policy in ("shrink", "fill"):
            with self.subTest(policy=policy):
                out = select(csv, "--keep-ratio", "1", "--rounds", "3", "--per-round", "2",
                             "--on-short", policy)
                self.assert_valid_selection(out, groups, rewards, keep_ratio=1, rounds=3,
                                            per_round=2, on_short=policy)


class SelectInvariantsTest(TempDirTest):
    """Random batches: every output field recomputed from the input."""

    def test_random_batches(self):
        configs = [  # (options, the matching keyword arguments of assert_valid_selection)
            ([], {}),
            (["--keep-ratio", "1", "--rounds", "4"], {"keep_ratio": 1, "rounds": 4}),
            (["--keep-ratio", "0.75", "--weight", "max", "--on-short", "shrink"],
             {"keep_ratio": 0.75, "weight": "max", "on_short": "shrink"}),
            (["--estimator", "mean_only", "--weight", "pos", "--on-short", "fill"],
             {"estimator": "mean_only", "weight": "pos", "on_short": "fill"}),
            (["--estimator", "rloo", "--weight", "mean", "--rounds", "3", "--on-short", "shrink"],
             {"estimator": "rloo", "weight": "mean", "rounds": 3, "on_short": "shrink"}),
            (["--estimator", "batch_std", "--ddof", "0", "--on-short", "shrink"],
             {"estimator": "batch_std", "ddof": 0, "on_short": "shrink"}),
            (["--eps", "0.01", "--transform", "log_softmax", "--step", "1", "--total-steps", "4",
              "--on-short", "shrink"], {"eps": 0.01, "on_short": "shrink"}),
            (["--transform", "softmax", "--step", "3", "--total-steps", "3"],
             {"every_pair_has_mass": True}),
            (["--transform", "inverse"], {"every_pair_has_mass": True}),
            (["--coeff", "0", "--dtype", "float64"],
             {"every_pair_has_mass": True, "dtype": "float64", "atol": 1e-12}),
            (["--coeff", "2", "--per-round", "1", "--on-short", "shrink"],
             {"per_round": 1, "on_short": "shrink"}),
        ]
        for seed in range(6):
            rng = random.Random(seed)
            groups, rewards = random_batch(rng, rng.randint(1, 40), continuous=seed % 2 == 1)
            csv = self.batch_csv(groups, rewards)
            for options, expect in configs:
                with self.subTest(seed=seed, options=options):
                    out = select(csv, *options, "--seed", str(seed))
                    self.assert_valid_selection(out, groups, rewards, **expect)


class DeterminismTest(TempDirTest):
    """Same (input, options, seed, step): same bytes; another seed or step: another order."""

    def setUp(self):
        super().setUp()
        rng = random.Random(11)
        self.groups = [f"q{b // 16}" for b in range(256)]
        self.rewards = [round(rng.random(), 2) for _ in range(256)]  # K = 64 pairs, T = 8
        self.csv = self.batch_csv(self.groups, self.rewards)

    def test_same_seed_same_bytes(self):
        first = run("select", "--input", self.csv, "--seed", "5", "--step", "3")
        second = run("select", "--input", self.csv, "--seed", "5", "--step", "3")
        self.assertEqual(first.returncode, 0)
        self.assertEqual(first.stdout, second.stdout)
        self.assertEqual(json.loads(first.stdout)["stats"]["seed"], 5)
        self.assertEqual(json.loads(first.stdout)["stats"]["step"], 3)

    def test_other_seed_or_step_other_order_same_pairs(self):
        base = select(self.csv, "--seed", "5", "--step", "3")
        self.assert_valid_selection(base, self.groups, self.rewards)
        for options in (["--seed", "6", "--step", "3"], ["--seed", "5", "--step", "4"],
                        ["--seed", str(5 + (1 << 32)), "--step", "3"]):  # the seed's high word
            with self.subTest(options=options):
                other = select(self.csv, *options)
                self.assertNotEqual(other["order"], base["order"])
                for key in ("advantages", "pairs", "pair_weights"):
                    self.assertEqual(other[key], base[key])
                self.assert_valid_selection(other, self.groups, self.rewards)


class GroupLayoutTest(TempDirTest):
    """Group ids are arbitrary strings, rows of a group need not be adjacent."""

    NAMES = ["zeta", "alpha 1", "ünïcode-名前", "42", "x/y:z", "-7.5"]

    def test_interleaved_ids_give_the_contiguous_result(self):
        rng = random.Random(3)
        groups, rewards = [], []
        for name in self.NAMES:  # distinct rewards inside a group: no ties
            values = rng.sample(range(100), 8)
            groups += [name] * 8
            rewards += [v / 100 for v in values]
        contiguous = select(self.batch_csv(groups, rewards, "c.csv"), "--rounds", "1")

        perm = list(range(len(rewards)))  # row i of the new file is row perm[i] of the old
        rng.shuffle(perm)
        g2 = [groups[b] for b in perm]
        r2 = [rewards[b] for b in perm]
        shuffled = select(self.batch_csv(g2, r2, "s.csv"), "--rounds", "1")
        self.assert_valid_selection(shuffled, g2, r2, rounds=1)

        new_order = list(dict.fromkeys(g2))  # groups by first appearance in the new file
        self.assertEqual(shuffled["groups"], new_order)
        self.assertNotEqual(new_order, self.NAMES)  # the test really reorders groups
        for i, b in enumerate(perm):
            self.assertEqual(shuffled["advantages"][i], contiguous["advantages"][b])
        rank = {name: i for i, name in enumerate(new_order)}
        expected = sorted(contiguous["pairs"], key=lambda p: rank[groups[p[0]]])  # stable
        self.assertEqual([[perm[hi], perm[lo]] for hi, lo in shuffled["pairs"]], expected)
        self.assertEqual(shuffled["group_mean"],
                         [contiguous["group_mean"][self.NAMES.index(n)] for n in new_order])

    def test_groups_ordered_by_first_appearance(self):
        groups = ["b", "a", "b", "c", "a", "c"]
        rewards = [1, 0, 0, 0.5, 1, 0.25]
        out = select(self.batch_csv(groups, rewards), "--keep-ratio", "1", "--rounds", "1")
        self.assertEqual(out["groups"], ["b", "a", "c"])
        self.assertEqual(out["pairs"], [[0, 2], [4, 1], [3, 5]])
        self.assert_valid_selection(out, groups, rewards, keep_ratio=1, rounds=1)


class CsvDialectTest(TempDirTest):
    """Quoting, CRLF, BOM, column order, extra columns: the same selection as a plain file."""

    GROUPS = ["p,1", "p,1", 'say "hi"', 'say "hi"', "p,1", "p,1", 'say "hi"', 'say "hi"']
    REWARDS = ["1", "0", "0.5", "0.25", "0.75", "0", "1", "0.125"]

    @staticmethod
    def quote(field: str) -> str:
        return '"' + field.replace('"', '""') + '"'

    @staticmethod
    def result(path: Path) -> dict:
        return select(path, "--keep-ratio", "1", "--rounds", "2")

    def test_dialects_agree(self):
        q = self.quote
        plain_rows = [(q(g), r) for g, r in zip(self.GROUPS, self.REWARDS)]
        reference = self.result(write_csv(self.dir / "plain.csv", ["group", "reward"], plain_rows))
        self.assertEqual(reference["groups"], ["p,1", 'say "hi"'])
        self.assert_valid_selection(reference, self.GROUPS, [float(r) for r in self.REWARDS],
                                    keep_ratio=1, rounds=2)
        variants = {
            "crlf": write_csv(self.dir / "crlf.csv", ["group", "reward"], plain_rows,
                              newline="\r\n"),
            "bom": write_csv(self.dir / "bom.csv", ["group", "reward"], plain_rows, bom=True),
            "bom_crlf": write_csv(self.dir / "bomcrlf.csv", ["group", "reward"], plain_rows,
                                  newline="\r\n", bom=True),
            "reordered_extra": write_csv(
                self.dir / "extra.csv", ["id", "reward", "text", "group", "tokens"],
                [(i, q(r), q(f'line one\nline "two", {i}'), q(g), 17 * i)
                 for i, (g, r) in enumerate(zip(self.GROUPS, self.REWARDS))]),
            "blanks_and_spaces": write_csv(
                self.dir / "spaces.csv", [" group ", "reward "],
                [(q(g), f"  {r}\t") for g, r in zip(self.GROUPS, self.REWARDS)]),
        }
        # Blank lines between records and no newline at the end.
        text = (self.dir / "plain.csv").read_text().replace("\n", "\n\n", 3).rstrip("\n")
        (self.dir / "blank.csv").write_text(text)
        variants["blank_lines_no_final_newline"] = self.dir / "blank.csv"
        for name, path in variants.items():
            with self.subTest(dialect=name):
                self.assertEqual(self.result(path), reference)


    def test_group_id_that_is_not_utf8_is_rejected_or_escaped(self):
        csv = self.dir / "latin1.csv"
        csv.write_bytes("group,reward\ncaf\xe9,1\ncaf\xe9,0\n".encode("latin-1"))
        done = subprocess.run([sr1cli.SR1, "select", "--input", str(csv)], capture_output=True,
                              check=False)
        if done.returncode == 2:
            self.assertEqual(len(done.stderr.splitlines()), 1)
            self.assertEqual(done.stdout, b"")
        else:
            self.assertEqual(done.returncode, 0)
            json.loads(done.stdout.decode("utf-8"))  # JSON text is UTF-8 (RFC 8259)


class OutputFileTest(TempDirTest):
    """--output: the JSON goes to the file (replacing one), nothing to stdout, no leftovers."""

    def test_output_written_atomically(self):
        csv = self.batch_csv(["g"] * 8 + ["h"] * 8, WORKED + [0.1 * i for i in range(8)])
        expected = run("select", "--input", csv, "--rounds", "2").stdout
        target = self.dir / "out.json"
        for existing in (False, True):
            with self.subTest(existing=existing):
                if existing:
                    target.write_text("old contents\n")
                done = run("select", "--input", csv, "--rounds", "2", "--output", target)
                self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "", ""))
                self.assertEqual(target.read_text(), expected)
                json.loads(target.read_text())
                self.assertEqual(sorted(p.name for p in self.dir.iterdir()),
                                 ["batch.csv", "out.json"])


class BadInputTest(TempDirTest):
    """The error contract: status 2, one line on stderr naming the file line or the option,
    nothing on stdout, an existing --output untouched and no temporary file left."""

    GOOD = "group,reward\n" + "".join(f"a,{r}\n" for r in WORKED)

    DATA_CASES = [  # (name, CSV text, options, pattern the single stderr line must match)
        ("no group column", "grp,reward\na,1\na,0\n", [], r"bad\.csv:1\b.*group"),
        ("no reward column", "group,score\na,1\na,0\n", [], r"bad\.csv:1\b.*reward"),
        ("duplicate column", "group,reward,reward\na,1,1\na,0,0\n", [], r"bad\.csv:1\b"),
        ("non-numeric reward", "group,reward\na,1\na,abc\n", [], r"bad\.csv:3\b.*abc"),
        ("empty reward", "group,reward\na,\na,1\n", [], r"bad\.csv:2\b"),
        ("reward with unit", "group,reward\na,1\na,0.5pt\n", [], r"bad\.csv:3\b"),
        ("nan reward", "group,reward\na,1\na,nan\n", [], r"bad\.csv:3\b.*nan"),
        ("NaN reward", "group,reward\na,1\na,NaN\n", [], r"bad\.csv:3\b"),
        ("inf reward", "group,reward\na,1\na,inf\n", [], r"bad\.csv:3\b.*inf"),
        ("-inf reward", "group,reward\na,1\na,-inf\n", [], r"bad\.csv:3\b"),
        ("infinity reward", "group,reward\na,1\na,Infinity\n", [], r"bad\.csv:3\b"),
        ("reward beyond double", "group,reward\na,1\na,1e999\n", [], r"bad\.csv:3\b"),
        ("reward beyond float32", "group,reward\na,1\na,1e39\n", [], r"bad\.csv:3\b"),
        ("empty file", "", [], r"bad\.csv\b.*empty"),
        ("BOM only", "\ufeff", [], r"bad\.csv\b"),
        ("header only", "group,reward\n", [], r"bad\.csv\b.*no data rows"),
        ("header and blank lines", "group,reward\n\n\n", [], r"bad\.csv\b"),
        ("too many fields", "group,reward\na,1\na,0,7\n", [], r"bad\.csv:3\b"),
        ("unclosed quote", 'group,reward\n"a,1\na,0\n', [], r"bad\.csv:2\b"),
        ("odd group", "group,reward\na,1\na,0\nb,1\nb,0\nb,1\n", [], r"bad\.csv:4\b.*'b'"),
        ("odd group, explicit", "group,reward\na,1\na,0\nb,1\nb,0\nb,1\n", ["--odd", "error"],
         r"bad\.csv:4\b"),
        ("singleton group", "group,reward\na,1\na,0\nb,1\na,0\na,1\n", [], r"bad\.csv:4\b.*'b'"),
        ("singleton group, explicit", "group,reward\na,1\na,0\nb,1\n",
         ["--singleton", "error", "--odd", "drop_median"], r"bad\.csv:4\b"),
        ("keep-pairs beyond a group", GOOD + "b,1\nb,0\n", ["--keep-pairs", "2"],
         r"bad\.csv:10\b.*--keep-pairs"),
        ("too few non-zero pairs", "group,reward\na,1\na,0\nb,1\nb,1\nc,0\nc,0\n",
         ["--keep-ratio", "1", "--rounds", "1", "--per-round", "2"], r"--on-short"),
        ("too few non-zero pairs, explicit", "group,reward\na,1\na,0\nb,1\nb,1\n",
         ["--keep-ratio", "1", "--rounds", "1", "--per-round", "2", "--on-short", "error"],
         r"--on-short"),
        ("all weights zero", "group,reward\na,1\na,1\nb,0\nb,0\n",
         ["--keep-ratio", "1", "--rounds", "1"], r"--on-short"),
    ]

    OPTION_CASES = [  # (options, the option the message must name)
        (["--estimator", "gpro"], "--estimator"), (["--estimator", ""], "--estimator"),
        (["--ddof", "2"], "--ddof"), (["--ddof", "-1"], "--ddof"), (["--ddof", "0.5"], "--ddof"),
        (["--eps", "-1"], "--eps"), (["--eps", "nan"], "--eps"), (["--eps", "x"], "--eps"),
        (["--keep-ratio", "0"], "--keep-ratio"), (["--keep-ratio", "1.5"], "--keep-ratio"),
        (["--keep-ratio", "-0.5"], "--keep-ratio"), (["--keep-ratio", "nan"], "--keep-ratio"),
        (["--keep-ratio", "half"], "--keep-ratio"),
        (["--keep-pairs", "5"], "--keep-pairs"), (["--keep-pairs", "-1"], "--keep-pairs"),
        (["--keep-ratio", "0.5", "--keep-pairs", "1"], "--keep-ratio"),
        (["--weight", "x"], "--weight"), (["--transform", "x"], "--transform"),
        (["--coeff", "-1"], "--coeff"), (["--coeff", "nan"], "--coeff"),
        (["--coeff", "inf"], "--coeff"),
        (["--rounds", "0"], "--rounds"), (["--rounds", "-1"], "--rounds"),
        (["--rounds", "4294967296"], "--rounds"), (["--rounds", "x"], "--rounds"),
        (["--per-round", "0"], "--per-round"), (["--per-round", "5"], "--per-round"),
        (["--on-short", "x"], "--on-short"), (["--singleton", "x"], "--singleton"),
        (["--odd", "x"], "--odd"), (["--dtype", "float16"], "--dtype"),
        (["--step", "-1"], "--step"), (["--step", "4294967296"], "--step"),
        (["--total-steps", "0"], "--total-steps"),
        (["--transform", "softmax", "--step", "5"], "--step"),
        (["--seed", "x"], "--seed"), (["--bogus", "1"], "--bogus"),
    ]

    def check_error(self, csv: Path, options, pattern: str, input_args=None):
        """One bad invocation, without and with an existing --output file."""
        args = (["--input", csv] if input_args is None else input_args) + list(options)
        done = run("select", *args)
        self.assertEqual(done.returncode, 2, f"stdout: {done.stdout[:200]} stderr: {done.stderr}")
        self.assertEqual(done.stdout, "")
        self.assertTrue(done.stderr.endswith("\n"))
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr, r"^sr1: ")
        self.assertRegex(done.stderr, pattern)

        out_dir = self.dir / "out"
        out_dir.mkdir(exist_ok=True)
        target = out_dir / "selection.json"
        old = b'{"previous": "run"}\n\xff binary tail'
        target.write_bytes(old)
        before = sorted(out_dir.iterdir())
        again = run("select", *args, "--output", target)
        self.assertEqual(again.returncode, 2)
        self.assertEqual(again.stdout, "")
        self.assertEqual(again.stderr, done.stderr)
        self.assertEqual(target.read_bytes(), old, "--output was modified")
        self.assertEqual(sorted(out_dir.iterdir()), before, "a file was left next to --output")

    def test_bad_data(self):
        for name, text, options, pattern in self.DATA_CASES:
            with self.subTest(case=name):
                csv = self.dir / "bad.csv"
                csv.write_bytes(text.encode("utf-8"))
                self.check_error(csv, options, pattern)

    def test_bad_options(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        for options, option in self.OPTION_CASES:
            with self.subTest(options=options):
                self.check_error(csv, options, re.escape(option))

    def test_missing_input(self):
        self.check_error(self.dir / "absent.csv", [], r"absent\.csv")
        self.check_error(None, [], r"--input", input_args=[])

    def test_output_directory_missing(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        done = run("select", "--input", csv, "--output", self.dir / "no" / "such" / "out.json")
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(len(done.stderr.splitlines()), 1)
        self.assertIn("--output", done.stderr)

    def test_negative_seed_is_rejected(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        self.check_error(csv, ["--seed", "-1"], r"--seed")

    def test_seed_beyond_64_bits_is_rejected(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        self.check_error(csv, ["--seed", str(1 << 64)], r"--seed")

    def test_largest_seed_is_accepted(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        done = run("select", "--input", csv, "--seed", str((1 << 64) - 1))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["stats"]["seed"], (1 << 64) - 1)

    def test_negative_eps_message_is_short(self):
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        self.check_error(csv, ["--eps", "-1"], r"--eps -1 is not a finite number >= 0")
        done = run("select", "--input", csv, "--eps", "-1")
        self.assertLess(len(done.stderr), 200, done.stderr)

    def test_float32_overflow_echoes_the_file_text(self):
        csv = self.dir / "big.csv"
        csv.write_text("group,reward\na,1e300\na,0\n")
        self.check_error(csv, [], r"big\.csv:2: reward 1e300 overflows float32")

    def test_directory_as_input(self):
        self.check_error(self.dir, [], r"is a directory")

    def test_demo_refuses_odd_rollouts(self):
        done = run("demo", "--rollouts", "3", "--prompts", "4")
        self.assertEqual(done.returncode, 2)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertIn("--rollouts", done.stderr)
        self.assertNotIn("--odd", done.stderr)

    def test_many_rounds_do_not_size_the_histogram(self):
        # --rounds far beyond the pairs: T = K/S = 0, an empty training batch, and a histogram
        # bounded by the order's length rather than by --rounds.
        csv = self.dir / "good.csv"
        csv.write_text(self.GOOD)
        done = run("select", "--input", csv, "--rounds", "100000000")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertLess(len(done.stdout), 100000)
        out = json.loads(done.stdout)
        self.assertEqual(out["order"], [])


if __name__ == "__main__":
    unittest.main(verbosity=1)
