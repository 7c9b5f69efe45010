#!/usr/bin/python3
"""`sr1 select --backend cpu|cuda` and `sr1 demo --backend cpu|cuda` (docs/gpu.md, "sr1
--backend").

- `--backend cpu` is the default: the output is byte for byte the output without the option.
- `--backend cuda` depends on the binary: built without the CUDA backend (the default build) it
  exits 2 with one line naming the configure option; built with it but without a usable device it
  exits 2 with "no CUDA device is available"; with a device it must give the CPU's output byte for
  byte. In the two failing cases nothing is written: an existing --output (or --write-csv) is left
  untouched and no file is left next to it.
- Any other value exits 2 naming the option and the choices. `sr1 compare` has no --backend (it
  runs every rule, all on the CPU).

Run by ctest ("cli: test_backend", env SR1 = the binary) or directly:
/usr/bin/python3 test_backend.py.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sr1cli import run, write_batch  # noqa: E402

NOT_BUILT = ("sr1: --backend cuda: this sr1 was built without the CUDA backend (configure with "
             "-DSHUFFLE_R1_ENABLE_CUDA=ON)\n")
NO_DEVICE = re.compile(r"^sr1: --backend cuda: no CUDA device is available \(.+\)\n$")

# Option sets that go through the pipeline (PTS + ABS): both dtypes, ragged groups, the other
# estimators and transforms, groups above 32 and 64 rows (other CUDA kernels).
OPTION_SETS = [
    [],
    ["--dtype", "float64"],
    ["--estimator", "rloo", "--weight", "max", "--transform", "softmax", "--total-steps", "4",
     "--step", "2", "--seed", "7", "--rounds", "4", "--on-short", "shrink"],
    ["--estimator", "batch_std", "--odd", "drop_median", "--singleton", "zero", "--keep-ratio",
     "1", "--on-short", "fill"],
]


def batch_rows():
    """A ragged batch: groups of 8, 5, 1, 40 and 70 rows, interleaved, rewards in [0, 1]."""
    sizes = {"a": 8, "b": 5, "c": 1, "d": 40, "e": 70}
    groups, rewards = [], []
    left = dict(sizes)
    i = 0
    while any(left.values()):
        for name in sizes:
            if left[name]:
                groups.append(name)
                rewards.append(((i * 37) % 11) / 10 if name != "b" else 0.5)
                left[name] -= 1
                i += 1
    return groups, rewards


class BackendTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sr1_backend_"))
        groups, rewards = batch_rows()
        self.batch = write_batch(self.dir / "batch.csv", groups, rewards)
        even = [g for g in groups if g in ("a", "d", "e")]
        self.even = write_batch(self.dir / "even.csv", even,
                                [r for g, r in zip(groups, rewards) if g in ("a", "d", "e")])

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def csv_for(self, options):
        return self.batch if "--odd" in options else self.even

    def check_refused(self, done, *, message=None, pattern=None):
        """Exit 2, one line on stderr (exactly `message` or matching `pattern`), no stdout."""
        self.assertEqual(done.returncode, 2, f"stdout: {done.stdout[:200]} stderr: {done.stderr}")
        self.assertEqual(done.stdout, "")
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        if message is not None:
            self.assertEqual(done.stderr, message)
        if pattern is not None:
            self.assertRegex(done.stderr, pattern)

    def check_output_untouched(self, *args):
        """`sr1 args --output F` with F existing: exit 2 and F byte for byte as before."""
        out_dir = self.dir / "out"
        out_dir.mkdir(exist_ok=True)
        target = out_dir / "selection.json"
        old = b"previous result\n\xff\x00 binary tail"
        target.write_bytes(old)
        before = sorted(out_dir.iterdir())
        done = run(*args, "--output", target)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(target.read_bytes(), old, "--output was modified")
        self.assertEqual(sorted(out_dir.iterdir()), before, "a file was left next to --output")
        return done

    def test_cpu_is_the_default_byte_for_byte(self):
        for options in OPTION_SETS + [["--selector", "dapo"], ["--selector", "resample"]]:
            with self.subTest(options=options):
                csv = self.csv_for(options)
                plain = run("select", "--input", csv, *options)
                self.assertEqual(plain.returncode, 0, plain.stderr)
                cpu = run("select", "--input", csv, *options, "--backend", "cpu")
                self.assertEqual(cpu.returncode, 0, cpu.stderr)
                self.assertEqual(cpu.stderr, "")
                self.assertEqual(cpu.stdout, plain.stdout)
                out = self.dir / "cpu.json"
                done = run("select", "--input", csv, *options, "--backend", "cpu", "--output", out)
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(out.read_text(), plain.stdout)

    def test_cuda(self):
        probe = run("select", "--input", self.even, "--backend", "cuda")
        if probe.returncode == 0:  # a CUDA build on a machine with a GPU: the CPU's bytes
            for options in OPTION_SETS:
                with self.subTest(options=options):
                    csv = self.csv_for(options)
                    cpu = run("select", "--input", csv, *options)
                    gpu = run("select", "--input", csv, *options, "--backend", "cuda")
                    self.assertEqual(gpu.returncode, 0, gpu.stderr)
                    self.assertEqual(gpu.stderr, "")
                    self.assertEqual(gpu.stdout, cpu.stdout, "CPU and CUDA outputs differ")
            return
        if probe.stderr == NOT_BUILT:
            expect = {"message": NOT_BUILT}
        else:  # a CUDA build without a usable device
            expect = {"pattern": NO_DEVICE}
        self.check_refused(probe, **expect)
        for options in OPTION_SETS:
            with self.subTest(options=options):
                args = ["select", "--input", self.csv_for(options), *options, "--backend", "cuda"]
                self.check_refused(run(*args), **expect)
                self.check_refused(self.check_output_untouched(*args), **expect)

    def test_cuda_in_a_build_without_it(self):
        probe = run("select", "--input", self.even, "--backend", "cuda")
        if probe.returncode == 0 or probe.stderr != NOT_BUILT:
            self.skipTest("this sr1 has the CUDA backend")
        self.check_refused(probe, message=NOT_BUILT)
        # Refused as an option, before the input is read: a missing file is not reported.
        self.check_refused(run("select", "--input", self.dir / "missing.csv", "--backend", "cuda"),
                           message=NOT_BUILT)
        self.check_refused(
            self.check_output_untouched("select", "--input", self.even, "--backend", "cuda"),
            message=NOT_BUILT)

    def test_bad_values(self):
        for value in ["gpu", "CPU", "Cuda", "", "cpu,cuda"]:
            with self.subTest(value=value):
                args = ["select", "--input", self.even, "--backend", value]
                message = f"sr1: --backend '{value}' is not one of cpu, cuda\n"
                self.check_refused(run(*args), message=message)
                self.check_refused(self.check_output_untouched(*args), message=message)
                self.check_refused(run("demo", "--prompts", "4", "--rollouts", "4", "--backend",
                                       value), message=message)

    def test_cuda_with_a_rule_other_than_pts(self):
        done = run("select", "--input", self.even, "--backend", "cuda", "--selector", "dapo")
        if done.stderr == NOT_BUILT:
            self.check_refused(done, message=NOT_BUILT)
        else:
            self.check_refused(done, pattern=r"--backend cuda runs the PTS \+ ABS pipeline only; "
                                             r"--selector dapo has no CUDA implementation")

    def test_demo(self):
        args = ["demo", "--prompts", "8", "--rollouts", "4"]
        plain = run(*args)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        cpu = run(*args, "--backend", "cpu")
        self.assertEqual(cpu.returncode, 0, cpu.stderr)

        def summary(text):  # every line but the time line
            return [line for line in text.splitlines() if "time (" not in line]

        self.assertEqual(summary(cpu.stdout), summary(plain.stdout))
        self.assertRegex(cpu.stdout, r"time \(1 CPU thread\) .*median of 201 calls")
        target = self.dir / "demo.csv"
        gpu = run(*args, "--backend", "cuda", "--write-csv", target)
        if gpu.returncode == 0:
            self.assertEqual(summary(gpu.stdout), summary(plain.stdout))
            self.assertRegex(gpu.stdout, r"time \(CUDA, .*\) .*median of 201 calls")
            return
        if gpu.stderr == NOT_BUILT:
            self.check_refused(gpu, message=NOT_BUILT)
        else:
            self.check_refused(gpu, pattern=NO_DEVICE)
        self.assertFalse(target.exists(), "--write-csv was written")

    def test_compare_has_no_backend(self):
        done = run("compare", "--input", self.even, "--backend", "cpu")
        self.check_refused(done, pattern=r"--backend.*\(see sr1 --help\)$")


if __name__ == "__main__":
    unittest.main(verbosity=1)
