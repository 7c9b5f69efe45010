// Philox4x32-10 and the counter layout of the sampler.
#include "support.hpp"

namespace sr = shuffle_r1;

TEST_CASE("random: Philox4x32-10 matches the known-answer vectors") {
  const auto check = [](sr::philox_block ctr, sr::philox_key key, sr::philox_block want) {
    const sr::philox_block got = sr::philox4x32_10(ctr, key);
    for (int i = 0; i < 4; ++i)
      CHECK(got.v[i] == want.v[i]);
  };
  check({{0, 0, 0, 0}}, {{0, 0}}, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  check({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, {{0xffffffffu, 0xffffffffu}},
        {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  check({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, {{0xa4093822u, 0x299f31d0u}},
        {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST_CASE("random: Philox is usable in constant expressions") {
  constexpr sr::philox_block b = sr::philox4x32_10({{0, 0, 0, 0}}, {{0, 0}});
  static_assert(b.v[0] == 0x6627e8d5u, "constexpr Philox");
  CHECK(b.v[3] == 0x9b00dbd8u);
}

TEST_CASE("random: uniform01 is exact on the unit interval and join64 orders words") {
  CHECK(sr::uniform01(0) == 0.0);
  CHECK(sr::uniform01(~std::uint64_t{0}) == 1.0 - 0x1p-53);
  CHECK(sr::uniform01(std::uint64_t{1} << 63) == 0.5);
  CHECK(sr::join64(1u, 2u) == 0x0000000200000001ull);
  CHECK(sr::philox_key_from_seed(0x1122334455667788ull).v[0] == 0x55667788u);
  CHECK(sr::philox_key_from_seed(0x1122334455667788ull).v[1] == 0x11223344u);
}

TEST_CASE("random: every coordinate of a draw changes its random words") {
  using sr::detail::draw_block;
  using sr::detail::rng_stream;
  const sr::philox_block base = draw_block(7, 3, 2, rng_stream::abs_weighted, 1, 5);
  const auto differs = [&](const sr::philox_block& b) {
    return b.v[0] != base.v[0] || b.v[1] != base.v[1] || b.v[2] != base.v[2] || b.v[3] != base.v[3];
  };
  CHECK(differs(draw_block(8, 3, 2, rng_stream::abs_weighted, 1, 5)));           // seed
  CHECK(differs(draw_block(7, 4, 2, rng_stream::abs_weighted, 1, 5)));           // step
  CHECK(differs(draw_block(7, 3, 3, rng_stream::abs_weighted, 1, 5)));           // round
  CHECK(differs(draw_block(7, 3, 2, rng_stream::abs_fill, 1, 5)));               // stream
  CHECK(differs(draw_block(7, 3, 2, rng_stream::abs_weighted, 2, 5)));           // phase
  CHECK(differs(draw_block(7, 3, 2, rng_stream::abs_weighted, 1, 6)));           // draw block
  CHECK(differs(draw_block(7ull << 32, 3, 2, rng_stream::abs_weighted, 1, 5)));  // seed high
  // and is a pure function of them
  const sr::philox_block again = draw_block(7, 3, 2, rng_stream::abs_weighted, 1, 5);
  CHECK(!differs(again));
}

TEST_CASE("random: 64-bit words of Philox are close to uniform (bit balance)") {
  // 2^16 words: each bit is set with frequency 1/2 within 6 sigma (sigma = 2^-9).
  std::vector<int> ones(64, 0);
  const int N = 1 << 16;
  for (int i = 0; i < N / 2; ++i) {
    const sr::philox_block b =
        sr::philox4x32_10({{static_cast<std::uint32_t>(i), 0, 0, 0}}, {{1, 2}});
    for (int w = 0; w < 2; ++w) {
      const std::uint64_t x = sr::detail::block_word(b, w);
      for (int k = 0; k < 64; ++k)
        ones[k] += static_cast<int>((x >> k) & 1u);
    }
  }
  for (int k = 0; k < 64; ++k)
    CHECK(std::abs(ones[k] / double(N) - 0.5) < 6 * 0.5 / std::sqrt(N));
}
