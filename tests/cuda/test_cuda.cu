// The CUDA backend against the CPU backend, the oracle: every output bit-identical (advantages
// also checked within the issue's 2 ulp), every error with the same code and message, the
// pipeline captured in a CUDA graph with a workspace and no allocation.
//
//   shuffle_r1_cuda_tests               device tests; exits 77 (ctest: skipped) without a GPU
//   shuffle_r1_cuda_tests --host-only   the "host:" cases only: the device code's per-group
//                                       functions run on the host against the CPU backend
#define DOCTEST_CONFIG_IMPLEMENT
#include <shuffle_r1/cuda.cuh>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sr = shuffle_r1;
namespace g = shuffle_r1::detail::gpu;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

namespace test {

enum class reward_kind { binary, graded, decimals, normal };

/// Random rewards of a few kinds (ties, zero-variance groups, continuous values).
template <class T>
std::vector<T> random_rewards(std::mt19937_64& rng, std::size_t n, reward_kind kind) {
  std::vector<T> r(n);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  const double p = u(rng);
  for (auto& x : r) {
    switch (kind) {
      case reward_kind::binary:
        x = static_cast<T>(u(rng) < p ? 1.0 : 0.0);
        break;
      case reward_kind::graded:
        x = static_cast<T>(0.9 * (u(rng) < p) + 0.1 * (u(rng) < 0.9));
        break;
      case reward_kind::decimals:
        x = static_cast<T>(std::round(u(rng) * 100.0) / 100.0);
        break;
      case reward_kind::normal:
        x = static_cast<T>(gauss(rng));
        break;
    }
  }
  return r;
}

/// Group sizes in [lo, hi] (even ones when asked).
std::vector<std::int64_t> random_sizes(std::mt19937_64& rng, std::size_t groups, std::int64_t lo,
                                       std::int64_t hi, bool even) {
  std::uniform_int_distribution<std::int64_t> d(lo, hi);
  std::vector<std::int64_t> s(groups);
  for (auto& x : s) {
    x = d(rng);
    if (even && x % 2) x = x + 1 <= hi ? x + 1 : x - 1;
  }
  return s;
}

std::vector<std::int64_t> offsets_of(const std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> o(sizes.size() + 1, 0);
  for (std::size_t g = 0; g < sizes.size(); ++g)
    o[g + 1] = o[g] + sizes[g];
  return o;
}

/// Distance in units in the last place between two finite values of the same sign region.
template <class T>
long long ulp_distance(T a, T b) {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  I ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  if (ia < 0) ia = std::numeric_limits<I>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<I>::min() - ib;
  return ia > ib ? static_cast<long long>(ia) - ib : static_cast<long long>(ib) - ia;
}

}  // namespace test

template <class T>
sr::device_buffer<T> upload(const std::vector<T>& v) {
  sr::device_buffer<T> b(v.size());
  sr::copy_to_device<T>(sr::cuda_policy{}, sr::host_span<const T>(v.data(), v.size()), b.span());
  return b;
}

template <class T>
std::vector<T> download(const sr::device_buffer<T>& b) {
  return sr::copy_to_host(sr::cuda_policy{}, b.cspan());
}

/// A device buffer of n entries filled with a sentinel pattern (to see what was written).
template <class T>
sr::device_buffer<T> sentinel(std::size_t n) {
  sr::device_buffer<T> b(n);
  if (n) REQUIRE(cudaMemset(b.data(), 0x5A, n * sizeof(T)) == cudaSuccess);
  return b;
}

template <class T>
bool all_sentinel(const sr::device_buffer<T>& b) {
  std::vector<unsigned char> bytes(b.size() * sizeof(T));
  if (!bytes.empty())
    REQUIRE(cudaMemcpy(bytes.data(), b.data(), bytes.size(), cudaMemcpyDeviceToHost) ==
            cudaSuccess);
  for (const unsigned char c : bytes)
    if (c != 0x5A) return false;
  return true;
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
long long max_ulp(const std::vector<T>& a, const std::vector<T>& b) {
  long long worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, test::ulp_distance(a[i], b[i]));
  return worst;
}

/// The exception of a call: code and message (or none).
struct outcome {
  bool threw = false;
  sr::errc code{};
  std::string message;
};

template <class F>
outcome capture(F&& f) {
  outcome o;
  try {
    f();
  } catch (const sr::error& e) {
    o.threw = true;
    o.code = e.code();
    o.message = e.what();
  }
  return o;
}

/// One layout of a random batch, on the host and on the device.
enum class layout_kind { uniform, ragged, indexed, ids };

const char* name_of(layout_kind k) {
  switch (k) {
    case layout_kind::uniform:
      return "uniform";
    case layout_kind::ragged:
      return "ragged";
    case layout_kind::indexed:
      return "indexed";
    default:
      return "ids";
  }
}

struct batch_layout {
  layout_kind kind = layout_kind::uniform;
  std::int64_t rows = 0;
  sr::uniform_groups uniform;
  std::vector<std::int64_t> offsets, members, ids;
  sr::device_buffer<std::int64_t> d_offsets, d_members, d_ids;

  /// Number of groups (ids: distinct ids).
  std::int64_t groups() const {
    if (kind == layout_kind::uniform) return uniform.num_groups;
    if (kind == layout_kind::ids)
      return static_cast<std::int64_t>(std::set<std::int64_t>(ids.begin(), ids.end()).size());
    return static_cast<std::int64_t>(offsets.size()) - 1;
  }

  /// Calls f(cpu layout, device layout).
  template <class F>
  void visit(F&& f) const {
    switch (kind) {
      case layout_kind::uniform:
        f(uniform, uniform);
        break;
      case layout_kind::ragged:
        f(sr::ragged_groups{offsets}, sr::device_ragged_groups{d_offsets.cspan()});
        break;
      case layout_kind::indexed:
        f(sr::indexed_groups{offsets, members},
          sr::device_indexed_groups{d_offsets.cspan(), d_members.cspan()});
        break;
      case layout_kind::ids:
        f(sr::id_groups<std::int64_t>{sr::host_span<const std::int64_t>(ids)},
          sr::device_id_groups<std::int64_t>{d_ids.cspan()});
        break;
    }
  }
};

/// Groups of the given sizes laid out as `kind` (indexed and ids interleave the groups' rows).
batch_layout make_layout(layout_kind kind, const std::vector<std::int64_t>& sizes,
                         std::mt19937_64& rng) {
  batch_layout L;
  L.kind = kind;
  L.offsets = test::offsets_of(sizes);
  L.rows = L.offsets.back();
  if (kind == layout_kind::uniform) {
    L.uniform =
        sr::uniform_groups{static_cast<std::int64_t>(sizes.size()), sizes.empty() ? 0 : sizes[0]};
  }
  if (kind == layout_kind::indexed || kind == layout_kind::ids) {
    // Assign each row of the batch to a group at random, then list each group's rows in order.
    std::vector<std::int64_t> group_of(static_cast<std::size_t>(L.rows));
    for (std::size_t g = 0, k = 0; g < sizes.size(); ++g)
      for (std::int64_t i = 0; i < sizes[g]; ++i)
        group_of[k++] = static_cast<std::int64_t>(g);
    std::shuffle(group_of.begin(), group_of.end(), rng);
    if (kind == layout_kind::indexed) {
      std::vector<std::int64_t> cursor(L.offsets.begin(), L.offsets.end() - 1);
      L.members.resize(static_cast<std::size_t>(L.rows));
      for (std::int64_t r = 0; r < L.rows; ++r)
        L.members[cursor[group_of[r]]++] = r;
      L.d_members = upload(L.members);
    } else {
      L.ids.resize(static_cast<std::size_t>(L.rows));
      for (std::int64_t r = 0; r < L.rows; ++r)
        L.ids[r] = static_cast<std::int64_t>(group_of[r] * 7919 % 1000003) - 500000;
      L.d_ids = upload(L.ids);
    }
  }
  if (kind == layout_kind::ragged || kind == layout_kind::indexed) L.d_offsets = upload(L.offsets);
  return L;
}

/// Group sizes for a case: uniform sizes, or ragged ones with edge sizes mixed in.
std::vector<std::int64_t> case_sizes(std::mt19937_64& rng, layout_kind kind, std::int64_t groups,
                                     std::int64_t n, bool even, bool big) {
  if (kind == layout_kind::uniform) return std::vector<std::int64_t>(groups, n);
  std::vector<std::int64_t> s =
      test::random_sizes(rng, static_cast<std::size_t>(groups), 2, 70, even);
  if (!even) s[0] = 1;
  s[s.size() / 2] = even ? 2 : 3;
  if (big) s.back() = even ? 1500 : 1501;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Host: the device code's per-group functions, run on the host against the CPU backend
// ---------------------------------------------------------------------------------------------

template <int P, class T>
void host_normalize_case(const std::vector<T>& x, const sr::advantage_options& o) {
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<T> want(x.size());
  std::vector<double> mean(1), sd(1);
  (void)sr::normalize_advantages(sr::cpu, x, sr::uniform_groups{1, n}, want, o, {mean, sd});
  double v[P] = {}, a[P] = {};
  for (std::int64_t i = 0; i < n; ++i)
    v[i] = static_cast<double>(x[i]);
  const g::norm_params p = g::make_norm_params<T>(o);
  const g::group_stats r = g::normalize_values<P>(v, n, p, g::batch_constants{}, a);
  std::vector<T> got(x.size());
  for (std::int64_t i = 0; i < n; ++i)
    got[i] = static_cast<T>(a[i]);
  CHECK(bit_equal(got, want));
  CHECK(std::memcmp(&r.mean, &mean[0], sizeof(double)) == 0);
  CHECK(std::memcmp(&r.std, &sd[0], sizeof(double)) == 0);
}

template <int P, class T>
void host_normalize_sizes(std::mt19937_64& rng) {
  for (std::int64_t n = P / 2 + 1; n <= P; ++n) {
    if (n < 2) continue;
    for (int kind = 0; kind < 4; ++kind) {
      std::vector<T> x = test::random_rewards<T>(rng, static_cast<std::size_t>(n),
                                                 static_cast<test::reward_kind>(kind));
      if (kind == 3 && std::is_same_v<T, double> && n % 3 == 0)
        for (auto& v : x)
          v = static_cast<T>(static_cast<double>(v) * 0x1p700);  // rescaled path
      for (const sr::estimator e :
           {sr::estimator::grpo, sr::estimator::mean_only, sr::estimator::rloo}) {
        sr::advantage_options o;
        o.kind = e;
        o.ddof = static_cast<int>(n % 2);
        host_normalize_case<P>(x, o);
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("host: normalize_values computes the CPU's small-group advantages bit for bit",
                   T, float, double) {
  std::mt19937_64 rng(101);
  host_normalize_sizes<2, T>(rng);
  host_normalize_sizes<4, T>(rng);
  host_normalize_sizes<8, T>(rng);
  host_normalize_sizes<16, T>(rng);
  host_normalize_sizes<32, T>(rng);
}

TEST_CASE_TEMPLATE("host: emit_group_pairs gives the CPU's pairs and weights", T, float, double) {
  std::mt19937_64 rng(202);
  for (std::int64_t n = 1; n <= 64; ++n) {
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<T> a(static_cast<std::size_t>(n));
      std::uniform_int_distribution<int> level(-3, 3);
      for (auto& v : a)
        v = static_cast<T>(level(rng)) / T(2);  // many ties, and -0.0
      if (n > 2) a[1] = T(-0.0);
      sr::pair_options o;
      o.odd = sr::odd_policy::drop_median;
      o.keep_ratio = rep == 3 ? 1.0 : 0.5;
      o.weight = static_cast<sr::pair_weight>(rep);
      const sr::uniform_groups G{1, n};
      const std::int64_t K = sr::count_pairs(G, n, o);
      std::vector<std::int64_t> want(2 * K);
      std::vector<T> want_w(K);
      REQUIRE(sr::select_pairs(sr::cpu, a, G, want, want_w, o) == K);
      std::vector<std::int64_t> got(2 * K, -1);
      std::vector<T> got_w(K);
      T padded[64];
      for (int k = 0; k < 64; ++k)
        padded[k] = k < n ? a[k] : static_cast<T>(-HUGE_VAL);
      g::dev_layout L;
      L.groups = 1;
      L.uniform = n;
      g::emit_group_pairs<T, 64, std::int64_t>(padded, n, K, L, 0, 0, o.weight, got.data(),
                                               got_w.data());
      CHECK(got == want);
      CHECK(bit_equal(got_w, want_w));
    }
  }
}

TEST_CASE_TEMPLATE("host: order_key orders like the advantages, ties and -0.0 included", T, float,
                   double) {
  const std::vector<T> v = {T(-3),
                            T(-0.5),
                            T(-0.0),
                            T(0),
                            T(1e-30),
                            T(0.5),
                            T(7),
                            static_cast<T>(-1e30),
                            static_cast<T>(1e30)};
  for (const T a : v)
    for (const T b : v) {
      CHECK((g::order_key(a) < g::order_key(b)) == (a < b));
      CHECK((g::order_key(a) == g::order_key(b)) == (a == b));
    }
}

TEST_CASE("host: plan_of and mass_of give the CPU's integer masses") {
  std::mt19937_64 rng(303);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  for (int kind = 0; kind < 4; ++kind) {
    for (const double coeff : {0.0, 1.0, 0.5, 2.0}) {
      std::vector<float> w(257);
      for (auto& x : w)
        x = static_cast<float>(u(rng) < 0.4 ? 0.0 : u(rng));
      sr::shuffle_options o;
      o.kind = static_cast<sr::transform>(kind);
      o.coeff = coeff;
      o.step = 3;
      o.total_steps = 10;
      const sr::detail::mass_plan want =
          sr::detail::cpu::plan_masses("test", sr::host_span<const float>(w), o);
      double hi = 0, lo = 1e300;
      for (const float x : w) {
        hi = std::max(hi, static_cast<double>(x));
        lo = std::min(lo, static_cast<double>(x));
      }
      const sr::detail::mass_plan got =
          g::plan_of(g::make_table_params(o), static_cast<std::int64_t>(w.size()), hi, lo);
      CHECK(std::memcmp(&got.w_ref, &want.w_ref, sizeof(double)) == 0);
      CHECK(std::memcmp(&got.q_ref, &want.q_ref, sizeof(double)) == 0);
      CHECK(std::memcmp(&got.tau, &want.tau, sizeof(double)) == 0);
      CHECK(got.unit == want.unit);
      std::vector<std::uint64_t> want_mass(w.size());
      (void)sr::detail::cpu::masses_of(want, w.data(), static_cast<std::int64_t>(w.size()),
                                       want_mass.data());
      for (std::size_t j = 0; j < w.size(); ++j)
        CHECK(sr::detail::mass_of(got, static_cast<double>(w[j])) == want_mass[j]);
    }
  }
}

TEST_CASE("host: pairs_kept_dev and check keys follow the CPU's rules") {
  for (const double ratio : {0.5, 1.0, 1 - 0.9, 0.3, 0.75})
    for (std::int64_t P = 0; P < 100; ++P) {
      sr::pair_options o;
      o.keep_ratio = ratio;
      CHECK(g::pairs_kept_dev(P, ratio, -1) == sr::detail::pairs_kept(P, o));
      o.keep_pairs = 3;
      CHECK(g::pairs_kept_dev(P, ratio, 3) == sr::detail::pairs_kept(P, o));
    }
  CHECK(g::check_key(g::check_id::offsets, 1000) < g::check_key(g::check_id::rows, 0));
  CHECK(g::check_key(g::check_id::reward_nonfinite, 5) <
        g::check_key(g::check_id::reward_nonfinite, 6));
  CHECK(g::check_key(g::check_id::too_few_pairs, 0) < g::check_key(g::check_id::order_size, 0));
  // run_pipeline checks the output sizes before it computes, so before singleton_range
  CHECK(g::check_key(g::check_id::output_size, 3) < g::check_key(g::check_id::singleton_range, 0));
  CHECK(g::check_key(g::check_id::singleton_range, 9) <
        g::check_key(g::check_id::advantage_nonfinite, 0));
}

// ---------------------------------------------------------------------------------------------
// Device: every algorithm against the CPU backend
// ---------------------------------------------------------------------------------------------

namespace {

template <class T>
void compare_normalize(const batch_layout& L, const std::vector<T>& r,
                       const sr::advantage_options& o) {
  const auto B = static_cast<std::size_t>(L.rows);
  L.visit([&](const auto& cpu_layout, const auto& dev_layout) {
    const auto G = static_cast<std::size_t>(L.groups());
    std::vector<T> want(B);
    std::vector<double> mean(G), sd(G);
    const outcome cpu = capture([&] {
      (void)sr::normalize_advantages(sr::cpu, r, cpu_layout, want, o, {mean, sd});
    });
    sr::device_buffer<T> d_r = upload(r), d_a(B);
    sr::device_buffer<double> d_mean(G), d_sd(G);
    sr::advantage_summary got_sum{};
    const outcome gpu = capture([&] {
      got_sum = sr::normalize_advantages(sr::cuda_policy{}, d_r.cspan(), dev_layout, d_a.span(), o,
                                         {d_mean.span(), d_sd.span()});
    });
    REQUIRE(gpu.threw == cpu.threw);
    if (cpu.threw) {
      CHECK(gpu.code == cpu.code);
      CHECK(gpu.message == cpu.message);
      return;
    }
    const sr::advantage_summary want_sum =
        sr::normalize_advantages(sr::cpu, r, cpu_layout, want, o, {mean, sd});
    const std::vector<T> got = download(d_a);
    CHECK(max_ulp(got, want) <= 2);
    CHECK(bit_equal(got, want));
    CHECK(bit_equal(download(d_mean), mean));
    CHECK(bit_equal(download(d_sd), sd));
    CHECK(got_sum.groups == want_sum.groups);
    CHECK(got_sum.zero_variance_groups == want_sum.zero_variance_groups);
    CHECK(got_sum.singleton_groups == want_sum.singleton_groups);
    CHECK(got_sum.empty_groups == want_sum.empty_groups);
    CHECK(std::memcmp(&got_sum.batch_std, &want_sum.batch_std, sizeof(double)) == 0);
  });
}

}  // namespace

TEST_CASE_TEMPLATE("cuda: normalize_advantages equals the CPU on random batches, every layout", T,
                   float, double) {
  std::mt19937_64 rng(7);
  for (const layout_kind kind :
       {layout_kind::uniform, layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
    for (const std::int64_t n : {1, 2, 3, 8, 16, 17, 32, 33, 64, 100, 1000}) {
      if (kind != layout_kind::uniform && n > 17) continue;
      const std::int64_t groups =
          kind == layout_kind::uniform ? std::max<std::int64_t>(1, 2048 / n) : 150;
      const std::vector<std::int64_t> sizes = case_sizes(rng, kind, groups, n, false, n == 3);
      const batch_layout L = make_layout(kind, sizes, rng);
      for (int rk = 0; rk < 4; ++rk) {
        const std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(L.rows),
                                                         static_cast<test::reward_kind>(rk));
        for (int e = 0; e < 4; ++e) {
          sr::advantage_options o;
          o.kind = static_cast<sr::estimator>(e);
          o.ddof = rk % 2;
          o.singleton = sr::singleton_policy::verl;
          INFO("layout ", name_of(kind), " n ", n, " rewards ", rk, " estimator ", e);
          compare_normalize(L, r, o);
        }
      }
    }
  }
}

TEST_CASE("cuda: normalize_advantages on a large batch and extreme rewards") {
  std::mt19937_64 rng(8);
  const batch_layout L =
      make_layout(layout_kind::uniform, std::vector<std::int64_t>(65536, 16), rng);
  std::vector<float> r =
      test::random_rewards<float>(rng, static_cast<std::size_t>(L.rows), test::reward_kind::graded);
  compare_normalize(L, r, {});
  const batch_layout big = make_layout(layout_kind::ragged, {40000, 5, 70000, 0, 33}, rng);
  std::vector<double> x = test::random_rewards<double>(rng, static_cast<std::size_t>(big.rows),
                                                       test::reward_kind::normal);
  for (std::size_t i = 0; i < 40000; ++i)
    x[i] *= 0x1p-1060;  // subnormal: rescaled
  sr::advantage_options o;
  o.singleton = sr::singleton_policy::zero;
  compare_normalize(big, x, o);
  o.kind = sr::estimator::batch_std;
  compare_normalize(big, x, o);
}

namespace {

template <class T>
void compare_pairs(const batch_layout& L, const std::vector<T>& adv, const sr::pair_options& o) {
  L.visit([&](const auto& cpu_layout, const auto& dev_layout) {
    const outcome count_cpu = capture([&] { (void)sr::count_pairs(cpu_layout, L.rows, o); });
    std::int64_t K = 0;
    if (!count_cpu.threw) K = sr::count_pairs(cpu_layout, L.rows, o);
    std::vector<std::int64_t> want(2 * K);
    std::vector<T> want_w(K);
    const outcome cpu =
        capture([&] { (void)sr::select_pairs(sr::cpu, adv, cpu_layout, want, want_w, o); });
    sr::device_buffer<T> d_adv = upload(adv);
    sr::device_buffer<std::int64_t> d_pairs = sentinel<std::int64_t>(2 * K);
    sr::device_buffer<T> d_w = sentinel<T>(K);
    std::int64_t got_K = -1;
    const outcome gpu = capture([&] {
      got_K = sr::select_pairs(sr::cuda_policy{}, d_adv.cspan(), dev_layout, d_pairs.span(),
                               d_w.span(), o);
    });
    REQUIRE(gpu.threw == cpu.threw);
    if (cpu.threw) {
      CHECK(gpu.code == cpu.code);
      CHECK(gpu.message == cpu.message);
      CHECK(all_sentinel(d_pairs));
      return;
    }
    CHECK(got_K == K);
    CHECK(sr::count_pairs(sr::cuda_policy{}, dev_layout, L.rows, o) == K);
    CHECK(download(d_pairs) == want);
    CHECK(bit_equal(download(d_w), want_w));
  });
}

}  // namespace

TEST_CASE_TEMPLATE("cuda: select_pairs equals the CPU, ties, odd groups and large groups", T, float,
                   double) {
  std::mt19937_64 rng(9);
  for (const layout_kind kind :
       {layout_kind::uniform, layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
    for (const std::int64_t n : {2, 5, 8, 16, 31, 64, 65, 200}) {
      if (kind != layout_kind::uniform && n > 16) continue;
      const bool even = n % 2 == 0;
      const std::int64_t groups =
          kind == layout_kind::uniform ? std::max<std::int64_t>(1, 2048 / n) : 120;
      const batch_layout L = make_layout(kind, case_sizes(rng, kind, groups, n, even, n == 8), rng);
      std::vector<T> adv(static_cast<std::size_t>(L.rows));
      std::uniform_int_distribution<int> level(-6, 6);
      for (auto& v : adv)
        v = static_cast<T>(level(rng)) / T(4);
      for (int w = 0; w < 4; ++w) {
        sr::pair_options o;
        o.weight = static_cast<sr::pair_weight>(w);
        o.odd = sr::odd_policy::drop_median;
        o.keep_ratio = w == 3 ? 1.0 : 0.5;
        INFO("layout ", name_of(kind), " n ", n, " weight ", w);
        compare_pairs(L, adv, o);
      }
      sr::pair_options strict;  // odd groups are errors, keep_pairs explicit
      strict.keep_pairs = 1;
      compare_pairs(L, adv, strict);
    }
  }
}

TEST_CASE("cuda: shuffle_pairs equals the CPU for every transform and short-round policy") {
  std::mt19937_64 rng(10);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int it = 0; it < 120; ++it) {
    std::int64_t K = 1 + static_cast<std::int64_t>(rng() % 5000);
    if (it % 10 == 0) K = static_cast<std::int64_t>(rng() % 8);
    std::vector<float> w(static_cast<std::size_t>(K));
    for (auto& x : w) {
      x = static_cast<float>(u(rng) * 3);
      if (u(rng) < 0.3) x = 0;
      if (it % 6 == 5) x = static_cast<float>(u(rng) < 0.01 ? 1000.0 : 1e-3 * u(rng));  // phases
    }
    sr::shuffle_options o;
    o.seed = rng();
    o.step = static_cast<std::int64_t>(rng() % 1000);
    o.total_steps = 1000;
    o.rounds = 1 + static_cast<std::int64_t>(rng() % 9);
    o.kind = static_cast<sr::transform>(it % 4);
    o.coeff = (it % 3) * 0.7;
    o.on_short = static_cast<sr::short_policy>(it % 3);
    if (it % 5 == 3)
      o.per_round = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(K + 1));
    INFO("case ", it, " K ", K);
    std::vector<std::int64_t> want(static_cast<std::size_t>(sr::shuffle_size(K, o)));
    sr::shuffle_summary ws{};
    const outcome cpu = capture([&] { ws = sr::shuffle_pairs(sr::cpu, w, want, o); });
    sr::device_buffer<float> d_w = upload(w);
    sr::device_buffer<std::int64_t> d_order = sentinel<std::int64_t>(want.size());
    sr::shuffle_summary gs{};
    const outcome gpu =
        capture([&] { gs = sr::shuffle_pairs(sr::cuda_policy{}, d_w.cspan(), d_order.span(), o); });
    REQUIRE(gpu.threw == cpu.threw);
    if (cpu.threw) {
      CHECK(gpu.code == cpu.code);
      CHECK(gpu.message == cpu.message);
      CHECK(all_sentinel(d_order));
      continue;
    }
    std::vector<std::int64_t> got = download(d_order);
    got.resize(static_cast<std::size_t>(gs.size));
    want.resize(static_cast<std::size_t>(ws.size));
    CHECK(got == want);
    CHECK(gs.nonzero_pairs == ws.nonzero_pairs);
    CHECK(gs.per_round == ws.per_round);
    CHECK(gs.size == ws.size);
    CHECK(gs.extra_phases == ws.extra_phases);
  }
}

TEST_CASE("cuda: pairs_to_rows and groups_from_ids equal the CPU") {
  std::mt19937_64 rng(11);
  const std::vector<std::int64_t> pairs = {4, 1, 7, 0, 3, 2, 5, 6};
  const std::vector<std::int64_t> order = {3, 0, 0, 2, 1};
  std::vector<std::int64_t> want(10);
  sr::pairs_to_rows(sr::cpu, pairs, order, want);
  sr::device_buffer<std::int64_t> d_pairs = upload(pairs), d_order = upload(order), d_rows(10);
  sr::pairs_to_rows(sr::cuda_policy{}, d_pairs.cspan(), d_order.cspan(), d_rows.span());
  CHECK(download(d_rows) == want);

  for (const std::size_t B : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{5000}}) {
    std::vector<std::int32_t> ids(B);
    std::uniform_int_distribution<int> id(-40, 40);
    for (auto& v : ids)
      v = id(rng);
    for (std::size_t i = 1; i < B; i += 3)
      ids[i] = ids[i - 1];  // runs
    std::vector<std::int64_t> off(B + 1), rows(B);
    const sr::indexed_groups cpu = sr::groups_from_ids(sr::cpu, ids, off, rows);
    sr::device_buffer<std::int32_t> d_ids = upload(ids);
    sr::device_buffer<std::int64_t> d_off(B + 1), d_rows2(B);
    const sr::device_indexed_groups gpu =
        sr::groups_from_ids(sr::cuda_policy{}, d_ids.cspan(), d_off.span(), d_rows2.span());
    REQUIRE(gpu.offsets.size() == cpu.offsets.size());
    std::vector<std::int64_t> got_off = download(d_off);
    got_off.resize(gpu.offsets.size());
    CHECK(got_off == std::vector<std::int64_t>(cpu.offsets.begin(), cpu.offsets.end()));
    CHECK(download(d_rows2) == rows);
  }
}

namespace {

template <class T>
struct pipeline_io {
  std::vector<T> adv, weights;
  std::vector<std::int64_t> pairs, order, rows;
  std::vector<double> mean, sd;
  explicit pipeline_io(const sr::pipeline_sizes& n)
      : adv(n.rows),
        weights(n.pairs),
        pairs(2 * n.pairs),
        order(n.order),
        rows(n.training_rows),
        mean(n.groups),
        sd(n.groups) {}
};

template <class T>
struct device_io {
  sr::device_buffer<T> adv, weights;
  sr::device_buffer<std::int64_t> pairs, order, rows;
  sr::device_buffer<double> mean, sd;
  explicit device_io(const sr::pipeline_sizes& n)
      : adv(sentinel<T>(n.rows)),
        weights(sentinel<T>(n.pairs)),
        pairs(sentinel<std::int64_t>(2 * n.pairs)),
        order(sentinel<std::int64_t>(n.order)),
        rows(sentinel<std::int64_t>(n.training_rows)),
        mean(sentinel<double>(n.groups)),
        sd(sentinel<double>(n.groups)) {}
  sr::device_pipeline_outputs<T> out() {
    return {adv.span(),  pairs.span(), weights.span(), order.span(),
            rows.span(), mean.span(),  sd.span()};
  }
  bool untouched() const {
    return all_sentinel(adv) && all_sentinel(weights) && all_sentinel(pairs) &&
           all_sentinel(order) && all_sentinel(rows) && all_sentinel(mean) && all_sentinel(sd);
  }
};

template <class T>
void check_pipeline_equal(const pipeline_io<T>& want, const sr::pipeline_summary& ws,
                          device_io<T>& got, const sr::pipeline_summary& gs) {
  CHECK(gs.pairs == ws.pairs);
  CHECK(gs.shuffle.size == ws.shuffle.size);
  CHECK(gs.shuffle.nonzero_pairs == ws.shuffle.nonzero_pairs);
  CHECK(gs.shuffle.per_round == ws.shuffle.per_round);
  CHECK(gs.shuffle.extra_phases == ws.shuffle.extra_phases);
  CHECK(gs.distinct_pairs_used == ws.distinct_pairs_used);
  CHECK(gs.advantage.groups == ws.advantage.groups);
  CHECK(gs.advantage.zero_variance_groups == ws.advantage.zero_variance_groups);
  CHECK(gs.advantage.singleton_groups == ws.advantage.singleton_groups);
  CHECK(gs.advantage.empty_groups == ws.advantage.empty_groups);
  const std::vector<T> adv = download(got.adv);
  CHECK(max_ulp(adv, want.adv) <= 2);
  CHECK(bit_equal(adv, want.adv));
  CHECK(download(got.pairs) == want.pairs);
  CHECK(bit_equal(download(got.weights), want.weights));
  const auto n = static_cast<std::ptrdiff_t>(ws.shuffle.size);
  const std::vector<std::int64_t> order = download(got.order), rows = download(got.rows);
  CHECK(std::vector<std::int64_t>(order.begin(), order.begin() + n) ==
        std::vector<std::int64_t>(want.order.begin(), want.order.begin() + n));
  CHECK(std::vector<std::int64_t>(rows.begin(), rows.begin() + 2 * n) ==
        std::vector<std::int64_t>(want.rows.begin(), want.rows.begin() + 2 * n));
  CHECK(bit_equal(download(got.mean), want.mean));
  CHECK(bit_equal(download(got.sd), want.sd));
}

template <class T>
void compare_pipeline(const batch_layout& L, const std::vector<T>& r,
                      const sr::pipeline_config& c) {
  L.visit([&](const auto& cpu_layout, const auto& dev_layout) {
    const outcome plan = capture([&] { (void)sr::plan_pipeline(cpu_layout, L.rows, c); });
    sr::pipeline_sizes sizes{};
    if (!plan.threw) sizes = sr::plan_pipeline(cpu_layout, L.rows, c);
    pipeline_io<T> want(sizes);
    sr::pipeline_workspace<T> cpu_ws;
    sr::pipeline_summary ws{};
    const outcome cpu = capture([&] {
      ws = sr::run_pipeline(sr::cpu, r, cpu_layout, c, cpu_ws,
                            sr::pipeline_outputs<T>{want.adv, want.pairs, want.weights, want.order,
                                                    want.rows, want.mean, want.sd});
    });
    sr::device_buffer<T> d_r = upload(r);
    device_io<T> got(sizes);
    sr::pipeline_summary gs{};
    const outcome gpu = capture(
        [&] { gs = sr::run_pipeline(sr::cuda_policy{}, d_r.cspan(), dev_layout, c, got.out()); });
    REQUIRE(gpu.threw == cpu.threw);
    if (cpu.threw) {
      CHECK(gpu.code == cpu.code);
      CHECK(gpu.message == cpu.message);
      CHECK(got.untouched());
      return;
    }
    if (L.kind != layout_kind::uniform) {
      const sr::pipeline_sizes dev_sizes =
          sr::plan_pipeline(sr::cuda_policy{}, dev_layout, L.rows, c);
      CHECK(dev_sizes.pairs == sizes.pairs);
      CHECK(dev_sizes.groups == sizes.groups);
      CHECK(dev_sizes.order == sizes.order);
    }
    check_pipeline_equal(want, ws, got, gs);
  });
}

}  // namespace

TEST_CASE_TEMPLATE("cuda: run_pipeline equals the CPU, every layout and policy", T, float, double) {
  std::mt19937_64 rng(12);
  for (const layout_kind kind :
       {layout_kind::uniform, layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
    for (const std::int64_t n : {16, 8, 2, 48, 100}) {
      if (kind != layout_kind::uniform && n != 16) continue;
      const std::int64_t groups = kind == layout_kind::uniform ? 512 : 200;
      const batch_layout L = make_layout(kind, case_sizes(rng, kind, groups, n, true, true), rng);
      for (int policy = 0; policy < 3; ++policy) {
        const std::vector<T> r = test::random_rewards<T>(rng, static_cast<std::size_t>(L.rows),
                                                         test::reward_kind::graded);
        sr::pipeline_config c;
        c.shuffle.seed = rng();
        c.shuffle.step = policy * 17;
        c.shuffle.on_short = static_cast<sr::short_policy>(policy);
        c.shuffle.total_steps = 100;
        c.advantage.kind = static_cast<sr::estimator>(policy == 2 ? 3 : policy);
        c.shuffle.kind = static_cast<sr::transform>(policy);
        INFO("layout ", name_of(kind), " n ", n, " policy ", policy);
        compare_pipeline(L, r, c);
      }
    }
  }
}

namespace {

/// A resource that counts what the library allocates.
struct counting_resource final : sr::cuda_memory_resource {
  int allocations = 0;
  void* allocate(std::size_t bytes, cudaStream_t s) override {
    ++allocations;
    return sr::default_cuda_memory_resource().allocate(bytes, s);
  }
  void deallocate(void* p, std::size_t bytes, cudaStream_t s) noexcept override {
    sr::default_cuda_memory_resource().deallocate(p, bytes, s);
  }
};

/// Captures run_pipeline for layout L into a CUDA graph and replays it with new rewards each
/// time, comparing every replay with the CPU; the library must allocate nothing.
void graph_case(const batch_layout& L, std::mt19937_64& rng) {
  L.visit([&](const auto& cpu_layout, const auto& dev_layout) {
    counting_resource counter;
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    const sr::cuda_policy policy = sr::cuda_on(stream, &counter);
    const std::int64_t B = L.rows;
    sr::pipeline_config c;
    c.shuffle.seed = 1234;
    c.shuffle.step = 5;
    c.shuffle.on_short = sr::short_policy::shrink;
    const sr::pipeline_sizes sizes = sr::plan_pipeline(cpu_layout, B, c);
    {
      const std::size_t bytes = sr::pipeline_workspace_size<float>(policy, dev_layout, B, c);
      sr::device_buffer<std::byte> workspace(bytes);
      sr::device_buffer<float> d_r(static_cast<std::size_t>(B));
      device_io<float> got(sizes);
      // One eager run first (rewards 0: no pair has weight, shrink gives empty rounds): kernels
      // are loaded (lazily) outside the capture.
      REQUIRE(cudaMemset(d_r.data(), 0, static_cast<std::size_t>(B) * sizeof(float)) ==
              cudaSuccess);
      // The buffers were allocated and filled on the legacy default stream, which a
      // non-blocking stream does not wait for.
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      sr::run_pipeline(policy, d_r.cspan(), dev_layout, c, workspace.span(), got.out());
      (void)sr::pipeline_result(policy, workspace.cspan());
      cudaGraph_t graph = nullptr;
      REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
      sr::run_pipeline(policy, d_r.cspan(), dev_layout, c, workspace.span(), got.out());
      REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
      CHECK(counter.allocations == 0);
      cudaGraphExec_t exec = nullptr;
      REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
      for (int replay = 0; replay < 3; ++replay) {
        // New rewards in the same buffer, as a trainer's next step.
        const std::vector<float> r = test::random_rewards<float>(rng, static_cast<std::size_t>(B),
                                                                 test::reward_kind::graded);
        REQUIRE(cudaMemcpyAsync(d_r.data(), r.data(), r.size() * sizeof(float),
                                cudaMemcpyHostToDevice, stream) == cudaSuccess);
        REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
        const sr::pipeline_summary gs = sr::pipeline_result(policy, workspace.cspan());
        pipeline_io<float> want(sizes);
        sr::pipeline_workspace<float> cpu_ws;
        const sr::pipeline_summary ws = sr::run_pipeline(
            sr::cpu, r, cpu_layout, c, cpu_ws,
            sr::pipeline_outputs<float>{want.adv, want.pairs, want.weights, want.order, want.rows,
                                        want.mean, want.sd});
        check_pipeline_equal(want, ws, got, gs);
      }
      CHECK(counter.allocations == 0);
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(graph);
    }
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    cudaStreamDestroy(stream);
  });
}

}  // namespace

TEST_CASE("cuda: run_pipeline in a CUDA graph with a workspace: no allocation, replayable") {
  std::mt19937_64 rng(13);
  graph_case(make_layout(layout_kind::uniform, std::vector<std::int64_t>(512, 16), rng), rng);
  graph_case(make_layout(layout_kind::uniform, std::vector<std::int64_t>(40, 100), rng), rng);
  for (const layout_kind kind : {layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
    INFO("layout ", name_of(kind));
    graph_case(make_layout(kind, case_sizes(rng, kind, 300, 16, true, true), rng), rng);
  }
}

TEST_CASE("cuda: errors have the CPU's code and message, and nothing is written") {
  std::mt19937_64 rng(14);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Non-finite rewards, uniform and ragged; singleton groups; odd groups; keep_pairs.
  {
    batch_layout L = make_layout(layout_kind::uniform, std::vector<std::int64_t>(64, 8), rng);
    std::vector<float> r = test::random_rewards<float>(rng, 512, test::reward_kind::binary);
    r[77] = nan;
    r[300] = std::numeric_limits<float>::infinity();
    compare_normalize(L, r, {});
    compare_pipeline(L, r, {});
    sr::pipeline_config c;
    c.advantage.kind = sr::estimator::rloo;
    r[77] = std::numeric_limits<float>::max();
    r[300] = 1;
    compare_normalize(L, r, c.advantage);
    compare_pipeline(L, r, c);
  }
  for (const layout_kind kind : {layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
    const batch_layout L = make_layout(kind, {4, 1, 6, 3, 8, 0, 2}, rng);
    std::vector<float> r = test::random_rewards<float>(rng, static_cast<std::size_t>(L.rows),
                                                       test::reward_kind::graded);
    compare_normalize(L, r, {});  // singleton group
    compare_pipeline(L, r, {});   // singleton before the odd group
    sr::pipeline_config c;
    c.advantage.singleton = sr::singleton_policy::zero;
    compare_pipeline(L, r, c);  // odd group
    c.pairs.odd = sr::odd_policy::drop_median;
    c.pairs.keep_pairs = 2;
    compare_pipeline(L, r, c);  // keep_pairs larger than a group
    r[5] = -std::numeric_limits<float>::infinity();
    compare_pipeline(L, r, c);  // the reward comes first
    c.pairs.keep_pairs = -1;
    c.shuffle.per_round = 1000;
    r[5] = 0;
    compare_pipeline(L, r, c);  // per_round larger than K
  }
  // batch_std with verl singletons: with all rewards equal, sigma_batch = 0 and a singleton's
  // advantage x / (sigma_batch + eps) is beyond T (singleton_range). For doubles near max the
  // batch is rescaled; with eps = 1e-300 eps vanishes in that scale (a denominator of 0).
  const auto singleton_range = [&](auto zero, double eps) {
    using T = decltype(zero);
    for (const layout_kind kind :
         {layout_kind::uniform, layout_kind::ragged, layout_kind::indexed, layout_kind::ids}) {
      const batch_layout L = kind == layout_kind::uniform
                                 ? make_layout(kind, std::vector<std::int64_t>(8, 1), rng)
                                 : make_layout(kind, {4, 1, 6, 1, 2}, rng);
      const std::vector<T> r(static_cast<std::size_t>(L.rows), std::numeric_limits<T>::max() / 4);
      sr::pipeline_config c;
      c.advantage.kind = sr::estimator::batch_std;
      c.advantage.singleton = sr::singleton_policy::verl;
      c.advantage.eps = eps;
      c.pairs.odd = sr::odd_policy::drop_median;
      L.visit([&](const auto& cpu_layout, const auto&) {
        std::vector<T> a(r.size());
        const outcome cpu = capture(
            [&] { (void)sr::normalize_advantages(sr::cpu, r, cpu_layout, a, c.advantage); });
        CHECK(cpu.threw);
        CHECK(cpu.code == sr::errc::out_of_range);
      });
      compare_normalize(L, r, c.advantage);
      compare_pipeline(L, r, c);
    }
  };
  singleton_range(0.0f, 1e-6);
  singleton_range(0.0, 1e-6);
  singleton_range(0.0, 1e-300);
  // Invalid ragged and indexed layouts.
  {
    batch_layout L = make_layout(layout_kind::ragged, {4, 4, 4}, rng);
    const std::vector<float> r(12, 1.0f);
    for (const std::vector<std::int64_t>& bad :
         {std::vector<std::int64_t>{1, 4, 8, 12}, std::vector<std::int64_t>{0, 5, 4, 12},
          std::vector<std::int64_t>{0, 4, 8, 11}}) {
      L.offsets = bad;
      L.d_offsets = upload(bad);
      compare_normalize(L, r, {});
      compare_pipeline(L, r, {});
    }
    batch_layout I = make_layout(layout_kind::indexed, {4, 4, 4}, rng);
    for (const int mode : {0, 1, 2}) {
      std::vector<std::int64_t> m = {0, 3, 5, 9, 1, 2, 7, 11, 4, 6, 8, 10};
      if (mode == 0) m[6] = 12;              // out of range
      if (mode == 1) std::swap(m[5], m[6]);  // not increasing
      if (mode == 2) m[11] = 9;              // duplicate
      I.members = m;
      I.d_members = upload(m);
      compare_normalize(I, r, {});
      compare_pipeline(I, r, {});
    }
  }
  // Too few pairs of non-zero weight; bad weights; order out of range.
  {
    const batch_layout L = make_layout(layout_kind::uniform, std::vector<std::int64_t>(16, 8), rng);
    std::vector<float> r(128, 1.0f);
    r[0] = 0.0f;  // one group with signal: 2 non-zero pairs of 32, T = 4
    compare_pipeline(L, r, {});
    const std::vector<float> w = {1.0f, -2.0f, nan};
    std::vector<std::int64_t> order(1);
    sr::shuffle_options o;
    o.rounds = 1;
    const outcome cpu = capture([&] { (void)sr::shuffle_pairs(sr::cpu, w, order, o); });
    sr::device_buffer<float> d_w = upload(w);
    sr::device_buffer<std::int64_t> d_order = sentinel<std::int64_t>(1);
    const outcome gpu = capture(
        [&] { (void)sr::shuffle_pairs(sr::cuda_policy{}, d_w.cspan(), d_order.span(), o); });
    CHECK(gpu.threw);
    CHECK(gpu.code == cpu.code);
    CHECK(gpu.message == cpu.message);
    CHECK(all_sentinel(d_order));
    const std::vector<std::int64_t> pairs = {0, 1, 2, 3};
    const std::vector<std::int64_t> bad_order = {1, 0, 2};
    std::vector<std::int64_t> rows(6);
    const outcome cpu2 = capture([&] { sr::pairs_to_rows(sr::cpu, pairs, bad_order, rows); });
    sr::device_buffer<std::int64_t> d_p = upload(pairs), d_o = upload(bad_order),
                                    d_rows = sentinel<std::int64_t>(6);
    const outcome gpu2 = capture(
        [&] { sr::pairs_to_rows(sr::cuda_policy{}, d_p.cspan(), d_o.cspan(), d_rows.span()); });
    CHECK(gpu2.message == cpu2.message);
    CHECK(all_sentinel(d_rows));
  }
  // A workspace that is too small is refused before anything is enqueued.
  {
    const sr::uniform_groups groups{4, 8};
    sr::device_buffer<float> d_r(32);
    sr::device_buffer<std::byte> small(64);
    const outcome o = capture([&] {
      sr::run_pipeline(sr::cuda_policy{}, d_r.cspan(), groups, sr::pipeline_config{}, small.span(),
                       sr::device_pipeline_outputs<float>{});
    });
    CHECK(o.threw);
    CHECK(o.code == sr::errc::size_mismatch);
  }
}

TEST_CASE("cuda: empty inputs") {
  sr::device_buffer<float> none;
  sr::device_buffer<std::int64_t> out;
  const sr::advantage_summary s = sr::normalize_advantages(sr::cuda_policy{}, none.cspan(),
                                                           sr::uniform_groups{0, 0}, none.span());
  CHECK(s.rows == 0);
  CHECK(sr::select_pairs(sr::cuda_policy{}, none.cspan(), sr::uniform_groups{0, 8}, out.span(),
                         none.span()) == 0);
  const sr::shuffle_summary sh = sr::shuffle_pairs(sr::cuda_policy{}, none.cspan(), out.span());
  CHECK(sh.size == 0);
  const sr::pipeline_summary p =
      sr::run_pipeline(sr::cuda_policy{}, none.cspan(), sr::uniform_groups{0, 16},
                       sr::pipeline_config{}, sr::device_pipeline_outputs<float>{});
  CHECK(p.pairs == 0);
  CHECK(p.shuffle.size == 0);
}

int main(int argc, char** argv) {
  bool host_only = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--host-only")
      host_only = true;
    else
      args.push_back(argv[i]);
  }
  doctest::Context context;
  context.applyCommandLine(static_cast<int>(args.size()), args.data());
  if (host_only) {
    context.addFilter("test-case", "host:*");
  } else if (!sr::cuda_device_available()) {
    std::printf("shuffle_r1_cuda_tests: no CUDA device available, skipping the device tests\n");
    return 77;
  }
  return context.run();
}
