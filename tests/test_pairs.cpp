// select_pairs (PTS): worked examples, ties, invariants, layouts, policies, errors.
#include "support.hpp"

#include <cfenv>

namespace sr = shuffle_r1;

namespace {
template <class T>
struct pts_result {
  std::vector<std::int64_t> pairs;
  std::vector<T> weights;
};

template <class T, class Layout>
pts_result<T> pts(const std::vector<T>& adv, const Layout& layout, const sr::pair_options& o = {}) {
  const std::int64_t K = sr::count_pairs(layout, static_cast<std::int64_t>(adv.size()), o);
  pts_result<T> r{std::vector<std::int64_t>(2 * K), std::vector<T>(K)};
  CHECK(sr::select_pairs(sr::cpu, adv, layout, r.pairs, r.weights, o) == K);
  return r;
}

template <class T>
std::vector<T> grpo(const std::vector<T>& r, std::int64_t G, std::int64_t n) {
  std::vector<T> a(r.size());
  sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{G, n}, a);
  return a;
}
}  // namespace

TEST_CASE_TEMPLATE("pairs: worked examples of SPEC.md section 3", T, float, double) {
  SUBCASE("binary rewards: (0,7), (1,6) kept, weight 1.9322 each") {
    const auto a = grpo(std::vector<T>{1, 1, 0, 0, 0, 1, 0, 0}, 1, 8);
    const auto r = pts(a, sr::uniform_groups{1, 8});
    CHECK(r.pairs == std::vector<std::int64_t>{0, 7, 1, 6});
    CHECK(static_cast<double>(r.weights[0]) == doctest::Approx(1.9322).epsilon(1e-4));
    CHECK(static_cast<double>(r.weights[1]) == doctest::Approx(1.9322).epsilon(1e-4));
    // the dropped pairs are (5,4), (2,3)
    sr::pair_options all;
    all.keep_ratio = 1.0;
    CHECK(pts(a, sr::uniform_groups{1, 8}, all).pairs ==
          std::vector<std::int64_t>{0, 7, 1, 6, 5, 4, 2, 3});
  }
  SUBCASE("graded rewards: (0,4), (7,1) with weights 2.7792 and 2.0844") {
    const auto a =
        grpo(std::vector<T>{T(0.9), T(0.2), T(0.5), T(0.5), T(0.1), T(0.7), T(0.3), T(0.8)}, 1, 8);
    const auto r = pts(a, sr::uniform_groups{1, 8});
    CHECK(r.pairs == std::vector<std::int64_t>{0, 4, 7, 1});
    CHECK(static_cast<double>(r.weights[0]) == doctest::Approx(2.7792).epsilon(1e-4));
    CHECK(static_cast<double>(r.weights[1]) == doctest::Approx(2.0844).epsilon(1e-4));
  }
  SUBCASE("one success: a pair of two equal rewards still weighs 0.7071") {
    const auto a = grpo(std::vector<T>{1, 0, 0, 0, 0, 0, 0, 0}, 1, 8);
    const auto r = pts(a, sr::uniform_groups{1, 8});
    CHECK(r.pairs == std::vector<std::int64_t>{0, 7, 1, 6});
    CHECK(static_cast<double>(r.weights[1]) == doctest::Approx(0.7071).epsilon(1e-4));
  }
}

TEST_CASE("pairs: ties keep batch order - the tied minimum of rank 1 is the last tied row") {
  const std::vector<float> a = {0.f, 1.f, 0.f, 1.f, -1.f, -1.f, -1.f, 0.f};
  sr::pair_options all;
  all.keep_ratio = 1.0;
  // descending stable: 1(1) 3(1) 0(0) 2(0) 7(0) 4(-1) 5(-1) 6(-1)
  CHECK(pts(a, sr::uniform_groups{1, 8}, all).pairs ==
        std::vector<std::int64_t>{1, 6, 3, 5, 0, 4, 2, 7});
  // -0 and +0 are equal: batch order decides
  const std::vector<double> z = {-0.0, 0.0, -0.0, 0.0};
  CHECK(pts(z, sr::uniform_groups{1, 4}, all).pairs == std::vector<std::int64_t>{0, 3, 1, 2});
}

TEST_CASE("pairs: the four pair weights") {
  const std::vector<double> a = {2.0, -0.5, 1.0, -3.0};  // pairs (0,3) then (2,1)
  sr::pair_options o;
  o.keep_ratio = 1.0;
  const auto w = [&](sr::pair_weight kind) {
    o.weight = kind;
    return pts(a, sr::uniform_groups{1, 4}, o).weights;
  };
  CHECK(w(sr::pair_weight::sum) == std::vector<double>{5.0, 1.5});
  CHECK(w(sr::pair_weight::max) == std::vector<double>{3.0, 1.0});
  CHECK(w(sr::pair_weight::mean) == std::vector<double>{2.5, 0.75});
  CHECK(w(sr::pair_weight::pos) == std::vector<double>{2.0, 1.0});
  // pos is |max(A_hi, A_lo)|: both negative
  const std::vector<double> neg = {-1.0, -4.0};
  o.weight = sr::pair_weight::pos;
  CHECK(pts(neg, sr::uniform_groups{1, 2}, o).weights == std::vector<double>{1.0});
}

TEST_CASE("pairs: M = floor(alpha * P) computed as the release does") {
  std::vector<double> a(20);
  std::iota(a.begin(), a.end(), 0.0);
  const auto kept = [&](double alpha) {
    sr::pair_options o;
    o.keep_ratio = alpha;
    return sr::count_pairs(sr::uniform_groups{1, 20}, 20, o);
  };
  CHECK(kept(0.5) == 5);
  CHECK(kept(1.0) == 10);
  CHECK(kept(0.05) == 0);
  CHECK(kept(1.0 - 0.9) == 0);  // 10 * 0.09999999999999998 = 0.9999999999999998 -> 0, like int()
  CHECK(kept(0.1) == 1);
  CHECK(kept(1.0 - 0.7) == 3);
  CHECK(kept(0.35) == 3);
  sr::pair_options o;
  o.keep_pairs = 7;
  CHECK(sr::count_pairs(sr::uniform_groups{1, 20}, 20, o) == 7);
  o.keep_pairs = 0;
  CHECK(sr::count_pairs(sr::uniform_groups{1, 20}, 20, o) == 0);
}

TEST_CASE_TEMPLATE("pairs: invariants and agreement with a stable-sort reference", T, float,
                   double) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 80; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 11, 2, trial % 4 == 3 ? 150 : 40, true);
    const auto off = test::offsets_of(sizes);
    const auto kind = static_cast<test::reward_kind>(trial % 4);
    const std::vector<T> r =
        test::random_rewards<T>(rng, static_cast<std::size_t>(off.back()), kind);
    std::vector<T> a(r.size());
    sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a);
    for (const double alpha : {0.5, 1.0, 0.25, 1.0 / 3}) {
      sr::pair_options o;
      o.keep_ratio = alpha;
      o.weight = static_cast<sr::pair_weight>(trial % 4);
      const auto got = pts(a, sr::ragged_groups{off}, o);
      CHECK(got.pairs == test::reference_pairs(a, off, alpha));
      // invariants: disjoint, inside their group, hi >= lo, M per group, weights consistent
      std::vector<int> used(r.size(), 0);
      std::size_t k = 0;
      for (std::size_t g = 0; g < sizes.size(); ++g) {
        const auto M = static_cast<std::size_t>(std::floor((sizes[g] / 2) * alpha));
        for (std::size_t m = 0; m < M; ++m, ++k) {
          const std::int64_t hi = got.pairs[2 * k], lo = got.pairs[2 * k + 1];
          CHECK(hi >= off[g]);
          CHECK(hi < off[g + 1]);
          CHECK(lo >= off[g]);
          CHECK(lo < off[g + 1]);
          CHECK(a[hi] >= a[lo]);
          CHECK(++used[hi] == 1);
          CHECK(++used[lo] == 1);
          const double ah = std::fabs(static_cast<double>(a[hi])),
                       al = std::fabs(static_cast<double>(a[lo]));
          double want = ah + al;
          if (o.weight == sr::pair_weight::max) want = std::max(ah, al);
          if (o.weight == sr::pair_weight::mean) want = (ah + al) / 2;
          if (o.weight == sr::pair_weight::pos) want = ah;
          CHECK(got.weights[k] == static_cast<T>(want));
        }
      }
      CHECK(2 * k == got.pairs.size());
    }
  }
}

TEST_CASE_TEMPLATE("pairs: ragged, id and uniform layouts agree", T, float, double) {
  std::mt19937_64 rng(8);
  const std::int64_t G = 31, n = 16;
  const std::vector<T> r = test::random_rewards<T>(rng, G * n, test::reward_kind::binary);
  const auto a = grpo(r, G, n);
  const auto uniform = pts(a, sr::uniform_groups{G, n});
  std::vector<std::int64_t> off(G + 1);
  for (std::int64_t g = 0; g <= G; ++g)
    off[g] = g * n;
  CHECK(pts(a, sr::ragged_groups{off}).pairs == uniform.pairs);
  // interleave the groups: row i of the new batch is row perm[i] of the old one
  std::vector<std::int64_t> perm(a.size()), ids(a.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  // keep each group's rows in their old relative order so ties break the same way
  for (std::int64_t g = 0; g < G; ++g) {
    std::vector<std::size_t> slots;
    for (std::size_t i = 0; i < perm.size(); ++i)
      if (perm[i] / n == g) slots.push_back(i);
    for (std::int64_t k = 0; k < n; ++k)
      perm[slots[k]] = g * n + k;
  }
  std::vector<T> a2(a.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    a2[i] = a[perm[i]];
    ids[i] = perm[i] / n;
  }
  // groups are numbered by first appearance: map back to the old group order for comparison
  const auto got = pts(a2, sr::id_groups<std::int64_t>{ids});
  std::map<std::int64_t, std::vector<std::int64_t>> by_group;  // old group -> old-row pairs
  for (std::size_t k = 0; k < got.pairs.size(); k += 2)
    for (int s = 0; s < 2; ++s)
      by_group[perm[got.pairs[k + s]] / n].push_back(perm[got.pairs[k + s]]);
  std::vector<std::int64_t> flat;
  for (const auto& kv : by_group)
    flat.insert(flat.end(), kv.second.begin(), kv.second.end());
  CHECK(flat == uniform.pairs);
}

TEST_CASE("pairs: odd groups follow the odd policy") {
  const std::vector<double> a = {3, 1, 2, 5, 4};  // sorted: 3(5) 4(4) 0(3) 2(2) 1(1)
  std::vector<std::int64_t> p(4, -1);
  std::vector<double> w(2, -1);
  try {
    (void)sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 5}, p, w);
    FAIL("no exception");
  } catch (const sr::error& e) {
    CHECK(e.code() == sr::errc::odd_group);
    CHECK(std::string(e.what()).find("group 0 (first row 0) has 5 rows, an odd number") !=
          std::string::npos);
  }
  for (auto x : p)
    CHECK(x == -1);
  sr::pair_options o;
  o.odd = sr::odd_policy::drop_median;
  o.keep_ratio = 1.0;
  CHECK(sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 5}, p, w, o) == 2);
  CHECK(p == std::vector<std::int64_t>{3, 1, 4, 2});  // the median row 0 is left out
  CHECK(test::reference_pairs(a, {0, 5}, 1.0, true) == p);
  // a single row under drop_median: no pair
  const std::vector<double> one = {1.0};
  CHECK(sr::count_pairs(sr::uniform_groups{1, 1}, 1, o) == 0);
  CHECK(sr::select_pairs(sr::cpu, one, sr::uniform_groups{1, 1}, p, w, o) == 0);
}

TEST_CASE("pairs: large groups use the comparison sort with the same semantics") {
  std::mt19937_64 rng(21);
  for (const std::int64_t n : {64, 66, 200, 1000}) {
    std::vector<double> r =
        test::random_rewards<double>(rng, static_cast<std::size_t>(n), test::reward_kind::decimals);
    std::vector<double> a(r.size());
    sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, n}, a);
    sr::pair_options o;
    o.keep_ratio = 1.0;
    CHECK(pts(a, sr::uniform_groups{1, n}, o).pairs == test::reference_pairs(a, {0, n}, 1.0));
  }
}

TEST_CASE("pairs: bad inputs are refused and nothing is written") {
  std::vector<float> a = {1, 0, 1, 0};
  std::vector<std::int64_t> p(4, -1);
  std::vector<float> w(2, -1);
  const auto untouched = [&] {
    for (auto x : p)
      CHECK(x == -1);
    for (auto x : w)
      CHECK(x == -1);
  };
  const auto expect = [&](const sr::pair_options& o, sr::errc code, const char* text) {
    try {
      (void)sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 4}, p, w, o);
      FAIL("no exception");
    } catch (const sr::error& e) {
      CHECK(e.code() == code);
      CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
    untouched();
  };
  sr::pair_options o;
  o.keep_ratio = 0.0;
  expect(o, sr::errc::invalid_argument, "options.keep_ratio is 0, expected a value in (0, 1]");
  o.keep_ratio = 1.5;
  expect(o, sr::errc::invalid_argument, "options.keep_ratio is 1.5");
  o.keep_ratio = std::numeric_limits<double>::quiet_NaN();
  expect(o, sr::errc::invalid_argument, "options.keep_ratio is nan");
  o = {};
  o.keep_pairs = 3;
  expect(o, sr::errc::too_few_pairs,
         "options.keep_pairs is 3 but group 0 has 4 rows, i.e. only 2 pairs");
  o = {};
  o.weight = static_cast<sr::pair_weight>(17);
  expect(o, sr::errc::invalid_argument, "options.weight");
  o = {};
  o.odd = static_cast<sr::odd_policy>(17);
  expect(o, sr::errc::invalid_argument, "options.odd");
  o = {};
  a[3] = std::numeric_limits<float>::quiet_NaN();
  expect(o, sr::errc::non_finite, "advantages[3] is NaN");
  a[3] = 0;
  std::vector<std::int64_t> small(1);
  CHECK_THROWS_WITH_AS((void)sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 4}, small, w),
                       doctest::Contains("pairs has 1 entries, needs 2 * 1 = 2"), sr::error);
  std::vector<float> no_weights;
  CHECK(sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 4}, p, no_weights) == 1);
}

TEST_CASE("pairs: empty batch") {
  const std::vector<float> a;
  std::vector<std::int64_t> p;
  std::vector<float> w;
  CHECK(sr::select_pairs(sr::cpu, a, sr::uniform_groups{0, 16}, p, w) == 0);
}

TEST_CASE_TEMPLATE("pairs: the SIMD rankers are bit-identical to the portable one", T, float,
                   double) {
  // Every small size (1..64 rows, all register counts), ties, ragged and indexed layouts: the
  // dispatching kernel and the forced-portable kernel must write the same pairs and weights.
  // With AVX2 (AVX-512 CPUs included) the dispatching kernel runs the one-pass kernel when no
  // group exceeds its register limit (32 float / 16 double rows: the first 30 trials mostly),
  // and otherwise the two passes with the widest ranker the CPU has (AVX-512 with or without
  // conflict detection, else AVX2): the last 30 trials, groups of up to 70 rows.
  INFO("AVX-512 kernel in use: " << sr::detail::cpu::has_avx512()
                                 << ", AVX2 clone: " << sr::detail::cpu::has_avx2());
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 60; ++trial) {
    const auto sizes = test::random_sizes(rng, 1 + trial % 9, 1, trial < 30 ? 20 : 70, false);
    const auto off = test::offsets_of(sizes);
    const auto B = off.back();
    const auto kind = static_cast<test::reward_kind>(trial % 4);
    const std::vector<T> a = test::random_rewards<T>(rng, static_cast<std::size_t>(B), kind);
    std::vector<std::int64_t> perm(static_cast<std::size_t>(B));
    std::iota(perm.begin(), perm.end(), 0);
    if (trial % 2) std::shuffle(perm.begin(), perm.end(), rng);
    const sr::detail::host_layout L = [&] {
      sr::detail::host_layout l;
      l.groups = static_cast<std::int64_t>(sizes.size());
      l.offsets = off.data();
      l.rows = trial % 2 ? perm.data() : nullptr;
      return l;
    }();
    sr::pair_options o;
    o.odd = sr::odd_policy::drop_median;
    o.keep_ratio = trial % 3 == 0 ? 1.0 : 0.5;
    o.weight = static_cast<sr::pair_weight>(trial % 4);
    std::vector<std::int64_t> p1(static_cast<std::size_t>(B) + 2, -1), p2 = p1;
    std::vector<T> w1(static_cast<std::size_t>(B) + 1, T(-1)), w2 = w1;
    sr::detail::cpu::pairs_scratch s1, s2;
    const auto k1 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p1.data(), w1.data(), s1, true);
    const auto k2 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p2.data(), w2.data(), s2, false);
    CHECK(k1 == k2);
    CHECK(p1 == p2);
    CHECK(std::memcmp(w1.data(), w2.data(), w1.size() * sizeof(T)) == 0);
  }
  // Uniform layouts over several rank blocks of the two-pass kernel (4096 rows each: the last
  // group of a block has its ranks at the end of the buffer), with and without weights; with
  // AVX2 the sizes up to 32 (float) or 16 (double) run the one-pass kernel, the others (33 and
  // 64 float, 17 to 64 double) the two passes with the widest ranker.
  for (const std::int64_t n : {2, 3, 7, 8, 9, 15, 16, 17, 32, 33, 64}) {
    const std::int64_t G = 9000 / n, B = G * n;
    const std::vector<T> a = test::random_rewards<T>(rng, static_cast<std::size_t>(B),
                                                     static_cast<test::reward_kind>(n % 4));
    sr::detail::host_layout L;
    L.groups = G;
    L.uniform = n;
    sr::pair_options o;
    o.odd = sr::odd_policy::drop_median;
    o.keep_ratio = n % 2 ? 1.0 : 0.5;
    o.weight = static_cast<sr::pair_weight>(n % 4);  // all four weights over the sizes
    std::vector<std::int64_t> p1(static_cast<std::size_t>(B) + 2, -1), p2 = p1;
    std::vector<T> w1(static_cast<std::size_t>(B) + 1, T(-1)), w2 = w1;
    sr::detail::cpu::pairs_scratch s1, s2;
    CAPTURE(n);
    const auto k1 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p1.data(), w1.data(), s1, true);
    const auto k2 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p2.data(), w2.data(), s2, false);
    CHECK(k1 == k2);
    CHECK(k1 ==
          G * static_cast<std::int64_t>(std::floor(o.keep_ratio * static_cast<double>(n / 2))));
    CHECK(p1 == p2);
    CHECK(std::memcmp(w1.data(), w2.data(), w1.size() * sizeof(T)) == 0);
    std::vector<std::int64_t> p3(p1.size(), -1);
    const auto k3 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p3.data(),
                                                  static_cast<T*>(nullptr), s1, true);
    CHECK(k3 == k1);
    CHECK(p3 == p1);
  }
}

#if SHUFFLE_R1_X86_SIMD
TEST_CASE("pairs: the merge networks sort every input of zeros and ones") {
  // By the 0-1 principle a comparator network that sorts all 2^N inputs of zeros and ones sorts
  // every input: checked for both networks of the float kernel, applied in scalar code.
  const auto sorts_all = [](auto network, int N) {
    const auto& e = decltype(network)::exchanges.e;
    std::int64_t unsorted = 0;
    for (std::uint32_t bits = 0; bits < (1u << N); ++bits) {
      int v[16];
      for (int i = 0; i < N; ++i)
        v[i] = (bits >> i) & 1;
      for (int x = 0; x < decltype(network)::size; ++x)
        if (v[e[x].a] < v[e[x].b]) std::swap(v[e[x].a], v[e[x].b]);
      for (int i = 0; i + 1 < N; ++i)
        unsorted += v[i] < v[i + 1];
    }
    return unsorted;
  };
  using sr::detail::cpu::avx2::merge_network;
  CHECK(merge_network<8>::size == 19);
  CHECK(merge_network<16>::size == 63);
  CHECK(sorts_all(merge_network<8>{}, 8) == 0);
  CHECK(sorts_all(merge_network<16>{}, 16) == 0);
}
#endif

#if SHUFFLE_R1_X86_SIMD
TEST_CASE("pairs: each float network kernel on its own gives the portable pairs and weights") {
  // pairs_kernel runs only the widest network the CPU has, so on AVX-512 hosts the AVX2 one
  // would go untested: both are called directly here. Every group size 1..16 in uniform layouts
  // whose group count is not a multiple of 8 (full blocks of the vector emission, then a
  // tail), ragged and indexed layouts; every weight, with and without weights; keep ratios
  // from 1/8 to 1, so that groups of 16 keep every M from 1 to 8 (the vector emission stores
  // whole registers for M <= 4 and pairs one by one above).
  namespace cpu = sr::detail::cpu;
  INFO("AVX2: " << cpu::has_avx2() << ", AVX-512: " << cpu::has_avx512());
  std::mt19937_64 rng(33);
  int runs = 0;
  for (int trial = 0; trial < 64; ++trial) {
    const std::int64_t n = 1 + trial % 16, G = 17 + trial % 7 * 3;
    const int layout = trial / 16 % 3;  // uniform, ragged, indexed
    std::vector<std::int64_t> off{0};
    for (std::int64_t g = 0; g < G; ++g)
      off.push_back(off.back() + (layout == 0 ? n : 1 + static_cast<std::int64_t>(rng() % 16)));
    const auto B = off.back();
    const std::vector<float> a = test::random_rewards<float>(
        rng, static_cast<std::size_t>(B), static_cast<test::reward_kind>(trial % 4));
    std::vector<std::int64_t> perm(static_cast<std::size_t>(B));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    sr::detail::host_layout L;
    L.groups = G;
    if (layout == 0)
      L.uniform = n;
    else
      L.offsets = off.data();
    if (layout == 2) L.rows = perm.data();
    for (const double keep : {1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125}) {
      sr::pair_options o;
      o.odd = sr::odd_policy::drop_median;
      o.keep_ratio = keep;
      o.weight = static_cast<sr::pair_weight>(trial % 4);
      const bool weighted = trial % 5 != 4;
      std::vector<std::int64_t> want(static_cast<std::size_t>(B) + 2, -1);
      std::vector<float> want_w(static_cast<std::size_t>(B) + 1, -1.0f);
      cpu::pairs_scratch scratch;
      const auto k_want = cpu::pairs_kernel(a.data(), L, o, want.data(),
                                            weighted ? want_w.data() : nullptr, scratch, false);
      const auto check = [&](auto kernel) {
        std::vector<std::int64_t> got(want.size(), -1);
        std::vector<float> got_w(want_w.size(), -1.0f);
        const auto k = cpu::with_weight(o.weight, [&](auto w) {
          return kernel(w, got.data(), weighted ? got_w.data() : nullptr);
        });
        CHECK(k == k_want);
        CHECK(got == want);
        CHECK(std::memcmp(got_w.data(), want_w.data(), got_w.size() * sizeof(float)) == 0);
        ++runs;
      };
      CAPTURE(trial);
      CAPTURE(keep);
      const int largest = static_cast<int>(L.largest());
      if (cpu::has_avx2())
        check([&](auto w, std::int64_t* p, float* wt) {
          constexpr sr::pair_weight W = decltype(w)::value;
          return largest <= 8 ? cpu::pairs_network_avx2<1, W>(a.data(), L, o, p, wt)
                              : cpu::pairs_network_avx2<2, W>(a.data(), L, o, p, wt);
        });
      if (cpu::has_avx512())
        check([&](auto w, std::int64_t* p, float* wt) {
          constexpr sr::pair_weight W = decltype(w)::value;
          return largest <= 8 ? cpu::pairs_network_avx512<1, W>(a.data(), L, o, p, wt)
                              : cpu::pairs_network_avx512<2, W>(a.data(), L, o, p, wt);
        });
    }
  }
  if (sr::detail::cpu::has_avx2()) CHECK(runs >= 8 * 64);
}
#endif

TEST_CASE("pairs: signed zeros, subnormals and extreme values order as in the portable kernel") {
  // The float network kernels for groups of up to 16 rows order rows by integer keys made from
  // the float bits: -0 and +0 must stay ties (batch order), and the order must hold across
  // subnormals and the largest magnitudes. Uniform (vector emission) and ragged layouts.
  const float pool[] = {0.0f,
                        -0.0f,
                        1.0f,
                        -1.0f,
                        std::numeric_limits<float>::denorm_min(),
                        -std::numeric_limits<float>::denorm_min(),
                        std::numeric_limits<float>::min(),
                        -std::numeric_limits<float>::min(),
                        std::numeric_limits<float>::max(),
                        -std::numeric_limits<float>::max(),
                        0.5f,
                        -0.5f};
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 64; ++trial) {
    // every size 1..16 in both layouts; 4 to 27 groups (up to three blocks of eight and a tail)
    const std::int64_t n = 1 + trial / 2 % 16, G = 4 * (1 + trial % 3) + trial % 4 + trial % 5 * 3;
    const bool ragged = trial % 2 == 1;
    std::vector<std::int64_t> off{0};
    for (std::int64_t g = 0; g < G; ++g)
      off.push_back(off.back() + (ragged ? 2 + static_cast<std::int64_t>(rng() % 15) : n));
    std::vector<float> a(static_cast<std::size_t>(off.back()));
    for (auto& x : a)
      x = pool[rng() % std::size(pool)];
    sr::detail::host_layout L;
    L.groups = G;
    if (ragged)
      L.offsets = off.data();
    else
      L.uniform = n;
    sr::pair_options o;
    o.odd = sr::odd_policy::drop_median;
    o.keep_ratio = trial % 3 == 0 ? 1.0 : 0.5;
    o.weight = static_cast<sr::pair_weight>((trial / 2) % 4);  // every weight in both layouts
    std::vector<std::int64_t> p1(a.size() + 2, -1), p2 = p1;
    std::vector<float> w1(a.size() + 1, -1.0f), w2 = w1;
    sr::detail::cpu::pairs_scratch s1, s2;
    CAPTURE(trial);
    const auto k1 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p1.data(), w1.data(), s1, true);
    const auto k2 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p2.data(), w2.data(), s2, false);
    CHECK(k1 == k2);
    CHECK(p1 == p2);
    CHECK(std::memcmp(w1.data(), w2.data(), w1.size() * sizeof(float)) == 0);
    CHECK(std::vector<std::int64_t>(p1.begin(), p1.begin() + 2 * k1) ==
          test::reference_pairs(a, off, o.keep_ratio, true));
    // Rounding toward -infinity (where -0 + 0 is -0) changes no pair: the kernels compare.
    std::vector<std::int64_t> p3(p1.size(), -1);
    std::vector<float> w3(w1.size(), -1.0f), w4 = w3;
    std::int64_t k3 = 0;
    {
      const test::rounding_mode downward(FE_DOWNWARD);
      k3 = sr::detail::cpu::pairs_kernel(a.data(), L, o, p3.data(), w3.data(), s1, true);
      (void)sr::detail::cpu::pairs_kernel(a.data(), L, o, p2.data(), w4.data(), s2, false);
    }
    CHECK(k3 == k1);
    CHECK(p3 == p1);
    CHECK(p2 == p1);
    CHECK(std::memcmp(w3.data(), w4.data(), w3.size() * sizeof(float)) == 0);
  }
}
