#!/usr/bin/python3
"""The error contract of sr1 (docs/errors.md), for the cases test_cli.py and test_research.py do
not exercise: the command line itself, the options only the research rules read, quoting errors,
`sr1 compare` with the same bad options and data as `sr1 select`, `sr1 demo --write-csv`, and a
failure to write standard output (status 1).

Bad input or options: exit status 2, exactly one line on stderr starting with "sr1: " and naming
the option or the file line, nothing on stdout, an existing --output left byte for byte untouched
and no file left next to it.

Run by ctest ("cli: test_errors_cli", env SR1 = the binary) or directly:
/usr/bin/python3 test_errors_cli.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sr1cli  # noqa: E402
from sr1cli import run  # noqa: E402

GOOD = "group,reward\n" + "".join(f"a,{r}\n" for r in [1, 1, 0, 0, 0, 1, 0, 0])


class ErrorContractTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sr1_errors_"))
        self.good = self.dir / "good.csv"
        self.good.write_text(GOOD)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_one_line(self, done, pattern: str, status: int = 2):
        self.assertEqual(done.returncode, status, f"stdout: {done.stdout[:200]} "
                                                  f"stderr: {done.stderr}")
        self.assertEqual(done.stdout, "")
        self.assertTrue(done.stderr.endswith("\n"), done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr, r"^sr1: ")
        self.assertRegex(done.stderr, pattern)

    def check_error(self, command: str, args, pattern: str):
        """One bad invocation of `sr1 command args`, without and with an existing --output."""
        done = run(command, *args)
        self.check_one_line(done, pattern)
        out_dir = self.dir / "out"
        out_dir.mkdir(exist_ok=True)
        target = out_dir / "result.txt"
        old = b"previous result\n\xff\x00 binary tail"
        target.write_bytes(old)
        before = sorted(out_dir.iterdir())
        again = run(command, *args, "--output", target)
        self.assertEqual(again.returncode, 2)
        self.assertEqual(again.stdout, "")
        self.assertEqual(again.stderr, done.stderr)
        self.assertEqual(target.read_bytes(), old, "--output was modified")
        self.assertEqual(sorted(out_dir.iterdir()), before, "a file was left next to --output")

    def test_command_line_without_a_valid_subcommand(self):
        for args in ([], ["frobnicate"], ["select", "demo"], ["--bogus"]):
            with self.subTest(args=args):
                self.check_one_line(run(*args), r"\(see sr1 --help\)$")

    def test_research_options_outside_their_range(self):
        cases = [  # (options, the text the message must hold)
            (["--std-mode", "top_q"], "--std-mode 'top_q' is not one of top_k, top_p"),
            (["--zero-mass", "keep"], "--zero-mass 'keep' is not one of uniform, drop"),
            (["--resample-on", "lengths"],
             "--resample-on 'lengths' is not one of rewards, advantages"),
            (["--selector", "resample", "--power", "-1"], "--power is -1"),
            (["--selector", "resample", "--power", "nan"], "--power is nan"),
            (["--selector", "std_topk", "--group-ratio", "0"], "--group-ratio is 0"),
            (["--selector", "dapo", "--tolerance", "inf"], "--tolerance is inf"),
        ]
        for options, text in cases:
            with self.subTest(options=options):
                self.check_error("select", ["--input", self.good, *options], re.escape(text))

    def test_quoting_errors_and_a_lengths_column_named_twice(self):
        cases = [
            ('group,reward\na"b,1\na"b,0\n', [], r"bad\.csv:2: a quote inside an unquoted field"),
            ('group,reward\n"a"b,1\n"a"b,0\n', [],
             r"bad\.csv:2: text after the closing quote of a field"),
            ("group,reward,len,len\na,1,3,3\na,0,4,4\n", ["--lengths", "len"],
             r"bad\.csv:1: column 'len' appears twice in the header"),
        ]
        for text, options, pattern in cases:
            with self.subTest(text=text):
                csv = self.dir / "bad.csv"
                csv.write_text(text)
                self.check_error("select", ["--input", csv, *options], pattern)

    def test_group_id_that_is_not_utf8_is_rejected(self):
        csv = self.dir / "latin1.csv"
        csv.write_bytes("group,reward\ncaf\xe9,1\ncaf\xe9,0\n".encode("latin-1"))
        self.check_error("select", ["--input", csv],
                         r"latin1\.csv:2: the group id is not valid UTF-8")

    def test_compare_checks_options_as_select_does(self):
        cases = [  # (options, the option the message must name)
            (["--estimator", "gpro"], "--estimator"), (["--ddof", "2"], "--ddof"),
            (["--eps", "-1"], "--eps"), (["--keep-ratio", "0"], "--keep-ratio"),
            (["--keep-pairs", "-1"], "--keep-pairs"), (["--weight", "x"], "--weight"),
            (["--odd", "x"], "--odd"), (["--singleton", "x"], "--singleton"),
            (["--transform", "x"], "--transform"), (["--coeff", "-1"], "--coeff"),
            (["--rounds", "0"], "--rounds"), (["--per-round", "0"], "--per-round"),
            (["--on-short", "x"], "--on-short"), (["--step", "-1"], "--step"),
            (["--total-steps", "0"], "--total-steps"), (["--dtype", "float16"], "--dtype"),
            (["--seed", "-1"], "--seed"), (["--std-mode", "x"], "--std-mode"),
            (["--zero-mass", "x"], "--zero-mass"), (["--power", "-1"], "--power"),
            (["--tolerance", "-1"], "--tolerance"), (["--resample-on", "x"], "--resample-on"),
            (["--bogus", "1"], "--bogus"),
        ]
        for options, option in cases:
            with self.subTest(options=options):
                self.check_error("compare", ["--input", self.good, *options], re.escape(option))

    def test_compare_checks_data_as_select_does(self):
        cases = [
            ("group,reward\na,1\na,abc\n", r"bad\.csv:3\b.*abc"),
            ("group,reward\n", r"bad\.csv\b.*no data rows"),
            ("group,reward\na,1\na,0\nb,1\n", r"bad\.csv:4\b.*'b' has a single row"),
        ]
        for text, pattern in cases:
            with self.subTest(text=text):
                csv = self.dir / "bad.csv"
                csv.write_text(text)
                self.check_error("compare", ["--input", csv], pattern)
        self.check_error("compare", ["--input", self.dir / "absent.csv"], r"absent\.csv")
        self.check_error("compare", [], r"--input")

    def test_demo_options_at_their_limits(self):
        for args, option in ((["--prompts", str((1 << 24) + 1)], "--prompts"),
                             (["--rollouts", str((1 << 16) + 2)], "--rollouts"),
                             (["--seed", "-1"], "--seed"),
                             (["--seed", str(1 << 64)], "--seed")):
            with self.subTest(args=args):
                self.check_one_line(run("demo", *args), re.escape(option))

    def test_demo_write_csv_to_a_missing_directory(self):
        target = self.dir / "no" / "such" / "demo.csv"
        done = run("demo", "--prompts", "4", "--rollouts", "4", "--write-csv", target)
        self.check_one_line(done, r"--write-csv " + re.escape(str(target)) +
                            r": cannot create a file next to it")
        self.assertFalse(target.parent.exists())

    def test_failure_to_write_standard_output_is_status_1(self):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sr1cli.SR1, "select", "--input", str(self.good)],
                                  stdout=full, stderr=subprocess.PIPE, text=True, check=False,
                                  timeout=120)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertRegex(done.stderr,
                         r"^sr1: unexpected failure: writing to standard output failed")


if __name__ == "__main__":
    unittest.main(verbosity=1)
