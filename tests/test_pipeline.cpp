// run_pipeline: equals the three stages composed, reuses its workspace without allocating,
// writes nothing on error.
#include "support.hpp"

// Heap allocations of the whole test binary (tests/alloc_counter.cpp replaces operator new).
long long allocation_count();

namespace sr = shuffle_r1;

namespace {
template <class T>
struct buffers {
  std::vector<T> advantages, weights;
  std::vector<std::int64_t> pairs, order, rows;
  std::vector<double> mean, std_;
  explicit buffers(const sr::pipeline_sizes& n)
      : advantages(n.rows),
        weights(n.pairs),
        pairs(2 * n.pairs),
        order(n.order),
        rows(n.training_rows),
        mean(n.groups),
        std_(n.groups) {}
  sr::pipeline_outputs<T> out() { return {advantages, pairs, weights, order, rows, mean, std_}; }
};
}  // namespace

TEST_CASE_TEMPLATE("pipeline: equals normalize, select_pairs and shuffle_pairs composed", T, float,
                   double) {
  std::mt19937_64 rng(31);
  const std::int64_t G = 64, n = 16;
  const std::vector<T> r = test::random_rewards<T>(rng, G * n, test::reward_kind::graded);
  const sr::uniform_groups groups{G, n};
  sr::pipeline_config c;
  c.shuffle.seed = 5;
  c.shuffle.step = 11;
  c.shuffle.on_short = sr::short_policy::shrink;
  const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, G * n, c);
  CHECK(sizes.pairs == G * 4);
  CHECK(sizes.order == 8 * (G * 4 / 8));
  buffers<T> b(sizes);
  sr::pipeline_workspace<T> ws;
  const auto s = sr::run_pipeline(sr::cpu, r, groups, c, ws, b.out());

  std::vector<T> adv(r.size()), w(sizes.pairs);
  std::vector<double> mean(G), sd(G);
  sr::normalize_advantages(sr::cpu, r, groups, adv, c.advantage, {mean, sd});
  CHECK(adv == b.advantages);
  CHECK(mean == b.mean);
  CHECK(sd == b.std_);
  std::vector<std::int64_t> pairs(2 * sizes.pairs);
  CHECK(sr::select_pairs(sr::cpu, adv, groups, pairs, w, c.pairs) == s.pairs);
  CHECK(pairs == b.pairs);
  CHECK(w == b.weights);
  std::vector<std::int64_t> order(sizes.order);
  const auto ss = sr::shuffle_pairs(sr::cpu, w, order, c.shuffle);
  order.resize(ss.size);
  CHECK(std::vector<std::int64_t>(b.order.begin(), b.order.begin() + s.shuffle.size) == order);
  std::vector<std::int64_t> rows(2 * order.size());
  sr::pairs_to_rows(sr::cpu, pairs, order, rows);
  CHECK(std::vector<std::int64_t>(b.rows.begin(), b.rows.begin() + 2 * s.shuffle.size) == rows);
  std::set<std::int64_t> distinct(order.begin(), order.end());
  CHECK(s.distinct_pairs_used == static_cast<std::int64_t>(distinct.size()));
}

TEST_CASE("pipeline: distinct_pairs_used counts the pairs of both streams of every round") {
  // Half of the groups are constant (zero-weight pairs), and a round takes 3/4 of the pairs:
  // the fill stream draws zero-weight pairs after the weighted ones.
  std::mt19937_64 rng(8);
  const std::int64_t G = 40, n = 8;
  std::vector<float> r = test::random_rewards<float>(rng, G * n, test::reward_kind::graded);
  for (std::int64_t i = 0; i < G * n / 2; ++i)
    r[static_cast<std::size_t>(i)] = 1.0f;
  const sr::uniform_groups groups{G, n};
  sr::pipeline_config c;
  c.shuffle.on_short = sr::short_policy::fill;
  c.shuffle.rounds = 3;
  c.shuffle.per_round = 3 * G * 2 / 4;  // K = 2G pairs (alpha 0.5, 8 rows per group)
  const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, G * n, c);
  buffers<float> b(sizes);
  sr::pipeline_workspace<float> ws;
  for (int step = 0; step < 4; ++step) {
    c.shuffle.step = step;
    const auto s = sr::run_pipeline(sr::cpu, r, groups, c, ws, b.out());
    CHECK(s.shuffle.nonzero_pairs < s.shuffle.per_round);
    const std::set<std::int64_t> distinct(b.order.begin(), b.order.begin() + s.shuffle.size);
    CHECK(s.distinct_pairs_used == static_cast<std::int64_t>(distinct.size()));
  }
}

TEST_CASE("pipeline: the training rows are the drawn pairs' rows, in both streams, at any size") {
  // run_pipeline gathers the rows while ABS draws (a drawn pair's line requested ahead from
  // 2^15 pairs on): rows[2 i], rows[2 i + 1] must be the rows of pair order[i] for every entry
  // of both streams, and the entries past the order untouched.
  struct shape {
    std::int64_t G, n;
    bool constant_half;  // half of the groups constant: the fill stream draws zero-weight pairs
  };
  for (const shape sh : {shape{40, 8, true}, shape{8192, 16, false}, shape{8192, 16, true}}) {
    CAPTURE(sh.G);
    CAPTURE(sh.constant_half);
    std::mt19937_64 rng(static_cast<std::uint64_t>(sh.G));
    std::vector<float> r = test::random_rewards<float>(rng, static_cast<std::size_t>(sh.G * sh.n),
                                                       test::reward_kind::graded);
    if (sh.constant_half)
      for (std::size_t i = 0; i < r.size() / 2; ++i)
        r[i] = 1.0f;
    const sr::uniform_groups groups{sh.G, sh.n};
    sr::pipeline_config c;
    c.shuffle.on_short = sr::short_policy::fill;
    c.shuffle.per_round = sh.G * sh.n / 4 * 3 / 4;  // 3/4 of the K = G n / 4 pairs
    const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, sh.G * sh.n, c);
    buffers<float> b(sizes);
    b.rows.resize(b.rows.size() + 6, -3);
    sr::pipeline_workspace<float> ws;
    const auto s = sr::run_pipeline(sr::cpu, r, groups, c, ws, b.out());
    CHECK((s.shuffle.nonzero_pairs < s.shuffle.per_round) == sh.constant_half);
    CHECK(s.shuffle.size == sizes.order);
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < s.shuffle.size; ++i) {
      const auto j = static_cast<std::size_t>(b.order[static_cast<std::size_t>(i)]);
      wrong += b.rows[static_cast<std::size_t>(2 * i)] != b.pairs[2 * j] ||
               b.rows[static_cast<std::size_t>(2 * i + 1)] != b.pairs[2 * j + 1];
    }
    CHECK(wrong == 0);
    for (std::size_t i = static_cast<std::size_t>(2 * s.shuffle.size); i < b.rows.size(); ++i)
      CHECK(b.rows[i] == -3);
  }
}

TEST_CASE("pipeline: a reused workspace allocates nothing after the first call") {
  std::mt19937_64 rng(32);
  const std::int64_t G = 512, n = 16;
  const std::vector<float> r = test::random_rewards<float>(rng, G * n, test::reward_kind::graded);
  for (const bool ids : {false, true}) {
    CAPTURE(ids);
    std::vector<std::int64_t> id(r.size());
    for (std::size_t i = 0; i < id.size(); ++i)
      id[i] = static_cast<std::int64_t>(i) / n;
    sr::pipeline_config c;
    c.shuffle.on_short = sr::short_policy::fill;
    const sr::pipeline_sizes sizes = sr::plan_pipeline(sr::uniform_groups{G, n}, G * n, c);
    buffers<float> b(sizes);
    const auto out = b.out();
    sr::pipeline_workspace<float> ws;
    const auto run = [&] {
      if (ids) {
        (void)sr::run_pipeline(sr::cpu, r, sr::id_groups<std::int64_t>{id}, c, ws, out);
      } else {
        (void)sr::run_pipeline(sr::cpu, r, sr::uniform_groups{G, n}, c, ws, out);
      }
    };
    run();
    const std::size_t bytes = ws.bytes();
    CHECK(bytes > 0);
    for (int step = 1; step < 5; ++step) {
      c.shuffle.step = step;
      const long long before = allocation_count();
      run();
      CHECK(allocation_count() - before == 0);
    }
    CHECK(ws.bytes() == bytes);
    ws.release();
    CHECK(ws.bytes() == 0);
  }
}

TEST_CASE("pipeline: an error late in the pipeline leaves every output untouched") {
  // All groups zero-variance except one: too few non-zero pairs for T under on_short = error.
  std::vector<float> r(64, 1.0f);
  r[0] = 0.0f;
  const sr::uniform_groups groups{8, 8};
  sr::pipeline_config c;
  c.shuffle.rounds = 2;  // K = 16 pairs, T = 8, only 2 pairs with non-zero weight
  const auto sizes = sr::plan_pipeline(groups, 64, c);
  buffers<float> b(sizes);
  for (auto& x : b.advantages)
    x = -7;
  for (auto& x : b.pairs)
    x = -7;
  for (auto& x : b.order)
    x = -7;
  for (auto& x : b.rows)
    x = -7;
  for (auto& x : b.mean)
    x = -7;
  sr::pipeline_workspace<float> ws;
  CHECK_THROWS_WITH_AS((void)sr::run_pipeline(sr::cpu, r, groups, c, ws, b.out()),
                       doctest::Contains("only 2 of 16 pairs have non-zero sampling mass"),
                       sr::error);
  for (auto x : b.advantages)
    CHECK(x == -7);
  for (auto x : b.pairs)
    CHECK(x == -7);
  for (auto x : b.order)
    CHECK(x == -7);
  for (auto x : b.rows)
    CHECK(x == -7);
  for (auto x : b.mean)
    CHECK(x == -7);
  // too small outputs are refused before any work
  std::vector<std::int64_t> small(3);
  sr::pipeline_outputs<float> o = b.out();
  o.order = small;
  c.shuffle.on_short = sr::short_policy::shrink;
  CHECK_THROWS_WITH_AS((void)sr::run_pipeline(sr::cpu, r, groups, c, ws, o),
                       doctest::Contains("out.order has 3 entries, needs 16"), sr::error);
  for (auto x : b.advantages)
    CHECK(x == -7);
}

TEST_CASE_TEMPLATE("pipeline: the direct and the staged outputs are the same bits", T, float,
                   double) {
  // run_pipeline writes the caller's views directly when no later check can fail (on_short
  // shrink or fill, bounded weights, disjoint views) and through its workspace otherwise (on_short
  // error, rewards too large for the bound, overlapping views): every path gives the same bits.
  std::mt19937_64 rng(34);
  const std::int64_t G = 96, n = 16;
  std::vector<T> r = test::random_rewards<T>(rng, G * n, test::reward_kind::normal);
  const sr::uniform_groups groups{G, n};
  sr::pipeline_config c;
  c.shuffle.seed = 3;
  c.shuffle.step = 2;
  c.shuffle.on_short = sr::short_policy::shrink;  // normal rewards: every pair has weight > 0
  const auto sizes = sr::plan_pipeline(groups, G * n, c);
  buffers<T> want(sizes);
  sr::pipeline_workspace<T> ws;
  const auto s = sr::run_pipeline(sr::cpu, r, groups, c, ws, want.out());
  CHECK(s.shuffle.size == sizes.order);
  // which path a call took shows in the workspace: the direct path only reserves the staging
  const auto staged = [&ws] { return !ws.buffers().advantages.empty(); };
  CHECK_FALSE(staged());
  // the direct path wrote what the three stages composed give
  std::vector<T> adv(r.size());
  sr::normalize_advantages(sr::cpu, r, groups, adv, c.advantage);
  CHECK(adv == want.advantages);
  const auto same = [&](const buffers<T>& got) {
    CHECK(got.advantages == want.advantages);
    CHECK(got.pairs == want.pairs);
    CHECK(got.weights == want.weights);
    CHECK(got.order == want.order);
    CHECK(got.rows == want.rows);
    CHECK(got.mean == want.mean);
    CHECK(got.std_ == want.std_);
  };
  SUBCASE("on_short = error: staged") {
    sr::pipeline_config e = c;
    e.shuffle.on_short = sr::short_policy::error;
    buffers<T> got(sizes);
    (void)sr::run_pipeline(sr::cpu, r, groups, e, ws, got.out());
    CHECK(staged());
    same(got);
  }
  SUBCASE("advantages written over the rewards: staged") {
    buffers<T> got(sizes);
    got.advantages = r;
    (void)sr::run_pipeline(sr::cpu, sr::host_span<const T>(got.advantages), groups, c, ws,
                           got.out());
    CHECK(staged());
    same(got);
  }
  SUBCASE("pairs written over the layout's rows: staged") {
    // An indexed layout (the identity) whose rows array is also out.pairs (keep ratio 1: 2K =
    // B entries): PTS reads the layout after normalization has written, so this call stages.
    sr::pipeline_config k = c;
    k.pairs.keep_ratio = 1.0;
    std::vector<std::int64_t> offsets, rows(r.size());
    for (std::int64_t g = 0; g <= G; ++g)
      offsets.push_back(g * n);
    std::iota(rows.begin(), rows.end(), 0);
    const sr::indexed_groups indexed{offsets, rows};
    const auto ks = sr::plan_pipeline(indexed, G * n, k);
    REQUIRE(2 * ks.pairs == G * n);
    buffers<T> direct(ks), over(ks);
    (void)sr::run_pipeline(sr::cpu, r, indexed, k, ws, direct.out());
    CHECK_FALSE(staged());
    sr::pipeline_outputs<T> o = over.out();
    o.pairs = rows;
    (void)sr::run_pipeline(sr::cpu, r, indexed, k, ws, o);
    CHECK(staged());
    CHECK(rows == direct.pairs);
    CHECK(over.advantages == direct.advantages);
    CHECK(over.weights == direct.weights);
    CHECK(over.order == direct.order);
    CHECK(over.rows == direct.rows);
  }
  SUBCASE("a fresh workspace, each view alone") {
    buffers<T> got(sizes);
    sr::pipeline_outputs<T> o;
    o.pairs = got.pairs;
    sr::pipeline_workspace<T> fresh;
    (void)sr::run_pipeline(sr::cpu, r, groups, c, fresh, o);
    CHECK(got.pairs == want.pairs);
    o = {};
    o.rows = got.rows;
    (void)sr::run_pipeline(sr::cpu, r, groups, c, fresh, o);
    CHECK(got.rows == want.rows);
  }
  SUBCASE("rewards beyond the weight bound: staged") {
    // mean_only with |x| near max(T) / 4: the bound of late_checks_cannot_fail (4.001 max|x|)
    // exceeds max(T), so the outputs are staged; the results are still the composed stages'.
    sr::pipeline_config m = c;
    m.advantage.kind = sr::estimator::mean_only;
    const T big = std::numeric_limits<T>::max() / 4;
    std::vector<T> rb(r.size());
    for (std::size_t i = 0; i < r.size(); ++i)
      rb[i] = r[i] > 0 ? big : -big;
    CHECK_FALSE(sr::detail::cpu::late_checks_cannot_fail<T>(m, static_cast<double>(big)));
    buffers<T> got(sizes);
    (void)sr::run_pipeline(sr::cpu, rb, groups, m, ws, got.out());
    CHECK(staged());
    std::vector<T> a(rb.size()), w(static_cast<std::size_t>(sizes.pairs));
    std::vector<std::int64_t> p(static_cast<std::size_t>(2 * sizes.pairs));
    sr::normalize_advantages(sr::cpu, rb, groups, a, m.advantage);
    (void)sr::select_pairs(sr::cpu, a, groups, p, w, m.pairs);
    CHECK(got.advantages == a);
    CHECK(got.pairs == p);
    CHECK(got.weights == w);
  }
}

TEST_CASE("pipeline: late_checks_cannot_fail and bytes_disjoint") {
  namespace d = sr::detail::cpu;
  sr::pipeline_config c;
  CHECK_FALSE(d::late_checks_cannot_fail<float>(c, 1.0));  // on_short = error can fail
  for (const auto policy : {sr::short_policy::shrink, sr::short_policy::fill}) {
    c.shuffle.on_short = policy;
    c.advantage.kind = sr::estimator::grpo;  // f = 1 / eps = 1e6
    CHECK(d::late_checks_cannot_fail<float>(c, 1.0));
    CHECK(d::late_checks_cannot_fail<float>(c, 0.0));
    CHECK(d::late_checks_cannot_fail<float>(c, 8e31));
    CHECK_FALSE(d::late_checks_cannot_fail<float>(c, 9e31));      // 4.001e6 * 9e31 > 3.4e38
    CHECK(d::late_checks_cannot_fail<double>(c, 1e150));          // below 2^500: no rescaling
    CHECK_FALSE(d::late_checks_cannot_fail<double>(c, 0x1p501));  // rescaled: staged
    CHECK_FALSE(d::late_checks_cannot_fail<double>(c, 0x1p-401));
    c.advantage.eps = 0.0;
    CHECK_FALSE(d::late_checks_cannot_fail<float>(c, 1.0));
    c.advantage.eps = 5e-324;  // 1 / eps overflows to +inf
    CHECK_FALSE(d::late_checks_cannot_fail<float>(c, 1.0));
    c.advantage.eps = 1e-6;
    c.advantage.kind = sr::estimator::batch_std;
    CHECK(d::late_checks_cannot_fail<float>(c, 1.0));
    c.advantage.kind = sr::estimator::mean_only;
    const double top = std::numeric_limits<float>::max();
    CHECK(d::late_checks_cannot_fail<float>(c, top / 4.002));
    CHECK_FALSE(d::late_checks_cannot_fail<float>(c, top / 4));
    c.advantage.kind = sr::estimator::rloo;
    CHECK(d::late_checks_cannot_fail<float>(c, top / 8.003));
    CHECK_FALSE(d::late_checks_cannot_fail<float>(c, top / 8));
  }
  const char buf[64] = {};
  CHECK(d::bytes_disjoint({{buf, 16}, {buf + 16, 16}, {buf + 32, 32}}));
  CHECK_FALSE(d::bytes_disjoint({{buf, 16}, {buf + 15, 2}}));
  CHECK_FALSE(d::bytes_disjoint({{buf + 8, 4}, {buf + 32, 8}, {buf, 64}}));
  CHECK(d::bytes_disjoint({{buf, 64}, {buf + 8, 0}, {nullptr, 0}}));  // empty views ignored
}

TEST_CASE("pipeline: optional outputs may be skipped") {
  std::mt19937_64 rng(33);
  const std::vector<double> r = test::random_rewards<double>(rng, 256, test::reward_kind::normal);
  sr::pipeline_workspace<double> ws;
  std::vector<std::int64_t> rows(
      static_cast<std::size_t>(sr::plan_pipeline(sr::uniform_groups{16, 16}, 256).training_rows));
  sr::pipeline_outputs<double> out;
  out.rows = rows;
  const auto s = sr::run_pipeline(sr::cpu, r, sr::uniform_groups{16, 16}, {}, ws, out);
  CHECK(s.shuffle.size == 64);
  for (auto x : rows)
    CHECK((x >= 0 && x < 256));
}

TEST_CASE("pipeline: empty batch") {
  const std::vector<float> r;
  sr::pipeline_workspace<float> ws;
  const auto s = sr::run_pipeline(sr::cpu, r, sr::uniform_groups{0, 16}, {}, ws, {});
  CHECK(s.pairs == 0);
  CHECK(s.shuffle.size == 0);
  CHECK(s.distinct_pairs_used == 0);
}
