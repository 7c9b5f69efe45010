// Prints one 64-bit FNV-1a hash of the outputs of run_pipeline on fixed batches (float and
// double; uniform, ragged and id layouts; every estimator, pair weight, transform and short
// policy). ctest builds this file with several compilers' flag sets (-O0, -O3, -O3
// -march=native, C++20, the sanitizer build) and requires the same hash from each: selections and
// advantages are bit-identical across builds (docs/determinism.md).
#include <shuffle_r1/shuffle_r1.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace sr = shuffle_r1;

namespace {
struct fnv {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i)
      h = (h ^ b[i]) * 0x100000001b3ull;
  }
  template <class V>
  void all(const V& v) {
    bytes(v.data(), v.size() * sizeof(v[0]));
  }
};

template <class T, class Layout>
void run(fnv& f, const std::vector<T>& rewards, const Layout& groups,
         const sr::pipeline_config& c) {
  const auto n = sr::plan_pipeline(groups, static_cast<std::int64_t>(rewards.size()), c);
  std::vector<T> adv(n.rows), w(n.pairs);
  std::vector<std::int64_t> pairs(2 * n.pairs), order(n.order), rows(n.training_rows);
  std::vector<double> mean(n.groups), sd(n.groups);
  sr::pipeline_workspace<T> ws;
  const auto s = sr::run_pipeline(sr::cpu, rewards, groups, c, ws,
                                  sr::pipeline_outputs<T>{adv, pairs, w, order, rows, mean, sd});
  order.resize(static_cast<std::size_t>(s.shuffle.size));
  rows.resize(static_cast<std::size_t>(2 * s.shuffle.size));
  f.all(adv);
  f.all(w);
  f.all(pairs);
  f.all(order);
  f.all(rows);
  f.all(mean);
  f.all(sd);
}

template <class T>
void batches(fnv& f) {
  const std::int64_t P = 97, n = 16;
  std::vector<T> r(static_cast<std::size_t>(P * n));
  sr::synthetic_rewards(P, n, 7, sr::host_span<T>(r));
  std::vector<std::int64_t> off{0}, ids(r.size());
  for (std::int64_t g = 0; g < P; ++g)
    off.push_back(off.back() + n);
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<std::int64_t>((i * 37) % static_cast<std::size_t>(P));
  for (int e = 0; e < 4; ++e)
    for (int w = 0; w < 4; ++w)
      for (int t = 0; t < 4; ++t) {
        sr::pipeline_config c;
        c.advantage.kind = static_cast<sr::estimator>(e);
        c.pairs.weight = static_cast<sr::pair_weight>(w);
        c.shuffle.kind = static_cast<sr::transform>(t);
        c.shuffle.coeff = 0.5 + w;
        c.shuffle.total_steps = 10;
        c.shuffle.step = e + t;
        c.shuffle.seed = 1000u + static_cast<unsigned>(16 * e + 4 * w + t);
        c.shuffle.on_short = (e + w + t) % 2 ? sr::short_policy::fill : sr::short_policy::shrink;
        run(f, r, sr::uniform_groups{P, n}, c);
        if ((e + w + t) % 3 == 0) run(f, r, sr::ragged_groups{off}, c);
        if ((e + w + t) % 3 == 1) run(f, r, sr::id_groups<std::int64_t>{ids}, c);
      }
}
}  // namespace

int main() {
  fnv f;
  batches<float>(f);
  batches<double>(f);
  std::printf("determinism hash %016llx\n", static_cast<unsigned long long>(f.h));
  return 0;
}
