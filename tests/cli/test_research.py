#!/usr/bin/python3
"""End-to-end tests of the research toolkit in sr1: `select --selector`, `--lengths`, `compare`.

Checks worked numbers of small batches (SPEC.md's group and hand-computed rule outcomes), the
invariants of every selection rule recomputed here from the JSON, the token diagnostics against
a recomputation from the CSV, that `sr1 compare` agrees with `sr1 select` rule by rule, that the
demo batch `sr1 demo --write-csv` writes is the library's synthetic batch, that the table in
docs/research.md is what `sr1 compare` prints on it, and the error contract (exit status 2, one
line on stderr, nothing on stdout).

Run by ctest ("cli: test_research", env SR1 = the binary) or directly with /usr/bin/python3.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr1cli  # noqa: E402
from sr1cli import run, select, write_batch, write_csv  # noqa: E402

ROOT = sr1cli.ROOT
RULES = ["pts", "pods", "dapo", "std_topk", "random", "top", "bottom", "resample"]
PAIR_RULES = {"pts", "random", "top", "bottom"}
OLD_STATS = ["rows", "groups", "zero_variance_groups", "singleton_groups", "pairs",
             "nonzero_pairs", "rounds", "per_round", "order_size", "distinct_pairs_used",
             "multiplicity_histogram", "collapse_ratio_all", "collapse_ratio_after_pts",
             "nonzero_gradient_ratio", "seed", "step", "dtype"]
NEW_STATS = ["selector", "selected_rows", "groups_kept", "groups_dropped",
             "collapse_ratio_after_selection", "collapse_ratio_training", "distinct_rows_used",
             "effective_sample_size", "token_utilization", "token_utilization_all"]

# Two groups of 8: SPEC's [1,1,0,0,0,1,0,0] and [1,1,1,1,1,0.5,0.4,0] (where PODS prefers an
# unbalanced split), then a constant group of 4 (zero variance).
GROUPS = ["a"] * 8 + ["b"] * 8 + ["c"] * 4
REWARDS = [1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0.5, 0.4, 0, 0.7, 0.7, 0.7, 0.7]
LENGTHS = [100, 200, 300, 400, 500, 600, 700, 800, 10, 20, 30, 40, 50, 60, 70, 80, 5, 5, 5, 5]


def batch_file(tmp: str, name: str = "batch.csv") -> Path:
    rows = [(g, repr(float(r)), n) for g, r, n in zip(GROUPS, REWARDS, LENGTHS)]
    return write_csv(Path(tmp) / name, ["group", "reward", "length"], rows)


def group_rows(groups) -> dict:
    rows: dict = {}
    for b, g in enumerate(groups):
        rows.setdefault(g, []).append(b)
    return rows


def fails_cleanly(test: unittest.TestCase, *args, text: str):
    done = run(*args)
    test.assertEqual(done.returncode, 2, done.stderr)
    test.assertEqual(done.stdout, "")
    test.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
    test.assertIn(text, done.stderr)


class SelectorWorkedNumbers(unittest.TestCase):
    """Outcomes of each rule on the small batch, computed by hand (see the comments)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.csv = batch_file(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_pts_is_the_default_and_keeps_its_json(self):
        out = select(self.csv)
        self.assertEqual(list(out["stats"])[:len(OLD_STATS)], OLD_STATS)
        self.assertEqual(list(out["stats"])[len(OLD_STATS):], NEW_STATS)
        self.assertEqual(out["stats"]["selector"], "pts")
        # group a: (0,7) (1,6); group b: (0,7) (1,6) shifted by 8; group c: the constant group's
        # outer pair (16, 19)
        self.assertEqual(out["pairs"], [[0, 7], [1, 6], [8, 15], [9, 14], [16, 19]])
        self.assertEqual(out["stats"]["selected_rows"], 10)
        self.assertEqual(out["stats"]["groups_kept"], 3)
        self.assertIsNone(out["stats"]["token_utilization"])

    def test_pods_prefers_the_subset_of_largest_variance(self):
        # group b, m = 4: {1,1,1,0} has m*var 0.75 > {1,1,.4,0}'s 0.72 -> rows 8 9 10 15
        out = select(self.csv, "--selector", "pods")
        # group c is constant: every pair of rows has variance 0, the tie goes to PTS's rows
        self.assertEqual(out["rows"], [0, 1, 6, 7, 8, 9, 10, 15, 16, 19])
        self.assertEqual((out["pairs"], out["order"], out["pair_weights"]), ([], [], []))
        self.assertEqual(out["stats"]["pairs"], 0)
        self.assertEqual(out["stats"]["multiplicity_histogram"], [])

    def test_dapo_drops_the_constant_group_and_counts_a_refill(self):
        out = select(self.csv, "--selector", "dapo")
        self.assertEqual(out["rows"], [0, 1, 2, 3, 8, 9, 10, 11])  # first 2M rows of a and b
        self.assertEqual(out["stats"]["groups_dropped"], 1)
        self.assertEqual(out["stats"]["nonzero_gradient_ratio"], 1.0)
        out = select(self.csv, "--selector", "dapo", "--keep-all-rows")
        self.assertEqual(out["rows"], list(range(16)))
        # tolerance 0.6: group b (spread 1) stays, nothing else changes
        self.assertEqual(select(self.csv, "--selector", "dapo", "--tolerance", "0.6")["rows"],
                         [0, 1, 2, 3, 8, 9, 10, 11])

    def test_std_topk_keeps_the_most_uncertain_groups(self):
        # sample stds: a 0.5175, b 0.3889, c 0 -> top_k 0.5 keeps floor(1.5) = 1 group: a
        out = select(self.csv, "--selector", "std_topk")
        self.assertEqual(out["rows"], [0, 1, 2, 3])
        self.assertEqual(out["stats"]["groups_dropped"], 2)
        out = select(self.csv, "--selector", "std_topk", "--std-mode", "top_p",
                     "--group-ratio", "1")
        self.assertEqual(out["rows"], [0, 1, 2, 3, 8, 9, 10, 11])

    def test_bottom_keeps_the_lightest_pairs(self):
        # group a: pairs (0,7) (1,6) (5,4) weigh 1.9322, (2,3) 1.4492 -> (5,4) and (2,3)
        out = select(self.csv, "--selector", "bottom")
        self.assertEqual(out["pairs"][:2], [[5, 4], [2, 3]])

    def test_resample_draws_only_rows_with_reward_mass(self):
        out = select(self.csv, "--selector", "resample", "--seed", "3")
        rows = out["rows"]
        self.assertEqual(len(rows), 10)
        for b in rows[:8]:
            self.assertGreater(REWARDS[b], 0.0)
        self.assertTrue(set(rows[8:]) <= {16, 17, 18, 19})


class SelectorInvariants(unittest.TestCase):
    """Every rule on random batches: sizes, membership, pairs, reproducibility."""

    def test_invariants_of_every_rule(self):
        import random
        rng = random.Random(12)
        with tempfile.TemporaryDirectory() as tmp:
            for trial in range(6):
                groups, rewards = [], []
                for g in range(rng.randint(2, 9)):
                    n = rng.choice([2, 4, 6, 8, 16])
                    p = rng.random()
                    for _ in range(n):
                        groups.append(f"g{g}")
                        rewards.append(round(0.9 * (rng.random() < p) + 0.1 * (rng.random() < 0.9),
                                             1))
                order = list(range(len(rewards)))
                rng.shuffle(order)  # interleave the groups (verl uid layout)
                groups = [groups[i] for i in order]
                rewards = [rewards[i] for i in order]
                csv = write_batch(Path(tmp) / f"b{trial}.csv", groups, rewards)
                members = group_rows(groups)
                group_of = {b: g for g, rows in members.items() for b in rows}
                for rule in RULES:
                    with self.subTest(trial=trial, rule=rule):
                        out = select(csv, "--selector", rule, "--seed", str(trial))
                        again = select(csv, "--selector", rule, "--seed", str(trial))
                        self.assertEqual(out, again)
                        st = out["stats"]
                        self.assertEqual(st["selector"], rule)
                        kept = Counter(group_of[b] for b in (
                            [x for p in out["pairs"] for x in p] if rule in PAIR_RULES
                            else out["rows"]))
                        for g, rows in members.items():
                            budget = 2 * (len(rows) // 2 // 2)
                            if rule in ("dapo", "std_topk"):
                                self.assertIn(kept.get(g, 0), (0, budget))
                            else:
                                self.assertEqual(kept.get(g, 0), budget)
                        self.assertEqual(sum(kept.values()), st["selected_rows"])
                        adv = out["advantages"]
                        if rule in PAIR_RULES:
                            for hi, lo in out["pairs"]:
                                self.assertGreaterEqual(adv[hi], adv[lo])
                                self.assertEqual(group_of[hi], group_of[lo])
                            rows = [x for j in out["order"] for x in out["pairs"][j]]
                            self.assertEqual(out["rows"], rows)
                            self.assertEqual(len(out["order"]), st["order_size"])
                        else:
                            self.assertEqual(len(out["rows"]), st["selected_rows"])
                        if rule != "resample":
                            selected = ([x for p in out["pairs"] for x in p]
                                        if rule in PAIR_RULES else out["rows"])
                            self.assertEqual(len(set(selected)), len(selected))
                        train = out["rows"]
                        nz = sum(adv[b] != 0 for b in train) / len(train) if train else 0.0
                        self.assertAlmostEqual(st["nonzero_gradient_ratio"], nz, places=12)
                        self.assertEqual(st["distinct_rows_used"], len(set(train)))


class TokenDiagnostics(unittest.TestCase):
    def test_token_utilization_matches_a_recomputation(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = batch_file(tmp)
            for rule in RULES:
                with self.subTest(rule=rule):
                    out = select(csv, "--selector", rule, "--lengths", "length", "--rounds", "2")
                    adv, train = out["advantages"], out["rows"]
                    self.assertTrue(train)
                    used = sum(LENGTHS[b] for b in train if adv[b] != 0)
                    total = sum(LENGTHS[b] for b in train)
                    self.assertAlmostEqual(out["stats"]["token_utilization"], used / total,
                                           places=12)
                    all_used = sum(n for n, a in zip(LENGTHS, adv) if a != 0)
                    self.assertAlmostEqual(out["stats"]["token_utilization_all"],
                                           all_used / sum(LENGTHS), places=12)
            # group c (20 tokens of 3980) is constant: 3960 / 3980 of all tokens carry gradient
            out = select(csv, "--lengths", "length")
            self.assertAlmostEqual(out["stats"]["token_utilization_all"], 3960 / 3980, places=12)

    def test_bad_lengths_fail_cleanly(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = write_csv(Path(tmp) / "bad.csv", ["group", "reward", "len"],
                            [("a", "1", "3"), ("a", "0", "-4")])
            fails_cleanly(self, "select", "--input", bad, "--lengths", "len",
                          text="bad.csv:3: length '-4' in column 'len' is not an integer >= 0")
            fails_cleanly(self, "select", "--input", bad, "--lengths", "tokens",
                          text="the header has no 'tokens' column (named by --lengths)")
            fails_cleanly(self, "compare", "--input", bad, "--lengths", "tokens",
                          text="the header has no 'tokens' column")


class Compare(unittest.TestCase):
    """`sr1 compare` prints one row per rule and agrees with `sr1 select`."""

    def compare_json(self, csv, *options) -> dict:
        done = run("compare", "--input", csv, "--format", "json", *options)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        return json.loads(done.stdout)

    def test_compare_agrees_with_select_rule_by_rule(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = batch_file(tmp)
            table = self.compare_json(csv, "--lengths", "length", "--seed", "4", "--rounds", "2")
            names = [(r["rule"], r["training"]) for r in table["rules"]]
            self.assertEqual(names, [("grpo", "all"), ("pts", "abs"), ("pts", "permute"),
                                     ("top", "abs"), ("bottom", "abs"), ("random", "abs"),
                                     ("pods", "once"), ("dapo", "once"), ("std_topk", "once"),
                                     ("resample", "once")])
            for r in table["rules"]:
                if r["training"] not in ("abs", "once") or r["rule"] == "grpo":
                    continue
                with self.subTest(rule=r["rule"]):
                    st = select(csv, "--selector", r["rule"], "--lengths", "length",
                                "--seed", "4", "--rounds", "2", "--on-short", "shrink")["stats"]
                    self.assertEqual(r["selected_rows"], st["selected_rows"])
                    self.assertEqual(r["groups_dropped"], st["groups_dropped"])
                    self.assertEqual(r["collapse_ratio_training"], st["collapse_ratio_training"])
                    self.assertEqual(r["nonzero_gradient_ratio"], st["nonzero_gradient_ratio"])
                    self.assertEqual(r["token_utilization"], st["token_utilization"])
                    self.assertEqual(r["distinct_rows_used"], st["distinct_rows_used"])
                    self.assertEqual(r["effective_sample_size"], st["effective_sample_size"])
            grpo = table["rules"][0]
            self.assertEqual(grpo["training_rows"], len(REWARDS))
            self.assertEqual(grpo["collapse_ratio_training"], table["collapse_ratio_all"])
            # the permutation uses every kept pair exactly once
            perm = table["rules"][2]
            self.assertEqual(perm["distinct_pairs_used"], perm["pairs"])
            self.assertEqual(perm["training_rows"], 2 * perm["pairs"])

    def test_markdown_table_has_a_row_per_rule_and_is_reproducible(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = batch_file(tmp)
            first = run("compare", "--input", csv)
            second = run("compare", "--input", csv)
            self.assertEqual(first.returncode, 0, first.stderr)
            self.assertEqual(first.stdout, second.stdout)
            lines = [ln for ln in first.stdout.splitlines() if ln.startswith("| ")]
            self.assertEqual(len(lines), 11)  # header + 10 rules
            cells = [re.split(r"(?<!\\)\|", ln)[1:-1] for ln in lines]
            self.assertTrue(all(len(c) == 12 for c in cells), cells)
            self.assertEqual([c[0].strip() for c in cells[1:]],
                             ["grpo", "pts", "pts", "top", "bottom", "random", "pods", "dapo",
                              "std_topk", "resample"])
            self.assertEqual(cells[2][1].strip(), "ABS 8x0")  # K = 5 pairs, S = 8: T = 0
            out = Path(tmp) / "table.md"
            done = run("compare", "--input", csv, "--output", out)
            self.assertEqual((done.returncode, done.stdout), (0, ""))
            self.assertEqual(out.read_text(), first.stdout)

    def test_bad_options_fail_cleanly(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = batch_file(tmp)
            fails_cleanly(self, "compare", "--input", csv, "--format", "html",
                          text="--format 'html' is not one of markdown, json")
            fails_cleanly(self, "compare", "--input", csv, "--group-ratio", "2",
                          text="--group-ratio is 2, expected a value in (0, 1]")
            fails_cleanly(self, "select", "--input", csv, "--selector", "best",
                          text="--selector 'best' is not one of pts, pods")
            fails_cleanly(self, "select", "--input", csv, "--selector", "dapo",
                          "--tolerance", "-1", text="--tolerance is -1")
            odd = write_batch(Path(tmp) / "odd.csv", ["x"] * 3, [1, 0, 1])
            fails_cleanly(self, "compare", "--input", odd, text="odd number")


class DemoBatch(unittest.TestCase):
    """`sr1 demo --write-csv` writes the demo batch; docs/research.md shows its table."""

    def write_demo(self, tmp: str, *args) -> Path:
        path = Path(tmp) / "demo.csv"
        done = run("demo", "--write-csv", path, *args)
        self.assertEqual(done.returncode, 0, done.stderr)
        return path

    def test_the_csv_is_the_synthetic_batch_with_the_documented_lengths(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = self.write_demo(tmp, "--prompts", "64", "--rollouts", "8", "--seed", "3")
            lines = path.read_text().splitlines()
            self.assertEqual(lines[0], "group,reward,length")
            rows = [ln.split(",") for ln in lines[1:]]
            self.assertEqual(len(rows), 64 * 8)
            self.assertEqual([g for g, _, _ in rows], [f"p{b // 8}" for b in range(512)])
            try:
                import numpy as np
                sys.path.insert(0, str(sr1cli.COMPARE_DIR))
                import batch as synthetic  # bit-exact replica of shuffle_r1::synthetic_rewards
            except ImportError:  # pragma: no cover - numpy or the replica missing
                synthetic = None
            if synthetic is not None:
                got = np.array([float(r) for _, r, _ in rows], dtype=np.float32)
                self.assertTrue(np.array_equal(got, synthetic.synthetic_rewards(64, 8, 3)))
            for _, r, n in rows:
                n = int(n)
                if float(r) < 0.5:  # incorrect: 384 + [0, 768)
                    self.assertTrue(384 <= n < 1152, n)
                else:
                    self.assertTrue(128 <= n < 896, n)

    def test_docs_research_md_holds_the_compare_table_of_the_demo_batch(self):
        doc = (ROOT / "docs" / "research.md").read_text()
        m = re.search(r"<!-- compare:begin -->\n(.*?)<!-- compare:end -->", doc, re.DOTALL)
        self.assertIsNotNone(m, "docs/research.md lacks the compare block")
        with tempfile.TemporaryDirectory() as tmp:
            self.write_demo(tmp)
            done = run("compare", "--input", "demo.csv", "--lengths", "length", cwd=tmp)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(m.group(1), done.stdout,
                             "regenerate the table in docs/research.md (see its commands)")


if __name__ == "__main__":
    unittest.main()
