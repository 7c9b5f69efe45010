// partition_rows: worked examples of the three methods, invariants on ABS-sized batches,
// comparison with the optimum on small cases, determinism, errors.
#include "support.hpp"

namespace sr = shuffle_r1;

namespace {

struct parted {
  std::vector<std::int64_t> rows, offsets;
  sr::partition_summary summary;
};

parted run(const std::vector<std::int64_t>& rows, const std::vector<std::int64_t>& lengths,
           const sr::partition_options& o) {
  parted p;
  p.rows.assign(rows.size(), -1);
  p.offsets.assign(static_cast<std::size_t>(sr::partition_offsets_size(o)), -1);
  p.summary = sr::partition_rows(sr::cpu, rows, lengths, p.rows, p.offsets, o);
  return p;
}

sr::partition_options opts(std::int64_t R, std::int64_t m, std::int64_t unit,
                           sr::balance_method method) {
  sr::partition_options o;
  o.ranks = R;
  o.minibatches = m;
  o.unit_rows = unit;
  o.method = method;
  return o;
}

/// The smallest possible max load of `w` split into R parts of floor/ceil(n / R) items each.
std::int64_t optimum(const std::vector<std::int64_t>& w, std::int64_t R) {
  const auto n = static_cast<std::int64_t>(w.size());
  const std::int64_t base = n / R, extra = n % R;
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> assign(w.size(), 0);
  const auto rec = [&](auto&& self, std::size_t i) -> void {
    if (i == w.size()) {
      std::vector<std::int64_t> load(R, 0), count(R, 0);
      for (std::size_t k = 0; k < w.size(); ++k) {
        load[assign[k]] += w[k];
        ++count[assign[k]];
      }
      std::int64_t big = 0;
      for (std::int64_t r = 0; r < R; ++r) {
        if (count[r] < base || count[r] > base + 1) return;
        big += count[r] == base + 1;
      }
      if (big != extra) return;
      best = std::min(best, *std::max_element(load.begin(), load.end()));
      return;
    }
    for (std::int64_t r = 0; r < R; ++r) {
      assign[i] = r;
      self(self, i + 1);
    }
  };
  rec(rec, 0);
  return best;
}

}  // namespace

TEST_CASE("partition: worked example of the three methods on five units") {
  // Units (one row each) of 8, 7, 6, 5, 4 tokens on 2 ranks; mean 15 per rank.
  const std::vector<std::int64_t> rows = {0, 1, 2, 3, 4}, len = {8, 7, 6, 5, 4};
  // Karmarkar-Karp: partials {8|7} {6|5} {4|-}; merge {4|-} with {8|7} -> {4+7 | 8} = {11|8},
  // then with {6|5} -> {11+5 | 8+6} = {16|14}. Rank 0 takes the heavier subset {7, 5, 4}.
  parted kk = run(rows, len, opts(2, 1, 1, sr::balance_method::karmarkar_karp));
  CHECK(kk.rows == std::vector<std::int64_t>{1, 3, 4, 0, 2});
  CHECK(kk.offsets == std::vector<std::int64_t>{0, 3, 5});
  CHECK(kk.summary.max_cell_tokens == 16);
  CHECK(kk.summary.min_cell_tokens == 14);
  CHECK(kk.summary.imbalance == doctest::Approx(16.0 / 15.0));
  CHECK(kk.summary.tokens == 30);
  CHECK(kk.summary.units == 5);
  // LPT: 8 -> r0, 7 -> r1, 6 -> r1 (13), 5 -> r0 (13), 4 -> r0 (tie: lowest rank): 17 | 13.
  parted lpt = run(rows, len, opts(2, 1, 1, sr::balance_method::lpt));
  CHECK(lpt.rows == std::vector<std::int64_t>{0, 3, 4, 1, 2});
  CHECK(lpt.offsets == std::vector<std::int64_t>{0, 3, 5});
  CHECK(lpt.summary.imbalance == doctest::Approx(17.0 / 15.0));
  // Contiguous chunks [0, 2) and [2, 5): 15 | 15 here, by luck.
  parted cont = run(rows, len, opts(2, 1, 1, sr::balance_method::contiguous));
  CHECK(cont.rows == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(cont.offsets == std::vector<std::int64_t>{0, 2, 5});
  CHECK(cont.summary.imbalance == 1.0);
  CHECK(optimum(len, 2) == 15);
}

TEST_CASE("partition: pairs stay together, mini-batches keep the training order") {
  // Training order of four pairs; tokens per pair 30, 10, 2, 60. Two ranks, two mini-batches:
  // mini-batch 0 = pairs 0, 1; mini-batch 1 = pairs 2, 3; the heavier pair of each goes to rank 0.
  const std::vector<std::int64_t> rows = {0, 1, 2, 3, 4, 5, 6, 7};
  const std::vector<std::int64_t> len = {10, 20, 5, 5, 1, 1, 30, 30};
  for (const auto method : {sr::balance_method::karmarkar_karp, sr::balance_method::lpt}) {
    const parted p = run(rows, len, opts(2, 2, 2, method));
    // cells rank-major: (r0, mb0) (r0, mb1) (r1, mb0) (r1, mb1)
    CHECK(p.rows == std::vector<std::int64_t>{0, 1, 6, 7, 2, 3, 4, 5});
    CHECK(p.offsets == std::vector<std::int64_t>{0, 2, 4, 6, 8});
    CHECK(p.summary.imbalance == doctest::Approx(60.0 / 31.0));       // mini-batch 1
    CHECK(p.summary.step_imbalance == doctest::Approx(90.0 / 51.0));  // (30 + 60) / (20 + 31)
    CHECK(p.summary.empty_cells == 0);
  }
  // Three ranks for two pairs per mini-batch: one empty cell per mini-batch, reported.
  const parted p = run(rows, len, opts(3, 2, 2, sr::balance_method::karmarkar_karp));
  CHECK(p.summary.empty_cells == 2);
  CHECK(p.offsets.size() == 7);
}

TEST_CASE("partition: never better than the optimum, equal unit counts (brute force)") {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 60; ++trial) {
    const std::int64_t U = 1 + static_cast<std::int64_t>(rng() % 9), R = 2 + trial % 2;
    std::vector<std::int64_t> rows(U), len(U);
    for (std::int64_t i = 0; i < U; ++i) {
      rows[i] = U - 1 - i;  // any order
      len[i] = static_cast<std::int64_t>(rng() % 50);
    }
    std::vector<std::int64_t> w(U);
    for (std::int64_t i = 0; i < U; ++i)
      w[i] = len[rows[i]];
    const std::int64_t best = optimum(w, R);
    for (const auto method : {sr::balance_method::karmarkar_karp, sr::balance_method::lpt,
                              sr::balance_method::contiguous}) {
      INFO("trial ", trial, " method ", sr::to_string(method));
      const parted p = run(rows, len, opts(R, 1, 1, method));
      CHECK(p.summary.max_cell_tokens >= best);
      for (std::int64_t r = 0; r < R; ++r) {
        const std::int64_t c = p.offsets[r + 1] - p.offsets[r];
        CHECK((c == U / R || c == U / R + 1));
      }
      std::vector<std::int64_t> a = p.rows, b = rows;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      CHECK(a == b);
    }
  }
}

TEST_CASE("partition: an ABS-sized batch on 8 ranks x 4 mini-batches") {
  // 2048 pairs of responses of 64..4095 tokens, in a random training order with repeats.
  std::mt19937_64 rng(2024);
  const std::int64_t B = 8192, pairs = 2048;
  std::vector<std::int64_t> len(B);
  for (auto& l : len)
    l = 64 + static_cast<std::int64_t>(rng() % 4032);
  std::vector<std::int64_t> rows(2 * pairs);
  for (std::int64_t k = 0; k < pairs; ++k) {
    const auto hi = static_cast<std::int64_t>(rng() % B);
    rows[2 * k] = hi;
    rows[2 * k + 1] = (hi + 1 + static_cast<std::int64_t>(rng() % (B - 1))) % B;
  }
  std::map<sr::balance_method, sr::partition_summary> by_method;
  for (const auto method : {sr::balance_method::karmarkar_karp, sr::balance_method::lpt,
                            sr::balance_method::contiguous}) {
    const sr::partition_options o = opts(8, 4, 2, method);
    const parted p = run(rows, len, o);
    by_method[method] = p.summary;
    CHECK(run(rows, len, o).rows == p.rows);  // deterministic
    // Mini-batch j of every rank holds units of slice j of the order, each unit whole, in
    // training order; every unit exactly once.
    std::vector<int> seen(pairs, 0);
    std::int64_t tokens = 0;
    for (std::int64_t r = 0; r < 8; ++r) {
      for (std::int64_t j = 0; j < 4; ++j) {
        const std::int64_t c = r * 4 + j;
        std::int64_t last_unit = -1;
        CHECK((p.offsets[c + 1] - p.offsets[c]) % 2 == 0);
        CHECK((p.offsets[c + 1] - p.offsets[c]) / 2 == 64);  // 512 pairs / 8 ranks
        for (std::int64_t i = p.offsets[c]; i < p.offsets[c + 1]; i += 2) {
          // find the unit: the first unit k of slice j with the same two rows, not yet seen
          std::int64_t unit = -1;
          for (std::int64_t k = j * pairs / 4; k < (j + 1) * pairs / 4 && unit < 0; ++k)
            if (!seen[k] && rows[2 * k] == p.rows[i] && rows[2 * k + 1] == p.rows[i + 1]) unit = k;
          REQUIRE(unit >= 0);
          CHECK(unit > last_unit);
          last_unit = unit;
          seen[unit] = 1;
          tokens += len[p.rows[i]] + len[p.rows[i + 1]];
        }
      }
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == pairs);
    CHECK(tokens == p.summary.tokens);
  }
  const auto& kk = by_method[sr::balance_method::karmarkar_karp];
  const auto& lpt = by_method[sr::balance_method::lpt];
  const auto& cont = by_method[sr::balance_method::contiguous];
  MESSAGE("imbalance kk ", kk.imbalance, " lpt ", lpt.imbalance, " contiguous ", cont.imbalance);
  CHECK(kk.imbalance < 1.001);  // 64 units per rank of up to 8190 tokens: near perfect
  CHECK(lpt.imbalance < 1.01);
  CHECK(cont.imbalance > 1.05);  // consecutive chunks of random lengths are far off
  CHECK(kk.step_imbalance <= lpt.step_imbalance);
}

TEST_CASE("partition: bad input is refused before anything is written") {
  const std::vector<std::int64_t> rows = {0, 1, 2, 3}, len = {5, 6, 7, 8};
  std::vector<std::int64_t> out(4, -1), offsets(3, -1);
  const auto refused = [&](const std::vector<std::int64_t>& r, const std::vector<std::int64_t>& l,
                           const sr::partition_options& o, const char* text) {
    CHECK_THROWS_WITH_AS(sr::partition_rows(sr::cpu, r, l, out, offsets, o),
                         doctest::Contains(text), sr::error);
    CHECK(out == std::vector<std::int64_t>(4, -1));
    CHECK(offsets == std::vector<std::int64_t>(3, -1));
  };
  refused(rows, len, opts(0, 1, 2, sr::balance_method::lpt), "options.ranks is 0");
  refused(rows, len, opts(2, 0, 2, sr::balance_method::lpt), "options.minibatches is 0");
  refused(rows, len, opts(2, 1, 3, sr::balance_method::lpt), "not a multiple of");
  refused(rows, len, opts(2, 1, 0, sr::balance_method::lpt), "options.unit_rows is 0");
  refused(rows, len, opts(4, 1, 2, sr::balance_method::lpt), "offsets has 3 entries, needs 5");
  refused({0, 1, 2, 4}, len, opts(2, 1, 2, sr::balance_method::lpt),
          "partition_rows: rows[3] = 4 is outside [0, 4)");
  refused(rows, {5, -6, 7, 8}, opts(2, 1, 2, sr::balance_method::lpt), "lengths[1] = -6");
  refused(rows, len, opts(2, 1, 2, static_cast<sr::balance_method>(7)),
          "options.method has no valid value (7)");
  // Nothing to partition: every cell empty.
  const std::vector<std::int64_t> none;
  sr::partition_summary s = sr::partition_rows(sr::cpu, none, len, out, offsets, opts(2, 1, 2, {}));
  CHECK(offsets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(s.empty_cells == 2);
  CHECK(s.imbalance == 1.0);
  // Unsigned lengths work as well.
  const std::vector<std::uint16_t> short_len = {5, 6, 7, 8};
  s = sr::partition_rows(sr::cpu, rows, short_len, out, offsets, opts(2, 1, 2, {}));
  CHECK(s.tokens == 26);
  CHECK(s.max_cell_tokens == 15);
  sr::balance_method m{};
  CHECK(sr::parse("lpt", m));
  CHECK(m == sr::balance_method::lpt);
}
