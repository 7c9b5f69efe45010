// validate_selection / validate_pipeline: every correct pipeline output passes; every kind of
// corruption is caught with a message naming the entry.
#include <shuffle_r1/validate.hpp>

#include "support.hpp"

namespace sr = shuffle_r1;

namespace {
template <class T>
struct run_result {
  std::vector<T> advantages, weights;
  std::vector<std::int64_t> pairs, order, rows;
  sr::pipeline_summary summary;
  sr::pipeline_outputs<T> out() { return {advantages, pairs, weights, order, rows, {}, {}}; }
};

template <class T, class Layout>
run_result<T> run(const std::vector<T>& r, const Layout& groups, const sr::pipeline_config& c) {
  const auto n = sr::plan_pipeline(groups, static_cast<std::int64_t>(r.size()), c);
  run_result<T> x{std::vector<T>(n.rows),
                  std::vector<T>(n.pairs),
                  std::vector<std::int64_t>(2 * n.pairs),
                  std::vector<std::int64_t>(n.order),
                  std::vector<std::int64_t>(n.training_rows),
                  {}};
  sr::pipeline_workspace<T> ws;
  x.summary = sr::run_pipeline(sr::cpu, r, groups, c, ws, x.out());
  x.order.resize(static_cast<std::size_t>(x.summary.shuffle.size));
  x.rows.resize(static_cast<std::size_t>(2 * x.summary.shuffle.size));
  return x;
}

template <class T>
sr::selection_view<T> view(const run_result<T>& x) {
  sr::selection_view<T> s;
  s.advantages = x.advantages;
  s.pairs = x.pairs;
  s.pair_weights = x.weights;
  s.order = x.order;
  s.rows = x.rows;
  s.rounds = x.summary.shuffle.rounds;
  return s;
}

sr::pipeline_config config(std::uint64_t seed) {
  sr::pipeline_config c;
  c.shuffle.seed = seed;
  c.shuffle.on_short = sr::short_policy::shrink;
  return c;
}
}  // namespace

TEST_CASE_TEMPLATE("validate: correct pipeline outputs pass on every layout", T, float, double) {
  std::mt19937_64 rng(91);
  for (int trial = 0; trial < 24; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 7, 2, 40, true);
    const auto off = test::offsets_of(sizes);
    const auto kind = static_cast<test::reward_kind>(trial % 4);
    const std::vector<T> r =
        test::random_rewards<T>(rng, static_cast<std::size_t>(off.back()), kind);
    sr::pipeline_config c = config(static_cast<std::uint64_t>(trial));
    c.pairs.weight = static_cast<sr::pair_weight>(trial % 4);
    c.shuffle.rounds = 1 + trial % 3;
    auto x = run(r, sr::ragged_groups{off}, c);
    const sr::validation v = sr::validate_selection(sr::ragged_groups{off}, c.pairs, view(x));
    CHECK_MESSAGE(v.ok, v.message);
    CHECK(v.message.empty());
    x.order.resize(static_cast<std::size_t>(x.summary.shuffle.size));
    const auto p = sr::validate_pipeline(sr::ragged_groups{off}, c, x.summary, x.out());
    CHECK_MESSAGE(static_cast<bool>(p), p.message);
    // ids in any order: the same batch interleaved
    std::vector<std::int64_t> ids(r.size());
    for (std::size_t g = 0; g < sizes.size(); ++g)
      for (std::int64_t k = off[g]; k < off[g + 1]; ++k)
        ids[static_cast<std::size_t>(k)] = static_cast<std::int64_t>(g);
    std::vector<std::size_t> perm(r.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<T> r2(r.size());
    std::vector<std::int64_t> ids2(r.size());
    for (std::size_t i = 0; i < perm.size(); ++i) {
      r2[i] = r[perm[i]];
      ids2[i] = ids[perm[i]];
    }
    const sr::id_groups<std::int64_t> idg{ids2};
    auto y = run(r2, idg, c);
    const auto w = sr::validate_selection(idg, c.pairs, view(y));
    CHECK_MESSAGE(w.ok, w.message);
  }
}

TEST_CASE("validate: each kind of corruption is reported") {
  std::mt19937_64 rng(92);
  const std::int64_t G = 12, n = 8;
  const std::vector<float> r = test::random_rewards<float>(rng, G * n, test::reward_kind::graded);
  const sr::uniform_groups groups{G, n};
  sr::pipeline_config c = config(3);
  c.shuffle.rounds = 2;
  const auto good = run(r, groups, c);
  REQUIRE(sr::validate_selection(groups, c.pairs, view(good)).ok);
  REQUIRE(good.order.size() >= 4);

  const auto expect = [&](const run_result<float>& bad, const char* needle) {
    const sr::validation v = sr::validate_selection(groups, c.pairs, view(bad));
    CHECK_FALSE(v.ok);
    CHECK_FALSE(static_cast<bool>(v));
    CHECK_MESSAGE(v.message.find(needle) != std::string::npos, v.message);
  };
  {
    auto bad = good;  // hi and lo swapped (in a group with distinct advantages)
    std::swap(bad.pairs[0], bad.pairs[1]);
    expect(bad, "is below that of lo row");
  }
  {
    auto bad = good;  // a row from another group
    bad.pairs[1] = (bad.pairs[1] + n) % (G * n);
    expect(bad, "of group");
  }
  {
    auto bad = good;  // the same row in two pairs of its group
    bad.pairs[3] = bad.pairs[1];
    expect(bad, "is in two pairs");
  }
  {
    auto bad = good;  // a row outside the batch
    bad.pairs[0] = G * n;
    expect(bad, "outside [0, 96)");
  }
  {
    auto bad = good;  // a pair missing
    bad.pairs.resize(bad.pairs.size() - 2);
    expect(bad, "pairs has");
  }
  {
    auto bad = good;  // a wrong weight
    bad.weights[2] = std::nextafter(bad.weights[2], 10.0f);
    expect(bad, "pair_weights[2]");
  }
  {
    auto bad = good;  // order out of range
    bad.order[1] = static_cast<std::int64_t>(good.pairs.size() / 2);
    expect(bad, "order[1]");
  }
  {
    auto bad = good;  // a repeat within round 0
    bad.order[1] = bad.order[0];
    expect(bad, "repeats a pair within round 0");
  }
  {
    auto bad = good;  // rows that are not the ordered pairs
    bad.rows[2] = bad.rows[3];
    expect(bad, "rows[2]");
  }
  {
    auto bad = good;  // not a multiple of the rounds
    bad.order.pop_back();
    bad.rows.resize(2 * bad.order.size());
    expect(bad, "not a multiple of rounds");
  }
  {
    auto bad = good;  // a non-finite advantage
    bad.advantages[5] = std::numeric_limits<float>::quiet_NaN();
    expect(bad, "advantages[5]");
  }
}

TEST_CASE("validate: unusable inputs of the check throw") {
  const std::vector<float> a(8, 0.0f);
  sr::selection_view<float> s;
  s.advantages = a;
  CHECK_THROWS_AS(sr::validate_selection(sr::uniform_groups{3, 4}, sr::pair_options{}, s),
                  sr::error);  // layout of 12 rows for 8 advantages
  s.rounds = 0;
  try {
    (void)sr::validate_selection(sr::uniform_groups{2, 4}, sr::pair_options{}, s);
    FAIL("no exception");
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::invalid_argument);
    CHECK(std::string(e.what()).find("rounds") != std::string::npos);
  }
}
