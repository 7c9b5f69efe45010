#!/usr/bin/python3
"""Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/{pipeline,csv}/).

Each seed is a small, named, hand-made input that reaches one part of the code: the paper's
default batch, every layout, estimator, transform and policy, edge values of rewards and
options, and malformed layouts and CSV files. The fuzzers start from these; ctest replays them
(tests/fuzz/CMakeLists.txt). Run again after changing the decoding of fuzz_pipeline.cpp:

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import base64
import pathlib
import random
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent

# Reward tags of fuzz_pipeline.cpp: tag < 176 -> (tag % 11) / 10; 176..247 -> edge table
# entry tag % 24; >= 248 -> the next 8 bytes as a raw double.
EDGE = {"nan": 8, "inf": 9, "-inf": 10, "denorm": 11, "-denorm": 12, "dmin": 13, "dmax": 14,
        "-dmax": 15, "1e-300": 16, "1e300": 17, "1e-30": 18, "1e30": 19, "fmax": 20,
        "fdenorm": 21, "0": 0, "-0": 1, "1": 2}


def edge_tag(name):
    k = EDGE[name]
    return 176 + (k - 176 % 24) % 24  # 176..199 with tag % 24 == k


def grid(v):  # v in {0, 0.1, ..., 1}
    return int(round(v * 10))


def header(double=True, layout=0, est=0, single=0, drop_median=False, weight=0, transform=0,
           on_short=0, ddof=1, explicit_pairs=False, h2=0, h3=0xF0):
    h0 = int(double) | layout << 1 | est << 3 | single << 5 | int(drop_median) << 7
    h1 = weight | transform << 2 | on_short << 4 | ddof << 6 | int(explicit_pairs) << 7
    return bytes([h0, h1, h2, h3])


def seed(value=0):
    return struct.pack("<Q", value)


def uniform(G, n):
    return bytes([G, n])


def rewards(tags):
    out = bytearray()
    for t in tags:
        if isinstance(t, float) and t not in [i / 10 for i in range(11)]:
            out += bytes([248]) + struct.pack("<d", t)
        elif isinstance(t, str):
            out.append(edge_tag(t))
        else:
            out.append(grid(t))
    return bytes(out)


def binary_batch(rng, G, n, p=0.5):
    return [0.9 * (rng.random() < p) + 0.1 * (rng.random() < 0.8) for _ in range(G * n)]


def pipeline_seeds():
    rng = random.Random(7)
    s = {}
    grid_batch = [rng.choice([0.0, 0.1, 0.9, 1.0]) for _ in range(32 * 16)]
    s["paper_default_double"] = header() + seed(1) + uniform(32, 16) + rewards(grid_batch)
    s["paper_default_float"] = header(double=False) + seed(2) + uniform(32, 16) + rewards(grid_batch)
    s["raw_rewards"] = header() + seed(3) + uniform(8, 8) + rewards(binary_batch(rng, 8, 8))
    # Ragged: sizes 4, 0 (empty), 1 (singleton), 5 (odd), 6.
    ragged = bytes([5, 4, 0, 1, 5, 6])
    s["ragged_verl_drop_median"] = (header(layout=1, single=1, drop_median=True) + seed(4) +
                                    ragged + rewards([rng.choice([0, 1, 0.5]) for _ in range(16)]))
    s["ragged_zero_singleton"] = (header(layout=1, single=2, drop_median=True, on_short=2) +
                                  seed(5) + ragged + rewards([1] * 16))
    s["ragged_singleton_error"] = header(layout=1) + seed(6) + ragged + rewards([0.5] * 16)
    ids = [rng.randrange(-10, 10) & 0xFF for _ in range(64)]
    s["ids32_mean_only"] = (header(layout=2, est=1, drop_median=True, single=2) + seed(7) +
                            struct.pack("<H", 64) + bytes(ids) +
                            rewards([rng.choice([0, 1]) for _ in range(64)]))
    s["ids64_rloo"] = (header(layout=3, est=2, drop_median=True, single=2, on_short=2) + seed(8) +
                       struct.pack("<H", 64) + bytes(ids) + rewards([rng.random() for _ in range(64)]))
    s["batch_std_ddof0"] = header(est=3, ddof=0) + seed(9) + uniform(4, 8) + rewards(
        [rng.choice([0, 0.1, 1]) for _ in range(32)])
    # Options: eps (h2 bit 0), keep ratio (bits 2, 3), rounds and per_round (4, 5), coeff (6),
    # schedule (7: step, total, t_max, t_min as small ints / edge entries).
    s["softmax_schedule"] = (header(transform=1, h2=0x80) + bytes([3, 10, 5, 2]) +
                             seed(10) + uniform(16, 8) + rewards(binary_batch(rng, 16, 8)))
    s["log_softmax_fill"] = (header(transform=2, on_short=1) + seed(11) + uniform(16, 4) +
                             rewards([0.5] * 40 + binary_batch(rng, 6, 4)))
    s["inverse_weight_max"] = (header(transform=3, weight=1) + seed(12) + uniform(8, 6) +
                               rewards(binary_batch(rng, 8, 6)))
    s["power_kappa_2_weight_pos"] = (header(weight=3, h2=0x40, h3=0xB0) + bytes([64]) + seed(13) +
                                     uniform(8, 6) + rewards(binary_batch(rng, 8, 6)))
    s["power_kappa_0"] = (header(weight=2, h2=0x40) + bytes([0]) + seed(14) + uniform(8, 4) +
                          rewards(binary_batch(rng, 8, 4)))
    s["shrink_many_constant"] = (header(on_short=2) + seed(15) + uniform(16, 4) +
                                 rewards([1] * 56 + [0, 1, 0, 1, 1, 0, 0, 1]))
    s["error_too_few_pairs"] = header() + seed(16) + uniform(16, 4) + rewards([1] * 60 + [0, 1, 0, 1])
    s["keep_pairs_3"] = (header(explicit_pairs=True) + bytes([3]) + seed(17) + uniform(4, 8) +
                         rewards(binary_batch(rng, 4, 8)))
    s["keep_ratio_1"] = (header(h2=0x04) + bytes([200]) + seed(18) + uniform(4, 8) +
                         rewards(binary_batch(rng, 4, 8)))
    s["keep_ratio_nan"] = (header(h2=0x0C) + bytes([EDGE["nan"]]) + seed(19) + uniform(4, 4) +
                           rewards([0, 1] * 8))
    s["rounds_0"] = header(h2=0x10) + bytes([0]) + seed(20) + uniform(4, 4) + rewards([0, 1] * 8)
    s["per_round_huge"] = (header(h2=0x20) + bytes([0x7F]) + struct.pack("<q", 1 << 62) +
                           seed(21) + uniform(4, 4) + rewards([0, 1] * 8))
    s["rounds_huge"] = (header(h2=0x10) + bytes([0x7F]) + struct.pack("<q", (1 << 63) - 1) +
                        seed(22) + uniform(4, 4) + rewards([0, 1] * 8))
    s["eps_0_constant_groups"] = (header(h2=0x01) + bytes([EDGE["0"]]) + seed(23) + uniform(4, 4) +
                                  rewards([0.5] * 8 + [0, 1, 0, 1, 1, 1, 0, 0]))
    s["eps_nan"] = header(h2=0x01) + bytes([EDGE["nan"]]) + seed(24) + uniform(2, 4) + rewards([0, 1] * 4)
    s["ddof_2"] = header(h2=0x02) + bytes([2]) + seed(25) + uniform(2, 4) + rewards([0, 1] * 4)
    for name in ["nan", "inf", "-inf", "denorm", "dmax", "1e300", "1e-300", "fmax", "fdenorm"]:
        for double in (True, False):
            tags = [0, 1, name, 0.5, 1, 0, 0.1, 0.9]
            s[f"reward_{name}_{'double' if double else 'float'}"] = (
                header(double=double) + seed(26) + uniform(2, 4) + rewards(tags))
    s["all_denormal_group"] = header() + seed(27) + uniform(2, 4) + rewards(["denorm", "-denorm"] * 4)
    s["huge_and_tiny"] = header() + seed(28) + uniform(2, 4) + rewards(
        [1e300, -1e300, 1e-300, 0, 1e30, 1e-30, 3.0, -3.0])
    s["uniform_negative_groups"] = (header(h3=0xF3) + seed(29) + uniform(4, 4) + bytes([1, 0xFE]))
    s["uniform_huge_size"] = (header(h3=0xF3) + seed(30) + uniform(4, 4) + bytes([0, 0x7F]) +
                              struct.pack("<q", 1 << 40))
    s["ragged_bad_offsets"] = (header(layout=1, h3=0xF3) + seed(31) + bytes([3, 4, 4, 4]) +
                               bytes([2, 0xF0]) + rewards([0, 1] * 6))
    s["rows_mismatch"] = header(h3=0xFC) + seed(32) + uniform(4, 4) + bytes([1]) + rewards([0, 1] * 9)
    s["outputs_none_optional"] = header(h3=0x00) + seed(33) + uniform(8, 4) + rewards(binary_batch(rng, 8, 4))
    s["empty_batch"] = header() + seed(34) + uniform(0, 16)
    s["empty_groups_only"] = header(layout=1) + seed(35) + bytes([16]) + bytes(16)
    # Found by a fuzz run: rloo on two double rewards 260 ulps apart near 3.7e279; the rounded
    # mean makes the advantages sum to 1e264 (of +-1.29e266), within the documented bound.
    s["rloo_close_huge_rewards"] = (header(est=2) + seed(37) + uniform(1, 2) +
                                    rewards([-3.6838007914811803e279, -3.6838007914813097e279]))
    s["uniform_empty_groups"] = header() + seed(35) + uniform(16, 0)
    # Found by CI's fuzz run (timeout): corrupt uniform layout, num_groups = 0x7f << 48 groups of
    # 0 rows; every O(G) loop ran for ages before uniform groups of 0 rows were rejected.
    s["uniform_empty_groups_huge"] = (header(h3=0xF3) + seed(36) + uniform(4, 0) + bytes([1, 0x7F]) +
                                      struct.pack("<q", 0x7F << 48))
    # Found by CI's fuzz run (stop 13): batch_std with verl singletons and 65 rewards of -DBL_MAX
    # in int32 id groups; sigma_batch = 0, so a singleton's advantage -DBL_MAX / 1e-6 was -inf.
    # Now refused (out_of_range). The input as found, then small forms for double and float.
    s["batch_std_verl_singleton_ci"] = base64.b64decode(
        "vWAA8AEAAAAAAAAAQQAAAAAAh7/O3T/4iMqL9enX6D//AwACBAAKsAMA/wYCCr8BWADwCwAAAAAAAAAQBAUFBQUFBQUF"
        "BQUFBQUFBQUFt7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3t7e3"
        "t7e3t7e3t7e3t7e3t7e3t7cFBQUFBQUFBQUFBQUFBQUFBQUFBb+/v7+/v7+/vwUFBb+/v7+/v7/4ahIBQQhG6T/4"
        "sEG4jcA77T/4NVH5+dcSDXaRAAIE5j8ACrADAA==")
    s["batch_std_verl_singleton_double"] = (header(layout=1, est=3, single=1, drop_median=True) +
                                            seed(38) + bytes([2, 2, 1]) + rewards(["-dmax"] * 3))
    s["batch_std_verl_singleton_float"] = (header(double=False, layout=1, est=3, single=1,
                                                  drop_median=True) +
                                           seed(39) + bytes([2, 2, 1]) + rewards([1e33] * 3))
    s["empty_input"] = b""
    s["step_beyond_total"] = (header(transform=1, h2=0x80) + bytes([5, 2, EDGE["1"] + 0, 0]) +
                              seed(36) + uniform(4, 4) + rewards([0, 1] * 8))
    return s


def csv_seeds():
    rng = random.Random(11)
    rows = "\n".join(f"p{g},{rng.choice(['0', '1', '0.1', '0.9', '1.0'])}"
                     for g in range(8) for _ in range(4))
    s = {
        "valid": "group,reward\n" + rows + "\n",
        "valid_extra_columns": "id,group,text,reward\n1,a,hi,1\n2,a,\"x, y\",0\n3,b,z,0.5\n4,b,w,0.25\n",
        "bom_crlf": "\ufeffgroup,reward\r\na,1\r\na,0\r\n",
        "quoted_newline": "group,reward\n\"a\nb\",1\n\"a\nb\",0\n\"say \"\"hi\"\"\",1\n\"say \"\"hi\"\"\",0\n",
        "lengths": "group,reward,len\na,1,10\na,0,20\nb,1,5\nb,1,7\n",
        "blank_lines": "\n\ngroup,reward\n\na,1\n\na,0\n\n",
        "plus_and_blanks": "group,reward\na,  +1  \na,\t0\t\n",
        "utf8_group": "group,reward\nprompt-\u00e9\u4e2d,1\nprompt-\u00e9\u4e2d,0\n",
        "missing_reward_column": "group,score\na,1\n",
        "duplicate_column": "group,reward,reward\na,1,0\n",
        "not_a_number": "group,reward\na,abc\na,1\n",
        "nan": "group,reward\na,nan\na,1\n",
        "inf": "group,reward\na,inf\na,1\n",
        "out_of_range": "group,reward\na,1e400\na,1\n",
        "huge_finite": "group,reward\na,1e308\na,-1e308\nb,1.7e308\nb,0\n",
        "tiny": "group,reward\na,4.9e-324\na,0\nb,1e-310\nb,2e-310\n",
        "empty_reward": "group,reward\na,\na,1\n",
        "empty_file": "",
        "header_only": "group,reward\n",
        "field_count": "group,reward\na,1,2\n",
        "unclosed_quote": "group,reward\n\"a,1\n",
        "quote_inside": "group,reward\na\"b,1\n",
        "text_after_quote": "group,reward\n\"a\"b,1\n",
        "odd_and_singleton": "group,reward\na,1\na,0\na,1\nb,1\n",
        "negative_length": "group,reward,len\na,1,-3\na,0,4\n",
        "lengths_missing": "group,reward\na,1\na,0\n",
    }
    out = {}
    for name, text in s.items():
        flag = b"\x01" if name.startswith("lengths") or name == "negative_length" else b"\x00"
        out[name] = flag + text.encode("utf-8")
    out["invalid_utf8_group"] = b"\x00group,reward\n\xff\xfe,1\n\xff\xfe,0\n"
    out["overlong_utf8"] = b"\x00group,reward\n\xc0\xaf,1\n\xc0\xaf,0\n"
    return out


def write(name, seeds):
    d = HERE / "corpus" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for k, v in seeds.items():
        (d / k).write_bytes(v)
    print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    write("pipeline", pipeline_seeds())
    write("csv", csv_seeds())
