// Allocation failures: every public CPU function that allocates, given fresh memory, is made to
// fail at each heap allocation of a clean call in turn (tests/alloc_counter.cpp throws
// std::bad_alloc from the n-th operator new). A call that throws must leave every output
// untouched; a call that absorbs the failure (std::stable_sort falls back when its nothrow
// buffer request fails) must still give the reference result.
#include "support.hpp"

// tests/alloc_counter.cpp
long long allocation_count();
void fail_allocation(long long nth);  // the nth allocation from now throws; -1 disarms

namespace sr = shuffle_r1;

namespace {

// Counts the allocations of a clean call of run(), then fails allocation k of a fresh call for
// every such k. reset() restores the outputs to their initial contents before each call;
// untouched() tests that they still hold them, expected() that they hold the reference result.
// Returns the number of calls that threw.
template <class Run, class Reset, class Untouched, class Expected>
int fail_every_allocation(Run run, Reset reset, Untouched untouched, Expected expected) {
  reset();
  const long long before = allocation_count();
  run();
  const long long total = allocation_count() - before;
  CHECK(expected());
  int failures = 0;
  for (long long k = 0; k < total; ++k) {
    reset();
    bool threw = false;
    fail_allocation(k);
    try {
      run();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    fail_allocation(-1);
    CAPTURE(k);
    CAPTURE(total);
    if (threw) {
      ++failures;
      CHECK(untouched());
    } else {
      CHECK(expected());
    }
  }
  return failures;
}

// Skewed weights (one pair holds nearly all the mass): rounds need rebuilt tables (extra
// phases), whose memory must exist before the first entry of the order is written.
std::vector<double> skewed_weights() {
  std::vector<double> w(300, 1e-9);
  w[5] = 1e9;
  w[17] = 1e6;
  for (std::size_t j = 100; j < 300; j += 2)
    w[j] = 0.0;  // zero-mass pairs for the fill stream
  return w;
}

}  // namespace

TEST_CASE("alloc failure: normalize_advantages writes nothing") {
  std::mt19937_64 rng(3);
  std::vector<std::int64_t> offsets = {0};
  for (int g = 0; g < 40; ++g)
    offsets.push_back(offsets.back() + 1 + g % 3 + (g == 7 ? 90 : 0));  // one group of 91 rows
  const std::vector<double> r = test::random_rewards<double>(
      rng, static_cast<std::size_t>(offsets.back()), test::reward_kind::graded);
  for (const sr::estimator kind : {sr::estimator::grpo, sr::estimator::batch_std}) {
    sr::advantage_options o;
    o.kind = kind;
    o.singleton = sr::singleton_policy::zero;
    const sr::ragged_groups groups{offsets};
    std::vector<double> expected(r.size()), m0(40), s0(40);
    sr::normalize_advantages(sr::cpu, r, groups, expected, o, {m0, s0});
    std::vector<double> a, m, s;
    CAPTURE(sr::to_string(kind));
    const int failures = fail_every_allocation(
        [&] {
          sr::normalize_workspace ws;
          sr::normalize_advantages(sr::cpu, r, groups, a, o, {m, s}, ws);
        },
        [&] {
          a.assign(r.size(), -5.0);
          m.assign(40, -5.0);
          s.assign(40, -5.0);
        },
        [&] {
          return a == std::vector<double>(r.size(), -5.0) && m == std::vector<double>(40, -5.0) &&
                 s == std::vector<double>(40, -5.0);
        },
        [&] { return a == expected && m == m0 && s == s0; });
    CHECK(failures > 0);
  }
}

TEST_CASE("alloc failure: select_pairs writes nothing") {
  std::mt19937_64 rng(4);
  const std::vector<std::int64_t> offsets = {0, 16, 116, 140};  // a group of 100 rows
  const std::vector<float> adv = test::random_rewards<float>(
      rng, static_cast<std::size_t>(offsets.back()), test::reward_kind::normal);
  const sr::ragged_groups groups{offsets};
  const std::int64_t K = sr::count_pairs(groups, static_cast<std::int64_t>(adv.size()));
  std::vector<std::int64_t> pairs0(static_cast<std::size_t>(2 * K));
  std::vector<float> w0(static_cast<std::size_t>(K));
  (void)sr::select_pairs(sr::cpu, adv, groups, pairs0, w0);
  std::vector<std::int64_t> pairs;
  std::vector<float> w;
  const int failures =
      fail_every_allocation([&] { (void)sr::select_pairs(sr::cpu, adv, groups, pairs, w); },
                            [&] {
                              pairs.assign(pairs0.size(), -5);
                              w.assign(w0.size(), -5.0f);
                            },
                            [&] {
                              return pairs == std::vector<std::int64_t>(pairs0.size(), -5) &&
                                     w == std::vector<float>(w0.size(), -5.0f);
                            },
                            [&] { return pairs == pairs0 && w == w0; });
  CHECK(failures > 0);
}

TEST_CASE("alloc failure: shuffle_pairs writes nothing, extra phases and fill included") {
  const std::vector<double> w = skewed_weights();
  sr::shuffle_options o;
  o.rounds = 3;
  o.per_round = 250;  // 200 pairs have non-zero mass: the fill stream draws 50 per round
  o.on_short = sr::short_policy::fill;
  std::vector<std::int64_t> expected(static_cast<std::size_t>(sr::shuffle_size(300, o)));
  const sr::shuffle_summary s0 = sr::shuffle_pairs(sr::cpu, w, expected, o);
  CHECK(s0.extra_phases > 0);
  CHECK(s0.nonzero_pairs < o.per_round);
  std::vector<std::int64_t> order;
  const int failures = fail_every_allocation(
      [&] {
        sr::shuffle_workspace ws;
        (void)sr::shuffle_pairs(sr::cpu, w, order, o, ws);
      },
      [&] { order.assign(expected.size(), -5); },
      [&] { return order == std::vector<std::int64_t>(expected.size(), -5); },
      [&] { return order == expected; });
  CHECK(failures > 0);
}

TEST_CASE("alloc failure: run_pipeline writes nothing") {
  // on_short = fill: the pipeline writes the views directly, after sizing every buffer.
  // Variant 1: most groups have zero-weight pairs, so that the fill stream's tables are built.
  // Variant 2: a ragged layout with a group of 100 rows (the sort buffer of PTS and the
  // normalization's large-group buffers) and no out.order (the order is kept in the workspace).
  const auto check = [](const auto& groups, std::vector<float> r, bool constant, bool ragged) {
    const auto B = static_cast<std::int64_t>(r.size());
    sr::pipeline_config c;
    c.shuffle.on_short = sr::short_policy::fill;
    c.shuffle.rounds = 4;
    c.shuffle.per_round = 50;  // K >= 100 pairs; with `constant`, fewer than 50 have weight > 0
    const sr::pipeline_sizes sizes = sr::plan_pipeline(groups, B, c);
    struct outputs {
      std::vector<float> adv, w;
      std::vector<std::int64_t> pairs, order, rows;
      std::vector<double> mean, sd;
      bool operator==(const outputs& o) const {
        return adv == o.adv && w == o.w && pairs == o.pairs && order == o.order && rows == o.rows &&
               mean == o.mean && sd == o.sd;
      }
    };
    const auto make = [&] {
      const auto n = [](std::int64_t x) { return static_cast<std::size_t>(x); };
      return outputs{std::vector<float>(n(sizes.rows), -5.0f),
                     std::vector<float>(n(sizes.pairs), -5.0f),
                     std::vector<std::int64_t>(n(2 * sizes.pairs), -5),
                     std::vector<std::int64_t>(ragged ? 0 : n(sizes.order), -5),
                     std::vector<std::int64_t>(n(sizes.training_rows), -5),
                     std::vector<double>(n(sizes.groups), -5.0),
                     std::vector<double>(n(sizes.groups), -5.0)};
    };
    const outputs fresh = make();
    outputs expected = make(), got = make();
    const auto view = [](outputs& x) {
      return sr::pipeline_outputs<float>{x.adv, x.pairs, x.w, x.order, x.rows, x.mean, x.sd};
    };
    {
      sr::pipeline_workspace<float> ws;
      const auto s = sr::run_pipeline(sr::cpu, r, groups, c, ws, view(expected));
      CHECK((s.shuffle.nonzero_pairs < s.shuffle.per_round) == constant);
      CHECK(ws.buffers().advantages.empty());  // the direct path
    }
    const int failures = fail_every_allocation(
        [&] {
          sr::pipeline_workspace<float> ws;
          (void)sr::run_pipeline(sr::cpu, r, groups, c, ws, view(got));
        },
        [&] { got = fresh; }, [&] { return got == fresh; }, [&] { return got == expected; });
    CHECK(failures > 0);
  };
  const std::int64_t G = 50, n = 8;
  std::vector<float> r(static_cast<std::size_t>(G * n));
  sr::synthetic_rewards(G, n, 9, sr::host_span<float>(r));
  SUBCASE("uniform") {
    check(sr::uniform_groups{G, n}, r, false, false);
  }
  SUBCASE("uniform, mostly constant") {
    for (std::size_t i = 0; i < r.size() * 3 / 4; ++i)
      r[i] = 0.5f;
    check(sr::uniform_groups{G, n}, r, true, false);
  }
  SUBCASE("ragged with a group of 100 rows, no out.order") {
    std::vector<std::int64_t> offsets;
    for (std::int64_t g = 0; g <= G; ++g)
      offsets.push_back(g * n + (g == G ? 92 : 0));
    std::vector<float> rr(static_cast<std::size_t>(offsets.back()));
    sr::synthetic_rewards(1, offsets.back(), 9, sr::host_span<float>(rr));
    check(sr::ragged_groups{offsets}, rr, false, true);
  }
}

TEST_CASE("alloc failure: select_rows writes nothing, every rule") {
  // A small group first, then larger ones: per-group buffers that grew inside the group loop
  // reallocated after the first group's rows were written (pods, random, top, bottom, resample).
  std::mt19937_64 rng(5);
  const std::vector<std::int64_t> offsets = {0, 4, 40, 48};
  const auto B = static_cast<std::size_t>(offsets.back());
  const std::vector<double> r = test::random_rewards<double>(rng, B, test::reward_kind::graded);
  const std::vector<double> adv = test::random_rewards<double>(rng, B, test::reward_kind::normal);
  const sr::ragged_groups groups{offsets};
  for (const sr::selector kind :
       {sr::selector::pts, sr::selector::pods, sr::selector::dapo, sr::selector::std_topk,
        sr::selector::random, sr::selector::top, sr::selector::bottom, sr::selector::resample}) {
    sr::selector_options o;
    o.kind = kind;
    o.seed = 11;
    const auto cap =
        static_cast<std::size_t>(sr::count_selected_rows(groups, static_cast<std::int64_t>(B), o));
    std::vector<std::int64_t> want(cap, -5), rows;
    (void)sr::select_rows(sr::cpu, r, adv, groups, want, o);
    CAPTURE(sr::to_string(kind));
    const int failures = fail_every_allocation(
        [&] { (void)sr::select_rows(sr::cpu, r, adv, groups, rows, o); },
        [&] { rows.assign(cap, -5); }, [&] { return rows == std::vector<std::int64_t>(cap, -5); },
        [&] { return rows == want; });
    // pts (groups within the rank limit) and dapo allocate nothing
    if (kind != sr::selector::pts && kind != sr::selector::dapo) CHECK(failures > 0);
  }
}
