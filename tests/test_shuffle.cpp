// shuffle_pairs (ABS): exact successive-sampling distribution, transforms, zero weights,
// short-round policies, determinism, rows, errors.
#include "support.hpp"

// Heap allocations of the whole test binary (tests/alloc_counter.cpp replaces operator new).
long long allocation_count();

namespace sr = shuffle_r1;

namespace {

std::vector<std::int64_t> shuffle(const std::vector<double>& w, const sr::shuffle_options& o,
                                  sr::shuffle_summary* summary = nullptr) {
  std::vector<std::int64_t> order(
      static_cast<std::size_t>(sr::shuffle_size(static_cast<std::int64_t>(w.size()), o)));
  const sr::shuffle_summary s = sr::shuffle_pairs(sr::cpu, w, order, o);
  order.resize(static_cast<std::size_t>(s.size));
  if (summary) *summary = s;
  return order;
}

/// Chi-square test of the ordered sequences of T draws per round against exact successive
/// sampling with masses q.
void check_sequences(const std::vector<double>& w, const std::vector<double>& q, int T,
                     sr::shuffle_options o, int rounds) {
  o.rounds = rounds;
  o.per_round = T;
  const auto order = shuffle(w, o);
  const auto exact = test::sequence_probabilities(q, T);
  std::map<std::vector<int>, double> seen;
  for (int r = 0; r < rounds; ++r) {
    std::vector<int> seq(order.begin() + r * T, order.begin() + (r + 1) * T);
    seen[seq] += 1;
  }
  std::vector<double> observed, prob;
  for (const auto& [seq, p] : exact) {
    observed.push_back(seen.count(seq) ? seen[seq] : 0.0);
    prob.push_back(p);
  }
  double in_support = 0;
  for (double x : observed)
    in_support += x;
  CHECK(in_support == rounds);  // no sequence outside the support (e.g. a zero-mass pair)
  const double chi = test::chi_square(observed, prob, rounds);
  const int dof = static_cast<int>(prob.size()) - 1;
  INFO("chi-square " << chi << " with " << dof << " degrees of freedom, seed " << o.seed);
  CHECK(chi < test::chi_square_limit(dof));
}

}  // namespace

TEST_CASE("shuffle: power transform gives exact successive sampling, order included") {
  sr::shuffle_options o;
  o.seed = 12345;
  check_sequences({1, 2, 3, 4}, {1, 2, 3, 4}, 2, o, 200000);
  check_sequences({1, 2, 3, 4}, {1, 2, 3, 4}, 4, o, 200000);  // full permutations
  check_sequences({0.5, 0.25, 8, 1, 1}, {0.5, 0.25, 8, 1, 1}, 3, o, 200000);
}

TEST_CASE("shuffle: the sampler is not uniform when weights are not (the test has power)") {
  // Sanity check of the chi-square machinery: uniform probabilities must be rejected for
  // weights 1..4.
  sr::shuffle_options o;
  o.rounds = 50000;
  o.per_round = 1;
  const auto order = shuffle({1, 2, 3, 4}, o);
  std::vector<double> counts(4, 0);
  for (auto j : order)
    counts[j] += 1;
  CHECK(test::chi_square(counts, {0.25, 0.25, 0.25, 0.25}, 50000) > test::chi_square_limit(3));
  CHECK(test::chi_square(counts, {0.1, 0.2, 0.3, 0.4}, 50000) < test::chi_square_limit(3));
}

TEST_CASE("shuffle: every transform samples with its own masses") {
  const std::vector<double> w = {0.0, 0.4, 1.3, 2.0, 0.7};
  sr::shuffle_options o;
  o.seed = 99;
  o.on_short = sr::short_policy::shrink;
  SUBCASE("power kappa 2: q = w^2, zero weight never drawn") {
    o.coeff = 2.0;
    std::vector<double> q;
    for (double x : w)
      q.push_back(x * x);
    check_sequences(w, q, 2, o, 150000);
  }
  SUBCASE("power kappa 0: uniform, zero weight included") {
    o.coeff = 0.0;
    check_sequences(w, {1, 1, 1, 1, 1}, 2, o, 150000);
  }
  SUBCASE("softmax at mid-schedule: q = exp(w / tau)") {
    o.kind = sr::transform::softmax;
    o.step = 3;
    o.total_steps = 10;
    const double tau = (2.0 - 1.0) * std::cos(M_PI / 2 * 0.3) + 1.0;
    std::vector<double> q;
    for (double x : w)
      q.push_back(std::exp(x / tau));
    check_sequences(w, q, 2, o, 150000);
  }
  SUBCASE("log_softmax at the end of the schedule: q = ln(1 + w / tau)") {
    o.kind = sr::transform::log_softmax;
    o.step = 10;
    o.total_steps = 10;
    const double tau = (2.0 - 1.0) * std::sin(M_PI / 2 * 1.0) + 1.0;
    std::vector<double> q;
    for (double x : w)
      q.push_back(std::log1p(x / tau));
    check_sequences(w, q, 2, o, 150000);
  }
  SUBCASE("inverse: q = 1 / (w + 1e-6) favours weak pairs") {
    o.kind = sr::transform::inverse;
    const std::vector<double> w2 = {0.5, 1.0, 2.0, 4.0};
    std::vector<double> q;
    for (double x : w2)
      q.push_back(1.0 / (x + 1e-6));
    check_sequences(w2, q, 2, o, 150000);
  }
}

TEST_CASE("shuffle: first-draw and inclusion probabilities on a larger case") {
  const std::vector<double> w = {3, 1, 4, 1, 5, 9, 2, 6};
  const int T = 3, rounds = 300000;
  sr::shuffle_options o;
  o.rounds = rounds;
  o.per_round = T;
  o.seed = 2718;
  const auto order = shuffle(w, o);
  const auto exact = test::sequence_probabilities(w, T);
  std::vector<double> first(w.size(), 0), incl(w.size(), 0), first_obs(w.size(), 0),
      incl_obs(w.size(), 0);
  for (const auto& [seq, p] : exact) {
    first[seq[0]] += p;
    for (int j : seq)
      incl[j] += p;
  }
  for (int r = 0; r < rounds; ++r) {
    first_obs[order[r * T]] += 1;
    for (int i = 0; i < T; ++i)
      incl_obs[order[r * T + i]] += 1;
  }
  CHECK(test::chi_square(first_obs, first, rounds) < test::chi_square_limit(7));
  for (std::size_t j = 0; j < w.size(); ++j) {
    // inclusion is Bernoulli per round: z-score below 6.1 (tail probability ~1e-9)
    const double sd = std::sqrt(rounds * incl[j] * (1 - incl[j]));
    CAPTURE(j);
    CHECK(std::fabs(incl_obs[j] - rounds * incl[j]) < 6.1 * sd);
  }
}

TEST_CASE("shuffle: rounds hold distinct pairs, pairs repeat across rounds") {
  std::mt19937_64 rng(4);
  std::vector<double> w(200);
  for (auto& x : w)
    x = std::uniform_real_distribution<double>(0, 3)(rng);
  sr::shuffle_options o;  // S = 8, T = 25
  sr::shuffle_summary s;
  const auto order = shuffle(w, o, &s);
  CHECK(s.rounds == 8);
  CHECK(s.per_round == 25);
  CHECK(order.size() == 200);
  std::vector<int> count(200, 0);
  for (int r = 0; r < 8; ++r) {
    std::set<std::int64_t> distinct(order.begin() + r * 25, order.begin() + (r + 1) * 25);
    CHECK(distinct.size() == 25);
    for (auto j : distinct)
      ++count[j];
  }
  CHECK(*std::max_element(count.begin(), count.end()) > 1);
  // one round of all pairs is a permutation
  o.rounds = 1;
  o.per_round = 200;
  const auto perm = shuffle(w, o);
  CHECK(std::set<std::int64_t>(perm.begin(), perm.end()).size() == 200);
}

TEST_CASE("shuffle: a pair holding nearly all the mass does not stall the sampler") {
  std::vector<double> w(64, 1e-9);
  w[5] = 1e9;
  w[17] = 1e6;
  sr::shuffle_options o;
  o.rounds = 3;
  o.per_round = 64;
  sr::shuffle_summary s;
  const auto order = shuffle(w, o, &s);
  for (int r = 0; r < 3; ++r) {
    CHECK(order[r * 64] == 5);
    CHECK(order[r * 64 + 1] == 17);
    CHECK(std::set<std::int64_t>(order.begin() + r * 64, order.begin() + (r + 1) * 64).size() ==
          64);
  }
  CHECK(s.extra_phases > 0);  // the skewed tail needed rebuilt tables
  // weights over 600 orders of magnitude: every positive weight still gets drawn
  std::vector<double> wide = {1e-300, 1.0, 1e300, 1e-10};
  o.rounds = 1;
  o.per_round = 4;
  const auto all = shuffle(wide, o);
  CHECK(all[0] == 2);
  CHECK(std::set<std::int64_t>(all.begin(), all.end()).size() == 4);
}

TEST_CASE("shuffle: zero-weight pairs and the short-round policies") {
  const std::vector<double> w = {0, 2, 0, 1, 0, 0};  // two non-zero pairs
  sr::shuffle_options o;
  o.rounds = 4;
  o.per_round = 3;
  std::vector<std::int64_t> order(12, -1);
  try {
    (void)sr::shuffle_pairs(sr::cpu, w, order, o);
    FAIL("no exception");
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::too_few_pairs);
    CHECK(std::string(e.what()).find("only 2 of 6 pairs have non-zero sampling mass, fewer than "
                                     "the pairs per round (options.per_round = 3;") !=
          std::string::npos);
  }
  for (auto x : order)
    CHECK(x == -1);
  SUBCASE("shrink: shorter rounds of the non-zero pairs only") {
    o.on_short = sr::short_policy::shrink;
    sr::shuffle_summary s;
    const auto got = shuffle(w, o, &s);
    CHECK(s.per_round == 2);
    CHECK(got.size() == 8);
    for (int r = 0; r < 4; ++r)
      CHECK(std::set<std::int64_t>(got.begin() + 2 * r, got.begin() + 2 * r + 2) ==
            std::set<std::int64_t>{1, 3});
  }
  SUBCASE("fill: the non-zero pairs first, then zero-weight pairs uniformly") {
    o.on_short = sr::short_policy::fill;
    o.rounds = 60000;
    const auto got = shuffle(w, o);
    std::vector<double> third(6, 0);
    for (int r = 0; r < o.rounds; ++r) {
      CHECK(std::set<std::int64_t>(got.begin() + 3 * r, got.begin() + 3 * r + 2) ==
            std::set<std::int64_t>{1, 3});
      third[got[3 * r + 2]] += 1;
    }
    CHECK(third[1] == 0);
    CHECK(third[3] == 0);
    CHECK(test::chi_square({third[0], third[2], third[4], third[5]}, {0.25, 0.25, 0.25, 0.25},
                           o.rounds) < test::chi_square_limit(3));
  }
  SUBCASE("all weights zero: error by default, fill draws uniformly") {
    const std::vector<double> zero(5, 0.0);
    o.on_short = sr::short_policy::error;
    o.rounds = 2;
    o.per_round = 2;
    std::vector<std::int64_t> out(4);
    CHECK_THROWS_AS((void)sr::shuffle_pairs(sr::cpu, zero, out, o), sr::error);
    o.on_short = sr::short_policy::fill;
    CHECK(shuffle(zero, o).size() == 4);
    o.on_short = sr::short_policy::shrink;
    CHECK(shuffle(zero, o).empty());
  }
}

TEST_CASE("shuffle: deterministic in (seed, step), independent across steps and seeds") {
  std::vector<double> w(500);
  std::mt19937_64 rng(1);
  for (auto& x : w)
    x = std::uniform_real_distribution<double>(0, 2)(rng);
  sr::shuffle_options o;
  o.seed = 42;
  o.step = 7;
  const auto a = shuffle(w, o), b = shuffle(w, o);
  CHECK(a == b);
  o.step = 8;
  const auto c = shuffle(w, o);
  o.step = 7;
  o.seed = 43;
  const auto d = shuffle(w, o);
  CHECK(a != c);
  CHECK(a != d);
  // float weights with the same values give the same order
  std::vector<float> wf(w.begin(), w.end());
  std::vector<double> wd(wf.begin(), wf.end());
  o.seed = 42;
  std::vector<std::int64_t> of(static_cast<std::size_t>(sr::shuffle_size(500, o)));
  (void)sr::shuffle_pairs(sr::cpu, wf, of, o);
  CHECK(of == shuffle(wd, o));
}

TEST_CASE("shuffle: T defaults to floor(K / S) and an empty input gives nothing") {
  sr::shuffle_options o;
  CHECK(sr::shuffle_size(2048, o) == 2048);
  CHECK(sr::shuffle_size(2047, o) == 8 * 255);
  CHECK(sr::shuffle_size(7, o) == 0);
  CHECK(sr::shuffle_size(0, o) == 0);
  const std::vector<double> none;
  std::vector<std::int64_t> out;
  const auto s = sr::shuffle_pairs(sr::cpu, none, out, o);
  CHECK(s.size == 0);
}

TEST_CASE("shuffle: rows expand pairs in draw order") {
  const std::vector<std::int64_t> pairs = {10, 11, 20, 21, 30, 31};
  const std::vector<std::int64_t> order = {2, 0, 2};
  std::vector<std::int64_t> rows(6);
  sr::pairs_to_rows(sr::cpu, pairs, order, rows);
  CHECK(rows == std::vector<std::int64_t>{30, 31, 10, 11, 30, 31});
  const std::vector<std::int64_t> bad = {3};
  std::vector<std::int64_t> rows2(2, -1);
  CHECK_THROWS_WITH_AS(sr::pairs_to_rows(sr::cpu, pairs, bad, rows2),
                       doctest::Contains("order[0] = 3 is outside [0, 3)"), sr::error);
  CHECK(rows2[0] == -1);
}

TEST_CASE("shuffle: bad options and weights are refused and nothing is written") {
  std::vector<double> w = {1, 2, 3, 4};
  std::vector<std::int64_t> order(64, -1);
  const auto expect = [&](const sr::shuffle_options& o, sr::errc code, const char* text) {
    try {
      (void)sr::shuffle_pairs(sr::cpu, w, order, o);
      FAIL("no exception");
    } catch (const sr::error& e) {
      CHECK(e.code() == code);
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
    for (auto x : order)
      CHECK(x == -1);
  };
  sr::shuffle_options o;
  o.rounds = 0;
  expect(o, sr::errc::invalid_argument, "options.rounds is 0");
  o = {};
  o.per_round = 5;
  expect(o, sr::errc::too_few_pairs, "options.per_round is 5 but there are only 4 pairs");
  o = {};
  o.step = -1;
  expect(o, sr::errc::invalid_argument, "options.step is -1");
  o.step = std::int64_t{1} << 32;
  expect(o, sr::errc::invalid_argument, "expected 0 <= step < 2^32");
  o = {};
  o.coeff = -1;
  expect(o, sr::errc::invalid_argument, "options.coeff is -1");
  o = {};
  o.kind = sr::transform::softmax;
  o.step = 5;
  expect(o, sr::errc::invalid_argument, "options.step is 5, beyond options.total_steps = 1");
  o.step = 0;
  o.t_min = 0;
  expect(o, sr::errc::invalid_argument, "must be finite with 0 < t_min <= t_max");
  o.t_min = 3;
  expect(o, sr::errc::invalid_argument, "must be finite with 0 < t_min <= t_max");
  o = {};
  o.kind = sr::transform::log_softmax;
  o.total_steps = 0;
  expect(o, sr::errc::invalid_argument, "options.total_steps is 0");
  o = {};
  o.kind = static_cast<sr::transform>(9);
  expect(o, sr::errc::invalid_argument, "options.kind");
  o = {};
  o.on_short = static_cast<sr::short_policy>(9);
  expect(o, sr::errc::invalid_argument, "options.on_short");
  o = {};
  o.rounds = 1;
  o.per_round = 2;
  w[2] = std::numeric_limits<double>::quiet_NaN();
  expect(o, sr::errc::non_finite, "weights[2] is NaN");
  w[2] = -0.5;
  expect(o, sr::errc::invalid_argument, "weights[2] is -0.5, expected >= 0");
  w[2] = 3;
  std::vector<std::int64_t> small(1);
  CHECK_THROWS_WITH_AS((void)sr::shuffle_pairs(sr::cpu, w, small, o),
                       doctest::Contains("order has 1 entries, needs 2"), sr::error);
}

TEST_CASE("shuffle: the vectorized Philox batches give the words of the scalar generator") {
  // draw_words picks AVX-512, AVX2 or the portable loop at run time; each path this CPU can run
  // must give, for every draw of a batch, the words of philox4x32_10 on that draw's counter.
  namespace cpu = sr::detail::cpu;
  constexpr int half = cpu::draw_batch / 2;
  const std::uint64_t seeds[] = {0, 1, 0x0123456789ABCDEFull, ~std::uint64_t{0}};
  const std::uint32_t firsts[] = {0, 16, 0x7FFFFFF0u, 0xFFFFFFF0u};
  int paths_checked = 0;
  for (const std::uint64_t seed : seeds)
    for (const std::uint32_t first : firsts) {
      const sr::philox_key key = sr::philox_key_from_seed(seed);
      const std::uint32_t c1 = (3u << 24) | 5u, round = 7, step = 0xFFFFFFFFu;
      std::uint64_t expect[2][half];
      for (int b = 0; b < half; ++b) {
        const sr::philox_block x = sr::philox4x32_10(
            sr::philox_block{{first + static_cast<std::uint32_t>(b), c1, round, step}}, key);
        expect[0][b] = (std::uint64_t{x.v[1]} << 32) | x.v[0];
        expect[1][b] = (std::uint64_t{x.v[3]} << 32) | x.v[2];
      }
      const auto check = [&](auto fill) {
        std::uint64_t got[2][half] = {};
        fill(got);
        for (int b = 0; b < half; ++b) {
          CHECK(got[0][b] == expect[0][b]);
          CHECK(got[1][b] == expect[1][b]);
        }
        ++paths_checked;
      };
      check([&](std::uint64_t(*w)[half]) {
        cpu::draw_words_portable(key, c1, round, step, first, w);
      });
      check([&](std::uint64_t(*w)[half]) { cpu::draw_words(key, c1, round, step, first, w); });
#if SHUFFLE_R1_X86_SIMD
      if (cpu::has_avx2())
        check(
            [&](std::uint64_t(*w)[half]) { cpu::draw_words_avx2(key, c1, round, step, first, w); });
      if (cpu::has_avx512())
        check([&](std::uint64_t(*w)[half]) {
          cpu::draw_words_avx512(key, c1, round, step, first, w);
        });
#endif
    }
  CHECK(paths_checked >= 2 * 16);
}

TEST_CASE_TEMPLATE("shuffle: the masses of the default transform are mass_of's on every path", T,
                   float, double) {
  // masses_of takes a branch-free loop for power / kappa 1 (with AVX2, a vector loop whose
  // double -> integer truncation is done with exponent shifts; with AVX-512, the conversion
  // instruction); every mass must be the one the
  // general per-weight mass_of gives. K sets the unit 2^(62 - ceil(log2 K)), i.e. which shifts
  // the truncation needs; the weights include zero, the smallest positive values (mass 1) and
  // the maximum (mass = unit).
  std::mt19937_64 rng(77);
  INFO("AVX2 path: " << sr::detail::cpu::has_avx2()
                     << ", AVX-512: " << sr::detail::cpu::has_avx512());
  for (const std::int64_t K : {1, 2, 3, 4, 5, 7, 8, 9, 100, 1024, 1025, 65536, 1 << 20}) {
    for (int pattern = 0; pattern < 3; ++pattern) {
      std::vector<T> w(static_cast<std::size_t>(K));
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (auto& x : w) {
        const double r = u(rng);
        x = pattern == 0   ? T(r)
            : pattern == 1 ? T(r < 0.3 ? 0.0 : r * 1e-3)
                           : T(r < 0.2 ? std::numeric_limits<T>::denorm_min() : r * 1e30);
      }
      w[0] = T(0);
      if (K > 1) w[static_cast<std::size_t>(K - 1)] = T(pattern == 2 ? 1e30 : 1.0);
      CAPTURE(K);
      CAPTURE(pattern);
      const sr::shuffle_options o;  // power, kappa 1
      const auto plan = sr::detail::cpu::plan_masses("test", sr::host_span<const T>(w), o);
      std::vector<std::uint64_t> fast(static_cast<std::size_t>(K), 7);
      const std::int64_t nonzero = sr::detail::cpu::masses_of(plan, w.data(), K, fast.data());
      std::int64_t expected_nonzero = 0, mismatches = 0;
      for (std::int64_t j = 0; j < K; ++j) {
        const std::uint64_t slow = sr::detail::mass_of(plan, static_cast<double>(w[j]));
        expected_nonzero += slow != 0;
        mismatches += fast[static_cast<std::size_t>(j)] != slow;
        if (j == K - 1 && K > 1) CHECK(slow == static_cast<std::uint64_t>(plan.unit));
      }
      CHECK(mismatches == 0);
      CHECK(nonzero == expected_nonzero);
#if SHUFFLE_R1_X86_SIMD
      // Each vector path on its own (masses_of takes only the widest): the masses it writes
      // and its count of positive weights match the general loop's.
      const auto check_path = [&](auto path, std::int64_t width) {
        std::vector<std::uint64_t> got(static_cast<std::size_t>(K), 7);
        std::int64_t positives = 0;
        const std::int64_t done = path(w.data(), K, plan.w_ref, plan.unit, got.data(), positives);
        CHECK(done == K - K % width);
        std::int64_t want_positives = 0, wrong = 0;
        for (std::int64_t j = 0; j < done; ++j) {
          wrong += got[static_cast<std::size_t>(j)] != fast[static_cast<std::size_t>(j)];
          want_positives += w[static_cast<std::size_t>(j)] > T(0);
        }
        CHECK(wrong == 0);
        CHECK(positives == want_positives);
      };
      if (sr::detail::cpu::has_avx2())
        check_path([](auto&&... a) { return sr::detail::cpu::masses_power1_avx2<T>(a...); }, 4);
      if (sr::detail::cpu::has_avx512())
        check_path([](auto&&... a) { return sr::detail::cpu::masses_power1_avx512<T>(a...); }, 8);
#endif
    }
  }
}

TEST_CASE("shuffle: the guide tables are lower bounds and every search draws draw_pair's pair") {
  // The guide only gives a search its starting point; it must never start past the drawn pair.
  // Masses: random, with zeros (leading and inside), one pair holding nearly all the mass
  // (guide buckets without a pair of their own), and equal masses, where cum[j] * 2^gbits /
  // total lands exactly on bucket boundaries (build_table's rounding margin). Tables with a
  // `taken` bitmap are the later phases'. Each search path (portable; AVX2 and AVX-512 where
  // the CPU has them) must give the first j with cum[j] > r, found here by binary search.
  namespace cpu = sr::detail::cpu;
  std::mt19937_64 rng(2026);
  int tables = 0, avx2_batches = 0, avx512_batches = 0;
  for (const std::int64_t K : {1, 2, 3, 5, 8, 9, 63, 64, 65, 1000, 4096, 100000}) {
    for (int pattern = 0; pattern < 4; ++pattern) {
      for (const bool with_taken : {false, true}) {
        const std::uint64_t unit = std::uint64_t{1} << sr::detail::mass_bits(K);
        std::vector<std::uint64_t> mass(static_cast<std::size_t>(K));
        for (std::int64_t j = 0; j < K; ++j) {
          const std::uint64_t x = rng();
          mass[j] = pattern == 0   ? 1 + x % unit
                    : pattern == 1 ? (x % 3 == 0 || j < 5 ? 0 : 1 + x % unit)
                    : pattern == 2 ? 1 + x % 16
                                   : unit;
        }
        if (pattern == 2) mass[static_cast<std::size_t>(K / 2)] = unit;
        std::vector<std::uint64_t> taken(static_cast<std::size_t>((K + 63) / 64), 0);
        if (with_taken)
          for (auto& t : taken)
            t = rng() & rng();
        std::vector<std::uint64_t> cum;
        std::vector<std::uint32_t> guide;
        const sr::detail::mass_table t =
            cpu::build_table(mass.data(), K, with_taken ? taken.data() : nullptr, cum, guide);
        if (t.total == 0) continue;  // a table that is never drawn from
        ++tables;
        CAPTURE(K);
        CAPTURE(pattern);
        CAPTURE(with_taken);
        const auto exact = [&](std::uint64_t r) {
          return static_cast<std::int64_t>(std::upper_bound(cum.begin(), cum.begin() + K, r) -
                                           cum.begin());
        };
        // Prefix sums, and the padding every search may read.
        std::uint64_t total = 0;
        std::int64_t wrong_sums = 0;
        for (std::int64_t j = 0; j < K; ++j) {
          const bool skip = with_taken && ((taken[j >> 6] >> (j & 63)) & 1u);
          total += skip ? 0 : mass[j];
          wrong_sums += cum[j] != total;
        }
        REQUIRE(wrong_sums == 0);
        CHECK(t.total == total);
        for (std::int64_t j = K; j < K + cpu::cum_pad; ++j)
          CHECK(cum[j] > total);
        // Every guide entry is a lower bound of the pair of the smallest r of its bucket.
        const std::int64_t buckets = std::int64_t{1} << t.gbits;
        std::int64_t too_high = 0;
        for (std::int64_t b = 0; b < buckets; ++b) {
          const std::uint64_t r =
              sr::detail::mulhi64(static_cast<std::uint64_t>(b) << (64 - t.gbits), total);
          too_high += guide[b] > exact(r);
        }
        CHECK(too_high == 0);
        // The guide is the documented construction: a store for every guide_stride-th prefix
        // sum, then a running maximum.
        {
          std::vector<std::uint32_t> want(guide.size(), 0);
          const double scale = std::ldexp(1.0, t.gbits) / static_cast<double>(total);
          for (std::int64_t j = cpu::guide_stride - 1; j + 1 < K; j += cpu::guide_stride) {
            const double x =
                static_cast<double>(static_cast<std::int64_t>(cum[j])) * scale + 1.0 / 65536;
            want[std::min(static_cast<std::int64_t>(x) + 1, buckets)] =
                static_cast<std::uint32_t>(j + 1);
          }
          for (std::int64_t b = 1; b < buckets; ++b)
            want[b] = std::max(want[b], want[b - 1]);
          CHECK(std::equal(want.begin(), want.begin() + buckets, guide.begin()));
        }
        // Batches of words: random, and the edges of buckets (first and last word of each).
        std::vector<std::uint64_t> words;
        for (int i = 0; i < 4 * cpu::draw_batch; ++i)
          words.push_back(rng());
        for (std::int64_t b = 0; b < std::min<std::int64_t>(buckets, 64); ++b) {
          const std::uint64_t first = static_cast<std::uint64_t>(b) << (64 - t.gbits);
          words.push_back(first);
          words.push_back(first + ((std::uint64_t{1} << (64 - t.gbits)) - 1));
        }
        words.push_back(~std::uint64_t{0});
        while (words.size() % cpu::draw_batch != 0)
          words.push_back(0);
        std::int64_t wrong_portable = 0, wrong_avx2 = 0, wrong_avx512 = 0;
        for (std::size_t i0 = 0; i0 < words.size(); i0 += cpu::draw_batch) {
          std::uint64_t w[2][cpu::draw_batch / 2];
          for (int i = 0; i < cpu::draw_batch; ++i)
            w[i & 1][i >> 1] = words[i0 + static_cast<std::size_t>(i)];
          std::int64_t got[cpu::draw_batch];
          cpu::resolve_batch_portable(t, w, got);
          for (int i = 0; i < cpu::draw_batch; ++i)
            wrong_portable += got[i] != exact(sr::detail::mulhi64(w[i & 1][i >> 1], total));
#if SHUFFLE_R1_X86_SIMD
          if (cpu::has_avx2()) {
            std::fill(got, got + cpu::draw_batch, -1);
            cpu::resolve_batch_avx2(t, w, got);
            for (int i = 0; i < cpu::draw_batch; ++i)
              wrong_avx2 += got[i] != exact(sr::detail::mulhi64(w[i & 1][i >> 1], total));
            ++avx2_batches;
          }
          if (cpu::has_avx512()) {
            std::fill(got, got + cpu::draw_batch, -1);
            cpu::resolve_batch_avx512(t, w, got);
            for (int i = 0; i < cpu::draw_batch; ++i)
              wrong_avx512 += got[i] != exact(sr::detail::mulhi64(w[i & 1][i >> 1], total));
            ++avx512_batches;
          }
#endif
        }
        CHECK(wrong_portable == 0);
        CHECK(wrong_avx2 == 0);
        CHECK(wrong_avx512 == 0);
      }
    }
  }
  CHECK(tables > 80);
  INFO("AVX2 batches checked: " << avx2_batches << ", AVX-512: " << avx512_batches);
#if SHUFFLE_R1_X86_SIMD
  if (sr::detail::cpu::has_avx2()) CHECK(avx2_batches > 0);
  if (sr::detail::cpu::has_avx512()) CHECK(avx512_batches > 0);
#endif
}

TEST_CASE("shuffle: the batched sampler gives the orders of drawing one word at a time") {
  // A reference written from the definition (detail/sampler.hpp): draw d of phase p of a
  // round's stream is word d % 2 of Philox block d / 2, mapped to a pair by binary search in the
  // prefix sums of the masses of the pairs not yet taken when the phase began; repeats are
  // skipped; a phase ends after phase_draw_limit(still needed) draws. The library computes
  // words, searches and the filter in batches of 32, with a branch-free filter while a batch
  // cannot complete the stream and guide tables as starting points: the orders must be equal.
  // Cases: random weights at the paper's size (long streams), a pair holding nearly all the
  // mass (many phases), zero weights with the fill policy (two streams per round), and short
  // streams (fewer pairs per round than a batch).
  namespace d = sr::detail;
  const auto reference = [](const std::vector<double>& w, const sr::shuffle_options& o) {
    d::cpu::shuffle_scratch s;
    const auto sum = d::cpu::prepare_shuffle("test", sr::host_span<const double>(w), o, s);
    const auto K = static_cast<std::int64_t>(w.size());
    const std::int64_t weighted = std::min(sum.per_round, sum.nonzero_pairs);
    std::vector<std::uint64_t> fill(static_cast<std::size_t>(K));
    for (std::int64_t j = 0; j < K; ++j)
      fill[static_cast<std::size_t>(j)] = s.mass[static_cast<std::size_t>(j)] == 0 ? 1 : 0;
    std::vector<std::int64_t> order;
    std::int64_t phases = 0;
    for (std::int64_t r = 0; r < sum.rounds; ++r) {
      std::vector<bool> taken(static_cast<std::size_t>(K), false);
      const auto stream = [&](const std::vector<std::uint64_t>& mass, std::int64_t needed,
                              d::rng_stream id) {
        std::int64_t got = 0;
        for (std::uint32_t phase = 0; got < needed; ++phase) {
          if (phase > 0) ++phases;
          std::vector<std::uint64_t> cum(static_cast<std::size_t>(K));
          std::uint64_t total = 0;
          for (std::int64_t j = 0; j < K; ++j) {
            total += taken[static_cast<std::size_t>(j)] ? 0 : mass[static_cast<std::size_t>(j)];
            cum[static_cast<std::size_t>(j)] = total;
          }
          const std::int64_t limit = d::phase_draw_limit(needed - got);
          for (std::int64_t k = 0; k < limit && got < needed; ++k) {
            const auto b = d::draw_block(o.seed, static_cast<std::uint32_t>(o.step),
                                         static_cast<std::uint32_t>(r), id, phase,
                                         static_cast<std::uint32_t>(k / 2));
            const std::uint64_t x = d::block_word(b, static_cast<int>(k % 2));
            const auto j = static_cast<std::size_t>(
                std::upper_bound(cum.begin(), cum.end(), d::mulhi64(x, total)) - cum.begin());
            if (taken[j]) continue;
            taken[j] = true;
            order.push_back(static_cast<std::int64_t>(j));
            ++got;
          }
        }
      };
      if (weighted > 0) stream(s.mass, weighted, d::rng_stream::abs_weighted);
      if (sum.per_round > weighted) stream(fill, sum.per_round - weighted, d::rng_stream::abs_fill);
    }
    return std::make_pair(order, phases);
  };
  std::mt19937_64 rng(404);
  std::uniform_real_distribution<double> u(0.0, 2.0);
  int with_phases = 0;
  for (int c = 0; c < 12; ++c) {
    const int kind = c % 4;
    const std::int64_t K = kind == 3 ? 40 : 2048 + 37 * c;
    std::vector<double> w(static_cast<std::size_t>(K));
    for (auto& x : w)
      x = u(rng);
    if (kind == 1) {
      for (auto& x : w)
        x *= 1e-9;
      w[static_cast<std::size_t>(K / 3)] = 1e9;
    }
    if (kind == 2)
      for (std::int64_t j = 0; j < K; j += 3)
        w[static_cast<std::size_t>(j)] = 0.0;
    sr::shuffle_options o;
    o.seed = 1000 + static_cast<std::uint64_t>(c);
    o.step = c;
    o.rounds = kind == 3 ? 5 : 4;
    o.per_round = kind == 1 ? K / 2 : kind == 2 ? K / 2 + K / 4 : kind == 3 ? 7 : -1;
    o.on_short = sr::short_policy::fill;
    CAPTURE(c);
    sr::shuffle_summary got_sum;
    const auto got = shuffle(w, o, &got_sum);
    const auto [want, phases] = reference(w, o);
    CHECK(got == want);
    CHECK(got_sum.extra_phases == phases);
    with_phases += phases > 0;
  }
  CHECK(with_phases >= 3);  // the dominant-pair cases rebuild tables
}

TEST_CASE("shuffle: a workspace gives the same orders and allocates nothing once sized") {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  sr::shuffle_workspace ws;
  CHECK(ws.bytes() == 0);
  sr::shuffle_options o;
  o.on_short = sr::short_policy::fill;  // the fill stream's tables are part of the workspace
  for (const std::int64_t K : {4096, 1000, 4096}) {
    std::vector<double> w(static_cast<std::size_t>(K));
    for (auto& x : w)
      x = u(rng) < 1.5 ? 0.0 : u(rng);
    o.per_round = 3 * K / 4;  // more than the non-zero pairs (about K / 2): fill
    o.rounds = 2;
    for (int step = 0; step < 3; ++step) {
      o.step = step;
      std::vector<std::int64_t> with_ws(static_cast<std::size_t>(sr::shuffle_size(K, o)), -1);
      const long long before = allocation_count();
      const sr::shuffle_summary s = sr::shuffle_pairs(sr::cpu, w, with_ws, o, ws);
      CHECK(s.nonzero_pairs < s.per_round);
      const long long allocated = allocation_count() - before;
      if (step > 0) CHECK(allocated == 0);  // sized by the first call with this many pairs
      const std::vector<std::int64_t> plain = shuffle(w, o);
      CHECK(s.size == static_cast<std::int64_t>(plain.size()));
      CHECK(with_ws == plain);
    }
  }
  CHECK(ws.bytes() >= 4096 * 3 * sizeof(std::uint64_t));  // masses, prefix sums, fill masses
  ws.release();
  CHECK(ws.bytes() == 0);
}
