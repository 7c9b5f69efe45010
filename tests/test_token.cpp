// broadcast_padded / broadcast_packed: worked examples, mask types, gathers, a randomized
// comparison with a plain loop, errors with nothing written.
#include "support.hpp"

namespace sr = shuffle_r1;

long long allocation_count();  // tests/alloc_counter.cpp

namespace {
template <class T>
using cspan = sr::host_span<const T>;
template <class T>
using span = sr::host_span<T>;
}  // namespace

TEST_CASE_TEMPLATE("token: padded broadcast with a response mask", T, float, double) {
  // Two rows, T = 3: row 0 answers in tokens 0-1, row 1 in tokens 1-2.
  const std::vector<T> adv = {T(1.5), T(-2)};
  const std::vector<std::uint8_t> mask = {1, 1, 0, 0, 1, 1};
  std::vector<T> out(6, T(9));
  sr::broadcast_padded(sr::cpu, cspan<T>(adv), cspan<std::uint8_t>(mask), 3, span<T>(out));
  CHECK(out == std::vector<T>{T(1.5), T(1.5), 0, 0, T(-2), T(-2)});
  // Without a mask every token takes its row's value.
  sr::broadcast_padded(sr::cpu, cspan<T>(adv), cspan<std::uint8_t>(), 3, span<T>(out));
  CHECK(out == std::vector<T>{T(1.5), T(1.5), T(1.5), T(-2), T(-2), T(-2)});
  // Other mask types: bool, int64 (torch.long), float (torch.float); non-zero is a token.
  const bool bmask[] = {false, true, false, true, false, true};
  sr::broadcast_padded(sr::cpu, cspan<T>(adv), cspan<bool>(bmask, 6), 3, span<T>(out));
  CHECK(out == std::vector<T>{0, T(1.5), 0, T(-2), 0, T(-2)});
  const std::vector<std::int64_t> lmask = {0, 0, 1, 1, 0, 0};
  sr::broadcast_padded(sr::cpu, cspan<T>(adv), cspan<std::int64_t>(lmask), 3, span<T>(out));
  CHECK(out == std::vector<T>{0, 0, T(1.5), T(-2), 0, 0});
  const std::vector<float> fmask = {1.f, 0.f, 1.f, 0.f, 0.f, 1.f};
  sr::broadcast_padded(sr::cpu, cspan<T>(adv), cspan<float>(fmask), 3, span<T>(out));
  CHECK(out == std::vector<T>{T(1.5), 0, T(1.5), 0, 0, T(-2)});
  // Masked tokens get +0.0 (not -0.0 as A * mask would give for a negative A).
  CHECK(!std::signbit(out[3]));
}

TEST_CASE("token: padded broadcast gathers the training order") {
  const std::vector<float> adv = {0.5f, -1.0f, 2.0f};
  const std::vector<std::int64_t> rows = {2, 2, 0, 1};  // e.g. pairs_to_rows output
  const std::vector<std::uint8_t> mask = {1, 0, 1, 1, 0, 1, 1, 1};
  std::vector<float> out(8);
  sr::broadcast_padded(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(rows),
                       cspan<std::uint8_t>(mask), 2, span<float>(out));
  CHECK(out == std::vector<float>{2.0f, 0.0f, 2.0f, 2.0f, 0.0f, 0.5f, -1.0f, -1.0f});
}

TEST_CASE_TEMPLATE("token: packed broadcast with cumulative lengths", T, float, double) {
  // Three sequences of 2, 0 and 3 tokens.
  const std::vector<T> adv = {T(1), T(7), T(-0.25)};
  const std::vector<std::int32_t> cu = {0, 2, 2, 5};
  std::vector<T> out(5, T(9));
  sr::broadcast_packed(sr::cpu, cspan<T>(adv), cspan<std::int32_t>(cu), cspan<bool>(),
                       span<T>(out));
  CHECK(out == std::vector<T>{1, 1, T(-0.25), T(-0.25), T(-0.25)});
  // Prompt tokens masked out (the packed layout usually holds prompt and response).
  const std::vector<std::uint8_t> mask = {0, 1, 0, 1, 1};
  const std::vector<std::int64_t> cu64 = {0, 2, 2, 5};
  sr::broadcast_packed(sr::cpu, cspan<T>(adv), cspan<std::int64_t>(cu64), cspan<std::uint8_t>(mask),
                       span<T>(out));
  CHECK(out == std::vector<T>{0, 1, 0, T(-0.25), T(-0.25)});
  // Gather: the packed batch holds rows 2 and 0, in that order.
  const std::vector<std::int64_t> rows = {2, 0};
  const std::vector<std::int64_t> cu2 = {0, 1, 4};
  std::vector<T> out2(4);
  sr::broadcast_packed(sr::cpu, cspan<T>(adv), cspan<std::int64_t>(rows), cspan<std::int64_t>(cu2),
                       cspan<bool>(), span<T>(out2));
  CHECK(out2 == std::vector<T>{T(-0.25), 1, 1, 1});
}

TEST_CASE("token: both layouts agree with a plain loop on random batches") {
  std::mt19937_64 rng(31);
  for (int trial = 0; trial < 30; ++trial) {
    const std::size_t N = 1 + rng() % 40, T = rng() % 70;
    std::vector<float> adv(N);
    for (auto& a : adv)
      a = static_cast<float>(static_cast<int>(rng() % 9) - 4) / 4.0f;
    // Right-padded response masks with random lengths, as trainers build them.
    std::vector<std::uint8_t> mask(N * T, 0);
    std::vector<std::int64_t> len(N), cu(N + 1, 0);
    for (std::size_t i = 0; i < N; ++i) {
      len[i] = T ? static_cast<std::int64_t>(rng() % (T + 1)) : 0;
      for (std::int64_t t = 0; t < len[i]; ++t)
        mask[i * T + t] = 1;
      cu[i + 1] = cu[i] + len[i];
    }
    std::vector<float> padded(N * T, -9.f), expect(N * T);
    sr::broadcast_padded(sr::cpu, cspan<float>(adv), cspan<std::uint8_t>(mask),
                         static_cast<std::int64_t>(T), span<float>(padded));
    for (std::size_t i = 0; i < N * T; ++i)
      expect[i] = mask[i] ? adv[i / T] : 0.0f;
    CHECK(padded == expect);
    // The packed layout of the same responses equals the masked entries of the padded one.
    std::vector<float> packed(static_cast<std::size_t>(cu[N]), -9.f), from_padded;
    sr::broadcast_packed(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(cu), cspan<bool>(),
                         span<float>(packed));
    for (std::size_t i = 0; i < N * T; ++i)
      if (mask[i]) from_padded.push_back(padded[i]);
    CHECK(packed == from_padded);
  }
}

TEST_CASE("token: bad input is refused before anything is written") {
  const std::vector<double> adv = {1.0, 2.0};
  const std::vector<std::uint8_t> mask(6, 1);
  std::vector<double> out(6, -1.0);
  const std::vector<double> untouched(6, -1.0);
  const auto padded = [&](const std::vector<double>& a, std::int64_t T, std::size_t mask_size,
                          std::size_t out_size) {
    sr::broadcast_padded(sr::cpu, cspan<double>(a), cspan<std::uint8_t>(mask.data(), mask_size), T,
                         span<double>(out.data(), out_size));
  };
  CHECK_THROWS_WITH_AS(padded(adv, 3, 6, 5), doctest::Contains("out has 5 entries, expected 2 x 3"),
                       sr::error);
  CHECK_THROWS_WITH_AS(padded(adv, 3, 4, 6), doctest::Contains("mask has 4 entries, expected 6"),
                       sr::error);
  CHECK_THROWS_WITH_AS(padded(adv, -1, 0, 0), doctest::Contains("seq_len is -1"), sr::error);
  std::vector<double> nan = adv;
  nan[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(padded(nan, 3, 6, 6),
                       doctest::Contains("broadcast_padded: values[1] is NaN"), sr::error);
  const std::vector<std::int64_t> rows = {0, 2};
  CHECK_THROWS_WITH_AS(sr::broadcast_padded(sr::cpu, cspan<double>(adv), cspan<std::int64_t>(rows),
                                            cspan<std::uint8_t>(mask), 3, span<double>(out)),
                       doctest::Contains("rows[1] = 2 is outside [0, 2)"), sr::error);
  CHECK(out == untouched);

  const auto packed = [&](const std::vector<std::int64_t>& cu, std::size_t out_size) {
    sr::broadcast_packed(sr::cpu, cspan<double>(adv), cspan<std::int64_t>(cu), cspan<bool>(),
                         span<double>(out.data(), out_size));
  };
  CHECK_THROWS_WITH_AS(packed({0, 4}, 4), doctest::Contains("cu_seqlens has 2 entries, expected 3"),
                       sr::error);
  CHECK_THROWS_WITH_AS(packed({1, 2, 4}, 4), doctest::Contains("cu_seqlens[0] is 1, expected 0"),
                       sr::error);
  CHECK_THROWS_WITH_AS(packed({0, 3, 2}, 2),
                       doctest::Contains("cu_seqlens[2] = 2 is less than cu_seqlens[1] = 3"),
                       sr::error);
  CHECK_THROWS_WITH_AS(packed({0, 3, 5}, 6),
                       doctest::Contains("out has 6 entries, expected cu_seqlens[2] = 5"),
                       sr::error);
  CHECK(out == untouched);
  // Empty batches.
  packed({0, 0, 0}, 0);
  sr::broadcast_padded(sr::cpu, cspan<double>(), cspan<bool>(), 5, span<double>());
  CHECK(out == untouched);
}

TEST_CASE("token: the broadcasts allocate nothing") {
  const std::vector<float> adv(64, 0.5f);
  const std::vector<std::uint8_t> mask(64 * 32, 1);
  std::vector<float> out(64 * 32);
  std::vector<std::int64_t> cu(65);
  for (std::size_t i = 0; i < cu.size(); ++i)
    cu[i] = static_cast<std::int64_t>(32 * i);
  const long long before = allocation_count();
  sr::broadcast_padded(sr::cpu, cspan<float>(adv), cspan<std::uint8_t>(mask), 32, span<float>(out));
  sr::broadcast_packed(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(cu),
                       cspan<std::uint8_t>(mask), span<float>(out));
  CHECK(allocation_count() - before == 0);
  CHECK(out == std::vector<float>(64 * 32, 0.5f));
}
