// Group layouts: ids -> layout, validation of every layout.
#include "support.hpp"

namespace sr = shuffle_r1;

TEST_CASE("groups: ids are grouped by first appearance, rows in batch order") {
  const std::vector<int> ids = {7, 3, 7, 9, 3, 3, 9, 7};
  std::vector<std::int64_t> offsets(ids.size() + 1, -1), rows(ids.size(), -1);
  const sr::indexed_groups g = sr::groups_from_ids(sr::cpu, ids, offsets, rows);
  REQUIRE(sr::num_groups(g) == 3);
  CHECK(std::vector<std::int64_t>(g.offsets.begin(), g.offsets.end()) ==
        std::vector<std::int64_t>{0, 3, 6, 8});
  CHECK(std::vector<std::int64_t>(g.rows.begin(), g.rows.end()) ==
        std::vector<std::int64_t>{0, 2, 7, 1, 4, 5, 3, 6});
  CHECK(offsets[4] == -1);  // only G + 1 offsets written
}

TEST_CASE("groups: id types and edge cases") {
  SUBCASE("adjacent runs give the identity row order") {
    const std::vector<std::int64_t> ids = {5, 5, 2, 2, 2, 9};
    std::vector<std::int64_t> o(7), r(6);
    const auto g = sr::groups_from_ids(sr::cpu, ids, o, r);
    CHECK(sr::num_groups(g) == 3);
    for (std::int64_t i = 0; i < 6; ++i)
      CHECK(r[i] == i);
  }
  SUBCASE("unsigned 64-bit ids above 2^63 and negative ids") {
    const std::vector<std::uint64_t> u = {~0ull, 1ull, ~0ull};
    std::vector<std::int64_t> o(4), r(3);
    CHECK(sr::num_groups(sr::groups_from_ids(sr::cpu, u, o, r)) == 2);
    CHECK(r[0] == 0);
    CHECK(r[1] == 2);
    const std::vector<short> s = {-1, 1, -1, 1};
    std::vector<std::int64_t> o2(5), r2(4);
    CHECK(sr::num_groups(sr::groups_from_ids(sr::cpu, s, o2, r2)) == 2);
  }
  SUBCASE("empty ids give no groups") {
    const std::vector<int> ids;
    std::vector<std::int64_t> o(1, -1), r;
    const auto g = sr::groups_from_ids(sr::cpu, ids, o, r);
    CHECK(sr::num_groups(g) == 0);
    CHECK(o[0] == 0);
  }
  SUBCASE("all ids distinct, and one id for all") {
    std::vector<int> ids(50);
    std::iota(ids.rbegin(), ids.rend(), 0);
    std::vector<std::int64_t> o(51), r(50);
    CHECK(sr::num_groups(sr::groups_from_ids(sr::cpu, ids, o, r)) == 50);
    std::fill(ids.begin(), ids.end(), 4);
    CHECK(sr::num_groups(sr::groups_from_ids(sr::cpu, ids, o, r)) == 1);
  }
}

TEST_CASE("groups: too small outputs are refused and nothing is written") {
  const std::vector<int> ids = {1, 2, 1};
  std::vector<std::int64_t> o(3, -7), r(3, -7);
  CHECK_THROWS_WITH_AS(sr::groups_from_ids(sr::cpu, ids, o, r),
                       doctest::Contains("offsets has 3 entries"), sr::error);
  std::vector<std::int64_t> o4(4, -7), r2(2, -7);
  CHECK_THROWS_WITH_AS(sr::groups_from_ids(sr::cpu, ids, o4, r2),
                       doctest::Contains("rows has 2 entries"), sr::error);
  for (auto x : o)
    CHECK(x == -7);
  for (auto x : o4)
    CHECK(x == -7);
  for (auto x : r2)
    CHECK(x == -7);
}

TEST_CASE("groups: ids resolve to the same groups as the helper, through any algorithm") {
  std::mt19937_64 rng(11);
  std::vector<int> ids(200);
  for (auto& x : ids)
    x = static_cast<int>(rng() % 13);
  const std::vector<double> r = test::random_rewards<double>(rng, 200, test::reward_kind::normal);
  std::vector<double> a1(200), a2(200);
  sr::advantage_options opt;
  opt.singleton = sr::singleton_policy::zero;
  sr::normalize_advantages(sr::cpu, r, sr::id_groups<int>{ids}, a1, opt);
  std::vector<std::int64_t> o(201), rows(200);
  const auto g = sr::groups_from_ids(sr::cpu, ids, o, rows);
  sr::normalize_advantages(sr::cpu, r, g, a2, opt);
  CHECK(a1 == a2);
}

TEST_CASE("groups: invalid layouts are rejected with the offending entry named") {
  const std::vector<float> r(6, 1.0f);
  std::vector<float> a(6, -9.0f);
  const auto bad = [&](const auto& layout, const char* text) {
    CHECK_THROWS_WITH_AS(sr::normalize_advantages(sr::cpu, r, layout, a), doctest::Contains(text),
                         sr::error);
    for (float x : a)
      CHECK(x == -9.0f);
  };
  bad(sr::uniform_groups{2, 2}, "2 x 2 = 4 rows but the batch has 6");
  bad(sr::uniform_groups{-1, 2}, "num_groups is -1");
  bad(sr::uniform_groups{3, -2}, "group_size is -2");
  // Empty uniform groups: rejected for any G > 0, including one no loop over G could finish.
  const std::vector<float> none;
  std::vector<float> no_out;
  for (const std::int64_t G : {std::int64_t{1}, std::int64_t{16}, std::int64_t{1} << 62}) {
    const std::string text = "group_size is 0 but groups.num_groups is " + std::to_string(G);
    CHECK_THROWS_WITH_AS(sr::normalize_advantages(sr::cpu, none, sr::uniform_groups{G, 0}, no_out),
                         doctest::Contains(text.c_str()), sr::error);
    CHECK_THROWS_WITH_AS(sr::count_pairs(sr::uniform_groups{G, 0}, 0),
                         doctest::Contains("group_size is 0"), sr::error);
  }
  const std::vector<std::int64_t> o1 = {1, 3, 6}, o2 = {0, 4, 3, 6}, o3 = {0, 3, 5}, o4;
  bad(sr::ragged_groups{o1}, "offsets[0] is 1, expected 0");
  bad(sr::ragged_groups{o2}, "offsets[2] = 3 is less than groups.offsets[1] = 4");
  bad(sr::ragged_groups{o3}, "offsets[2] is 5, expected the number of rows 6");
  bad(sr::ragged_groups{o4}, "offsets is empty");
  const std::vector<std::int64_t> off = {0, 3, 6};
  const std::vector<std::int64_t> dup = {0, 1, 1, 3, 4, 5}, range = {0, 1, 2, 3, 4, 6},
                                  order = {0, 2, 1, 3, 4, 5}, short_rows = {0, 1, 2};
  bad(sr::indexed_groups{off, dup}, "is not greater than the previous row");
  bad(sr::indexed_groups{off, range}, "rows[5] = 6 is outside [0, 6)");
  bad(sr::indexed_groups{off, order}, "rows[2] = 1 is not greater");
  bad(sr::indexed_groups{off, short_rows}, "rows has 3 entries, expected 6");
  const std::vector<std::int64_t> across = {0, 1, 2, 0, 4, 5};
  bad(sr::indexed_groups{off, across}, "rows[3] = 0 appears in more than one group");
  const std::vector<int> ids = {1, 1, 2};
  bad(sr::id_groups<int>{ids}, "ids has 3 entries, expected 6");
}

TEST_CASE("groups: empty groups are allowed and contribute nothing") {
  const std::vector<float> r = {1, 0, 0, 1};
  std::vector<float> a(4);
  const std::vector<std::int64_t> off = {0, 0, 2, 2, 4, 4};
  const sr::advantage_summary s = sr::normalize_advantages(sr::cpu, r, sr::ragged_groups{off}, a);
  CHECK(s.groups == 5);
  CHECK(s.empty_groups == 3);
  CHECK(a[0] > 0);
  CHECK(a[1] < 0);
  CHECK(sr::count_pairs(sr::ragged_groups{off}, 4) == 0);  // groups of 2 keep floor(0.5) pairs
  sr::pair_options all;
  all.keep_ratio = 1.0;
  CHECK(sr::count_pairs(sr::ragged_groups{off}, 4, all) == 2);
}
