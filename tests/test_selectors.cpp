// select_rows (selection rules beside PTS), pair_weights, permute_pairs: worked examples checked
// by hand, invariants against brute force, layouts, determinism, errors.
#include "support.hpp"

namespace sr = shuffle_r1;

namespace {

template <class T>
std::vector<T> grpo(const std::vector<T>& r, const std::vector<std::int64_t>& offsets) {
  std::vector<T> a(r.size());
  sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{offsets}, a);
  return a;
}

template <class T>
std::vector<T> grpo(const std::vector<T>& r, std::int64_t G, std::int64_t n) {
  std::vector<T> a(r.size());
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{G, n}, a);
  return a;
}

struct selected {
  std::vector<std::int64_t> rows;
  sr::selection_summary summary;
};

template <class T, class Layout>
selected select(const std::vector<T>& rewards, const std::vector<T>& adv, const Layout& layout,
                const sr::selector_options& o) {
  const std::int64_t cap =
      sr::count_selected_rows(layout, static_cast<std::int64_t>(adv.size()), o);
  selected s;
  s.rows.assign(static_cast<std::size_t>(cap), -1);
  s.summary = sr::select_rows(sr::cpu, rewards, adv, layout, s.rows, o);
  CHECK(s.summary.rows <= cap);
  for (std::int64_t i = s.summary.rows; i < cap; ++i)
    CHECK(s.rows[i] == -1);  // untouched
  s.rows.resize(static_cast<std::size_t>(s.summary.rows));
  return s;
}

sr::selector_options kind(sr::selector k) {
  sr::selector_options o;
  o.kind = k;
  return o;
}

/// Population variance of the values at the rows.
template <class T>
double variance_of(const std::vector<T>& v, const std::vector<std::int64_t>& rows) {
  long double s = 0, q = 0;
  for (auto r : rows)
    s += v[r];
  const long double mean = s / rows.size();
  for (auto r : rows)
    q += (v[r] - mean) * (v[r] - mean);
  return static_cast<double>(q / rows.size());
}

const sr::selector all_kinds[] = {sr::selector::pts,      sr::selector::pods,    sr::selector::dapo,
                                  sr::selector::std_topk, sr::selector::random,  sr::selector::top,
                                  sr::selector::bottom,   sr::selector::resample};

}  // namespace

TEST_CASE_TEMPLATE("selectors: worked group of SPEC.md - pts, top, bottom, pods", T, float,
                   double) {
  // r = [1,1,0,0,0,1,0,0]: A(1) = +1.2076, A(0) = -0.7246; sorted: 0 1 5 2 3 4 6 7.
  // Max-min pairs (0,7) (1,6) (5,4) weigh 1.9322, (2,3) weighs 1.4492; M = 2.
  const std::vector<T> r = {1, 1, 0, 0, 0, 1, 0, 0};
  const auto a = grpo(r, 1, 8);
  const sr::uniform_groups g{1, 8};
  CHECK(sr::count_selected_rows(g, 8, kind(sr::selector::pods)) == 4);
  CHECK(select(r, a, g, kind(sr::selector::pts)).rows == std::vector<std::int64_t>{0, 7, 1, 6});
  // top: the two heaviest pairs, ties by rank: the outer ones, i.e. PTS.
  CHECK(select(r, a, g, kind(sr::selector::top)).rows == std::vector<std::int64_t>{0, 7, 1, 6});
  // bottom: (2,3) weighs least, then (5,4) is the innermost of the tied ones; rank order.
  CHECK(select(r, a, g, kind(sr::selector::bottom)).rows == std::vector<std::int64_t>{5, 4, 2, 3});
  // PODS, m = 4, in reward units m*var of "top i + bottom 4-i": i=0: 0, i=1: 0.75, i=2: 1,
  // i=3: 0.75, i=4: 0.75 -> i = 2: rows 0 1 | 6 7, descending advantage order.
  const selected p = select(r, a, g, kind(sr::selector::pods));
  CHECK(p.rows == std::vector<std::int64_t>{0, 1, 6, 7});
  CHECK(p.summary.groups_kept == 1);
  CHECK(p.summary.groups_dropped == 0);
}

TEST_CASE_TEMPLATE("selectors: pods takes an unbalanced split when it has more variance", T, float,
                   double) {
  // r = [1,1,1,1,1,0.5,0.4,0], m = 4. m*var: i=2 {1,1,.4,0}: 2.16 - 2.4^2/4 = 0.72;
  // i=3 {1,1,1,0}: 3 - 9/4 = 0.75 (best); i=1 {1,.5,.4,0}: 0.5075; i=0: 0.5075; i=4: 0.
  const std::vector<T> r = {1, 1, 1, 1, 1, T(0.5), T(0.4), 0};
  const auto a = grpo(r, 1, 8);
  const selected p = select(r, a, sr::uniform_groups{1, 8}, kind(sr::selector::pods));
  CHECK(p.rows == std::vector<std::int64_t>{0, 1, 2, 7});
  CHECK(variance_of(r, p.rows) == doctest::Approx(0.1875).epsilon(1e-6));
  const selected q = select(r, a, sr::uniform_groups{1, 8}, kind(sr::selector::pts));
  CHECK(variance_of(r, q.rows) == doctest::Approx(0.18).epsilon(1e-6));  // PTS: {1,1,.4,0}
  // One success among eight: i = 1..4 all give 0.75; the tie goes to i = M = 2 (PTS's rows).
  const std::vector<T> one = {1, 0, 0, 0, 0, 0, 0, 0};
  CHECK(select(one, grpo(one, 1, 8), sr::uniform_groups{1, 8}, kind(sr::selector::pods)).rows ==
        std::vector<std::int64_t>{0, 1, 6, 7});
  // A zero-variance group keeps PTS's rows as well.
  const std::vector<T> flat(8, T(0.9));
  CHECK(select(flat, grpo(flat, 1, 8), sr::uniform_groups{1, 8}, kind(sr::selector::pods)).rows ==
        std::vector<std::int64_t>{0, 1, 6, 7});
}

TEST_CASE_TEMPLATE("selectors: pods reaches the maximum variance of all subsets (brute force)", T,
                   float, double) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 120; ++trial) {
    const std::int64_t n = 2 + 2 * (trial % 5);  // 2..10
    const auto kindr = static_cast<test::reward_kind>(trial % 4);
    const std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(n), kindr);
    const auto a = grpo(r, 1, n);
    for (const double alpha : {0.5, 1.0, 0.25}) {
      sr::selector_options o = kind(sr::selector::pods);
      o.pairs.keep_ratio = alpha;
      const selected p = select(r, a, sr::uniform_groups{1, n}, o);
      const std::int64_t m = 2 * static_cast<std::int64_t>(std::floor(alpha * (n / 2)));
      REQUIRE(static_cast<std::int64_t>(p.rows.size()) == m);
      if (m == 0) continue;
      std::set<std::int64_t> distinct(p.rows.begin(), p.rows.end());
      CHECK(static_cast<std::int64_t>(distinct.size()) == m);
      double best = 0;
      for (std::uint32_t mask = 0; mask < (1u << n); ++mask) {
        if (__builtin_popcount(mask) != m) continue;
        std::vector<std::int64_t> rows;
        for (std::int64_t k = 0; k < n; ++k)
          if (mask >> k & 1u) rows.push_back(k);
        best = std::max(best, variance_of(a, rows));
      }
      INFO("trial ", trial, " n ", n, " alpha ", alpha);
      CHECK(variance_of(a, p.rows) >= best * (1 - 1e-6) - 1e-12);
      // Rows come in descending advantage order.
      for (std::size_t i = 1; i < p.rows.size(); ++i)
        CHECK(a[p.rows[i - 1]] >= a[p.rows[i]]);
    }
  }
}

TEST_CASE_TEMPLATE("selectors: dapo drops zero-variance groups and counts the refills", T, float,
                   double) {
  // g0 all equal (dropped), g1 mixed, g2 within 0.1 of each other, g3 one success; M = 1 each.
  const std::vector<T> r = {1, 1, 1, 1, 1, 0, 1, 0, T(0.5), T(0.5), T(0.5), T(0.6), 0, 1, 0, 0};
  const auto a = grpo(r, 4, 4);
  const sr::uniform_groups g{4, 4};
  sr::selector_options o = kind(sr::selector::dapo);
  selected s = select(r, a, g, o);
  CHECK(s.rows == std::vector<std::int64_t>{4, 5, 8, 9, 12, 13});  // first 2M rows of kept groups
  CHECK(s.summary.groups_dropped == 1);
  CHECK(s.summary.groups_kept == 3);
  o.tolerance = 0.2;  // g2's spread 0.1 is now "zero variance"
  s = select(r, a, g, o);
  CHECK(s.rows == std::vector<std::int64_t>{4, 5, 12, 13});
  CHECK(s.summary.groups_dropped == 2);
  o.keep_all_rows = true;
  CHECK(sr::count_selected_rows(g, 16, o) == 16);
  s = select(r, a, g, o);
  CHECK(s.rows == std::vector<std::int64_t>{4, 5, 6, 7, 12, 13, 14, 15});
  // Rewards are required: dapo reads them.
  std::vector<std::int64_t> out(16);
  CHECK_THROWS_WITH_AS(sr::select_rows(sr::cpu, std::vector<T>{}, a, g, out, o),
                       doctest::Contains("rewards has 0 entries, expected 16"), sr::error);
}

TEST_CASE_TEMPLATE("selectors: std_topk keeps the groups of largest reward std", T, float, double) {
  // sample stds: g0 [1,1,1,1] 0; g1 [1,0,1,0] sqrt(1/3) = 0.5774; g2 [.5,.5,.5,.6] 0.05;
  // g3 [0,1,0,0] 0.5. Ranking: g1, g3, g2, g0.
  const std::vector<T> r = {1, 1, 1, 1, 1, 0, 1, 0, T(0.5), T(0.5), T(0.5), T(0.6), 0, 1, 0, 0};
  const auto a = grpo(r, 4, 4);
  const sr::uniform_groups g{4, 4};
  sr::selector_options o = kind(sr::selector::std_topk);
  selected s = select(r, a, g, o);  // top_k, ratio 0.5: 2 of 4 groups, in group order
  CHECK(s.rows == std::vector<std::int64_t>{4, 5, 12, 13});
  CHECK(s.summary.groups_dropped == 2);
  o.group_ratio = 0.75;  // floor(3) = 3 groups: g1, g3, g2
  CHECK(select(r, a, g, o).rows == std::vector<std::int64_t>{4, 5, 8, 9, 12, 13});
  o.std_mode = sr::std_filter::top_p;
  o.group_ratio = 0.5;  // total 1.1274, target 0.5637: g1 alone (0.5774) reaches it
  CHECK(select(r, a, g, o).rows == std::vector<std::int64_t>{4, 5});
  o.group_ratio = 0.9;  // target 1.0147: g1 + g3 = 1.0774
  CHECK(select(r, a, g, o).rows == std::vector<std::int64_t>{4, 5, 12, 13});
  o.group_ratio = 1.0;  // every group with a positive std, never the constant one
  s = select(r, a, g, o);
  CHECK(s.rows == std::vector<std::int64_t>{4, 5, 8, 9, 12, 13});
  CHECK(s.summary.groups_dropped == 1);
  // All groups constant: top_p keeps nothing.
  const std::vector<T> flat(8, T(1));
  CHECK(select(flat, grpo(flat, 2, 4), sr::uniform_groups{2, 4}, o).rows.empty());
}

TEST_CASE("selectors: random keeps M distinct max-min pairs, uniformly") {
  // Group of 8 graded rewards: 4 max-min pairs, M = 2, so 6 subsets of equal probability.
  const std::vector<double> r = {0.9, 0.2, 0.5, 0.4, 0.1, 0.7, 0.3, 0.8};
  const auto a = grpo(r, 1, 8);
  // All pairs: (0,4) (7,1) (5,6) (2,3).
  const std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{0, 4}, {7, 1}, {5, 6}, {2, 3}};
  std::map<std::pair<int, int>, double> counts;
  const int draws = 6000;
  sr::selector_options o = kind(sr::selector::random);
  o.seed = 42;
  for (int step = 0; step < draws; ++step) {
    o.step = step;
    const selected s = select(r, a, sr::uniform_groups{1, 8}, o);
    REQUIRE(s.rows.size() == 4);
    std::vector<int> ks;
    for (int i = 0; i < 2; ++i) {
      const auto it =
          std::find(pairs.begin(), pairs.end(), std::make_pair(s.rows[2 * i], s.rows[2 * i + 1]));
      REQUIRE(it != pairs.end());  // each emitted pair is one of the max-min pairs
      ks.push_back(static_cast<int>(it - pairs.begin()));
    }
    CHECK(ks[0] < ks[1]);  // distinct, in rank order
    counts[{ks[0], ks[1]}] += 1;
  }
  REQUIRE(counts.size() == 6);
  std::vector<double> observed, prob(6, 1.0 / 6);
  for (const auto& [k, c] : counts)
    observed.push_back(c);
  CHECK(test::chi_square(observed, prob, draws) < test::chi_square_limit(5));
  // Same seed and step: same rows; the draws come from the library's Philox only.
  o.step = 7;
  CHECK(select(r, a, sr::uniform_groups{1, 8}, o).rows ==
        select(r, a, sr::uniform_groups{1, 8}, o).rows);
}

TEST_CASE_TEMPLATE("selectors: top and bottom keep the heaviest and lightest pairs", T, float,
                   double) {
  // [1,1,1,1,0,-4] (advantages given directly): pairs (0,5) w 5, (1,4) w 1, (2,3) w 2.
  // top, M = 2 (keep_pairs): (0,5) and (2,3) - not PTS's (0,5), (1,4): weight rises at rank 3.
  const std::vector<T> a = {1, 1, 1, 1, 0, -4};
  sr::selector_options o = kind(sr::selector::top);
  o.pairs.keep_pairs = 2;
  const sr::uniform_groups g{1, 6};
  CHECK(select(std::vector<T>{}, a, g, o).rows == std::vector<std::int64_t>{0, 5, 2, 3});
  o.kind = sr::selector::pts;
  CHECK(select(std::vector<T>{}, a, g, o).rows == std::vector<std::int64_t>{0, 5, 1, 4});
  o.kind = sr::selector::bottom;
  CHECK(select(std::vector<T>{}, a, g, o).rows == std::vector<std::int64_t>{1, 4, 2, 3});
  o.pairs.weight = sr::pair_weight::max;  // weights 4, 1, 1: bottom takes the inner tie first
  o.pairs.keep_pairs = 1;
  CHECK(select(std::vector<T>{}, a, g, o).rows == std::vector<std::int64_t>{2, 3});

  // Invariant on random batches: the kept weights are the M largest (smallest) of the group.
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 7, 2, 24, true);
    const auto off = test::offsets_of(sizes);
    const auto r = test::random_rewards<T>(rng, static_cast<std::size_t>(off.back()),
                                           static_cast<test::reward_kind>(trial % 4));
    const auto adv = grpo(r, off);
    const sr::ragged_groups layout{off};
    sr::pair_options all;
    all.keep_ratio = 1.0;
    const std::int64_t P = sr::count_pairs(layout, off.back(), all);
    std::vector<std::int64_t> every(2 * P);
    std::vector<T> w(P);
    sr::select_pairs(sr::cpu, adv, layout, every, w, all);
    for (const auto k : {sr::selector::top, sr::selector::bottom}) {
      sr::selector_options so = kind(k);
      so.pairs.keep_ratio = 0.5;
      const selected s = select(r, adv, layout, so);
      std::vector<T> kept(s.rows.size() / 2);
      sr::pair_weights(sr::cpu, adv, s.rows, kept);
      std::size_t at = 0, base = 0;
      for (std::size_t grp = 0; grp < sizes.size(); ++grp) {
        const std::size_t Pg = static_cast<std::size_t>(sizes[grp] / 2), M = Pg / 2;
        std::vector<T> ws(w.begin() + base, w.begin() + base + Pg);
        std::sort(ws.begin(), ws.end(), std::greater<T>());
        std::vector<T> got(kept.begin() + at, kept.begin() + at + M);
        std::sort(got.begin(), got.end(), std::greater<T>());
        std::vector<T> expect(M);
        if (k == sr::selector::top)
          std::copy(ws.begin(), ws.begin() + M, expect.begin());
        else
          std::copy(ws.end() - M, ws.end(), expect.begin());
        CHECK(got == expect);
        // and each kept pair is one of the group's max-min pairs
        for (std::size_t i = 0; i < M; ++i) {
          bool found = false;
          for (std::size_t j = base; j < base + Pg; ++j)
            found |= every[2 * j] == s.rows[2 * (at + i)] &&
                     every[2 * j + 1] == s.rows[2 * (at + i) + 1];
          CHECK(found);
        }
        at += M;
        base += Pg;
      }
      CHECK(at == kept.size());
    }
  }
}

TEST_CASE("selectors: resample draws rows in proportion to |r|^p") {
  // Group 0: [2, 1, 0, 0] (p = 1: 2/3, 1/3, 0, 0); group 1: all zero (uniform or dropped).
  const std::vector<double> r = {2, 1, 0, 0, 0, 0, 0, 0};
  const auto a = grpo(r, 2, 4);
  sr::selector_options o = kind(sr::selector::resample);
  o.pairs.keep_ratio = 1.0;  // M = 2: 4 draws per group
  std::vector<double> c0(4, 0), c1(4, 0);
  const int steps = 3000;
  for (int step = 0; step < steps; ++step) {
    o.step = step;
    const selected s = select(r, a, sr::uniform_groups{2, 4}, o);
    REQUIRE(s.rows.size() == 8);
    for (int i = 0; i < 4; ++i) {
      REQUIRE(s.rows[i] < 2);  // zero-mass rows are never drawn
      c0[s.rows[i]] += 1;
      REQUIRE(s.rows[4 + i] >= 4);
      c1[s.rows[4 + i] - 4] += 1;
    }
  }
  CHECK(test::chi_square({c0[0], c0[1]}, {2.0 / 3, 1.0 / 3}, 4 * steps) <
        test::chi_square_limit(1));
  CHECK(test::chi_square(c1, {0.25, 0.25, 0.25, 0.25}, 4 * steps) < test::chi_square_limit(3));
  // p = 2: 4/5 and 1/5.
  o.power = 2;
  std::vector<double> c2(2, 0);
  for (int step = 0; step < steps; ++step) {
    o.step = step;
    const selected s = select(r, a, sr::uniform_groups{2, 4}, o);
    for (int i = 0; i < 4; ++i)
      c2[s.rows[i]] += 1;
  }
  CHECK(test::chi_square(c2, {0.8, 0.2}, 4 * steps) < test::chi_square_limit(1));
  // Dropping zero-mass groups.
  o.zero_mass = sr::zero_mass_policy::drop;
  const selected d = select(r, a, sr::uniform_groups{2, 4}, o);
  CHECK(d.rows.size() == 4);
  CHECK(d.summary.groups_dropped == 1);
  CHECK(d.summary.groups_kept == 1);
  // On advantages instead: |A| of [2,1,0,0] is positive everywhere, so every row can come.
  o.resample_advantages = true;
  o.power = 1;
  std::set<std::int64_t> seen;
  for (int step = 0; step < 200; ++step) {
    o.step = step;
    const selected s = select(std::vector<double>{}, a, sr::uniform_groups{2, 4}, o);
    seen.insert(s.rows.begin(), s.rows.begin() + 4);
  }
  CHECK(seen == std::set<std::int64_t>{0, 1, 2, 3});
}

TEST_CASE_TEMPLATE("selectors: invariants of every rule on random batches and layouts", T, float,
                   double) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 40; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 9, 2, trial % 5 == 4 ? 90 : 20, true);
    const auto off = test::offsets_of(sizes);
    const auto B = static_cast<std::size_t>(off.back());
    const auto r = test::random_rewards<T>(rng, B, static_cast<test::reward_kind>(trial % 4));
    const auto a = grpo(r, off);
    // The same batch with its rows permuted, grouped by ids: the selections must map across.
    std::vector<std::int64_t> perm(B);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::int64_t> group_of(B), ids(B);
    for (std::size_t g = 0; g < sizes.size(); ++g)
      for (std::int64_t k = off[g]; k < off[g + 1]; ++k)
        group_of[k] = static_cast<std::int64_t>(g);
    // New row i holds old row old_of[i]: the group labels are shuffled, and each group's rows
    // keep their relative order, so that ties resolve identically.
    std::vector<std::int64_t> old_of(B), next(off.begin(), off.end() - 1);
    for (std::size_t i = 0; i < B; ++i)
      old_of[i] = next[group_of[perm[i]]]++;
    std::vector<T> r2(B), a2(B);
    for (std::size_t i = 0; i < B; ++i) {
      r2[i] = r[old_of[i]];
      a2[i] = a[old_of[i]];
      ids[i] = 1000 + group_of[old_of[i]];  // first appearance order may differ from g
    }
    for (const sr::selector k : all_kinds) {
      INFO("trial ", trial, " selector ", sr::to_string(k));
      sr::selector_options o = kind(k);
      o.seed = 9;
      o.step = trial;
      const selected s = select(r, a, sr::ragged_groups{off}, o);
      std::int64_t cap = 0;
      for (auto n : sizes)
        cap += 2 * (n / 2 / 2);
      CHECK(sr::count_selected_rows(sr::ragged_groups{off}, off.back(), o) == cap);
      // Per group: at most 2M rows, all from the group, distinct except for resample.
      std::vector<std::int64_t> per(sizes.size(), 0);
      for (const auto row : s.rows) {
        REQUIRE(row >= 0);
        REQUIRE(row < off.back());
        ++per[group_of[row]];
      }
      for (std::size_t g = 0; g < sizes.size(); ++g) {
        CHECK(per[g] <= 2 * (sizes[g] / 4));
        if (k != sr::selector::dapo && k != sr::selector::std_topk)
          CHECK(per[g] == 2 * (sizes[g] / 4));  // only the group filters drop rows
      }
      // Groups come in layout order.
      for (std::size_t i = 1; i < s.rows.size(); ++i)
        CHECK(group_of[s.rows[i - 1]] <= group_of[s.rows[i]]);
      if (k != sr::selector::resample) {
        std::set<std::int64_t> distinct(s.rows.begin(), s.rows.end());
        CHECK(distinct.size() == s.rows.size());
      }
      // Pair rules emit (hi, lo) pairs.
      if (k == sr::selector::pts || k == sr::selector::top || k == sr::selector::bottom ||
          k == sr::selector::random)
        for (std::size_t i = 0; i < s.rows.size(); i += 2)
          CHECK(a[s.rows[i]] >= a[s.rows[i + 1]]);
      if (k == sr::selector::pts) {
        std::vector<std::int64_t> pairs(s.rows.size());
        std::vector<T> w(s.rows.size() / 2);
        sr::select_pairs(sr::cpu, a, sr::ragged_groups{off}, pairs, w);
        CHECK(pairs == s.rows);
        std::vector<T> w2(w.size());
        sr::pair_weights(sr::cpu, a, s.rows, w2);
        CHECK(w2 == w);
      }
      // The permuted batch grouped by ids gives the same selection, mapped. Only for the rules
      // that decide group by group without randomness: std_topk breaks ties by group order and
      // the random rules draw by group index, both of which follow first appearance.
      if (k != sr::selector::random && k != sr::selector::resample && k != sr::selector::std_topk) {
        const std::vector<std::int64_t> id_rows =
            select(r2, a2, sr::id_groups<std::int64_t>{ids}, o).rows;
        std::multiset<std::int64_t> mapped, direct(s.rows.begin(), s.rows.end());
        for (auto row : id_rows)
          mapped.insert(old_of[row]);
        CHECK(mapped == direct);
      }
    }
  }
}

TEST_CASE("selectors: odd groups, keep_pairs and empty input follow the PTS options") {
  const std::vector<double> r = {1, 0, 0.5, 0.2, 0.9};
  const auto a = grpo(r, 1, 5);
  std::vector<std::int64_t> out(8, -1);
  for (const sr::selector k : all_kinds) {
    sr::selector_options o = kind(k);
    CHECK_THROWS_AS(sr::count_selected_rows(sr::uniform_groups{1, 5}, 5, o), sr::error);
    CHECK_THROWS_WITH_AS(sr::select_rows(sr::cpu, r, a, sr::uniform_groups{1, 5}, out, o),
                         doctest::Contains("odd number"), sr::error);
    CHECK(out == std::vector<std::int64_t>(8, -1));
    o.pairs.odd = sr::odd_policy::drop_median;
    o.pairs.keep_pairs = 2;  // the median row is never needed: 4 rows
    CHECK(sr::count_selected_rows(sr::uniform_groups{1, 5}, 5, o) == 4);
    const selected s = select(r, a, sr::uniform_groups{1, 5}, o);
    if (k == sr::selector::pts || k == sr::selector::pods || k == sr::selector::top ||
        k == sr::selector::random || k == sr::selector::bottom) {
      CHECK(s.rows.size() == 4);
      CHECK(std::find(s.rows.begin(), s.rows.end(), 2) == s.rows.end());  // median 0.5 left out
    }
    const std::vector<double> none;
    std::vector<std::int64_t> empty_out;
    const sr::selection_summary e =
        sr::select_rows(sr::cpu, none, none, sr::uniform_groups{0, 8}, empty_out, kind(k));
    CHECK(e.rows == 0);
    CHECK(e.groups == 0);
  }
}

TEST_CASE("selectors: bad input is refused before anything is written") {
  const std::vector<double> r = {1, 0, 0, 1, 1, 1, 0, 0};
  const auto a = grpo(r, 2, 4);
  const sr::uniform_groups g{2, 4};
  std::vector<std::int64_t> out(4, -7);
  const auto refused = [&](const sr::selector_options& o, const std::vector<double>& rr,
                           const std::vector<double>& aa, const char* text) {
    CHECK_THROWS_WITH_AS(sr::select_rows(sr::cpu, rr, aa, g, out, o), doctest::Contains(text),
                         sr::error);
    CHECK(out == std::vector<std::int64_t>(4, -7));
  };
  sr::selector_options o;
  o.kind = sr::selector::dapo;
  o.tolerance = -1;
  refused(o, r, a, "select_rows: options.tolerance is -1");
  o = {};
  o.kind = sr::selector::std_topk;
  o.group_ratio = 0;
  refused(o, r, a, "options.group_ratio is 0, expected a value in (0, 1]");
  o = {};
  o.power = std::numeric_limits<double>::infinity();
  refused(o, r, a, "options.power is inf");
  o = {};
  o.step = -1;
  refused(o, r, a, "options.step is -1");
  o = {};
  o.kind = static_cast<sr::selector>(99);
  refused(o, r, a, "options.kind has no valid selector value (99)");
  o = {};
  o.pairs.keep_ratio = 1.5;
  refused(o, r, a, "options.keep_ratio is 1.5");
  o = {};
  auto bad = a;
  bad[5] = std::numeric_limits<double>::quiet_NaN();
  refused(o, r, bad, "advantages[5] is NaN");
  o.kind = sr::selector::std_topk;
  auto badr = r;
  badr[6] = -std::numeric_limits<double>::infinity();
  refused(o, badr, a, "rewards[6] is -inf");
  o = {};
  o.pairs.keep_ratio = 1.0;  // needs 8 entries
  refused(o, r, a, "rows has 4 entries, needs 8 (count_selected_rows)");
  o = {};
  refused(o, std::vector<double>(3, 0.0), a, "rewards has 3 entries, expected 8 (or 0");
  // The layout is checked too.
  std::vector<std::int64_t> offsets = {0, 4, 9};
  CHECK_THROWS_WITH_AS(sr::select_rows(sr::cpu, r, a, sr::ragged_groups{offsets}, out),
                       doctest::Contains("groups.offsets[2] is 9, expected the number of rows 8"),
                       sr::error);
}

TEST_CASE("selectors: names round-trip") {
  for (const sr::selector k : all_kinds) {
    sr::selector parsed = sr::selector::pts;
    CHECK(sr::parse(sr::to_string(k), parsed));
    CHECK(parsed == k);
  }
  sr::selector s = sr::selector::pods;
  CHECK_FALSE(sr::parse("PTS", s));
  CHECK(s == sr::selector::pods);
  sr::std_filter f{};
  CHECK(sr::parse("top_p", f));
  CHECK(f == sr::std_filter::top_p);
  sr::zero_mass_policy z{};
  CHECK(sr::parse("drop", z));
  CHECK(z == sr::zero_mass_policy::drop);
}

TEST_CASE("selectors: pair_weights agrees with select_pairs and checks its input") {
  const std::vector<float> a = {2.0f, -0.5f, 1.0f, -3.0f};
  const std::vector<std::int64_t> pairs = {0, 3, 1, 2};  // second pair given lo first
  std::vector<float> w(2);
  sr::pair_weights(sr::cpu, a, pairs, w, sr::pair_weight::sum);
  CHECK(w == std::vector<float>{5.0f, 1.5f});
  sr::pair_weights(sr::cpu, a, pairs, w, sr::pair_weight::pos);  // |max(A_a, A_b)|
  CHECK(w == std::vector<float>{2.0f, 1.0f});
  sr::pair_weights(sr::cpu, a, pairs, w, sr::pair_weight::max);
  CHECK(w == std::vector<float>{3.0f, 1.0f});
  sr::pair_weights(sr::cpu, a, pairs, w, sr::pair_weight::mean);
  CHECK(w == std::vector<float>{2.5f, 0.75f});
  std::vector<float> small(1, -1.0f);
  CHECK_THROWS_WITH_AS(sr::pair_weights(sr::cpu, a, pairs, small),
                       doctest::Contains("weights has 1 entries, needs 2"), sr::error);
  const std::vector<std::int64_t> outside = {0, 4};
  CHECK_THROWS_WITH_AS(sr::pair_weights(sr::cpu, a, outside, w),
                       doctest::Contains("pairs[1] = 4 is outside [0, 4)"), sr::error);
  const std::vector<std::int64_t> odd = {0, 1, 2};
  CHECK_THROWS_AS(sr::pair_weights(sr::cpu, a, odd, w), sr::error);
  CHECK(small == std::vector<float>{-1.0f});
}

TEST_CASE("selectors: permute_pairs is a seeded uniform permutation") {
  std::vector<std::int64_t> order(10);
  sr::permute_pairs(sr::cpu, 10, order, 3, 1);
  std::vector<std::int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> iota(10);
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  std::vector<std::int64_t> again(10);
  sr::permute_pairs(sr::cpu, 10, again, 3, 1);
  CHECK(again == order);
  sr::permute_pairs(sr::cpu, 10, again, 3, 2);
  CHECK(again != order);
  // Position of pair 0 among 4 is uniform over many steps.
  std::vector<double> where(4, 0);
  std::vector<std::int64_t> o4(4);
  for (int step = 0; step < 4000; ++step) {
    sr::permute_pairs(sr::cpu, 4, o4, 17, step);
    where[std::find(o4.begin(), o4.end(), 0) - o4.begin()] += 1;
  }
  CHECK(test::chi_square(where, {0.25, 0.25, 0.25, 0.25}, 4000) < test::chi_square_limit(3));
  std::vector<std::int64_t> tiny(2, -1);
  CHECK_THROWS_WITH_AS(sr::permute_pairs(sr::cpu, 3, tiny),
                       doctest::Contains("order has 2 entries, needs 3"), sr::error);
  CHECK_THROWS_AS(sr::permute_pairs(sr::cpu, -1, tiny), sr::error);
  CHECK(tiny == std::vector<std::int64_t>(2, -1));
  sr::permute_pairs(sr::cpu, 0, tiny);  // K = 0 writes nothing
  CHECK(tiny == std::vector<std::int64_t>(2, -1));
}
