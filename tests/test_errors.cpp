// The error contract of docs/errors.md: the preconditions no other test file exercises. Each
// check asserts the errc, the function named at the start of the message, the offending argument
// or value in it, and that the caller's outputs (filled with a sentinel) are untouched.
#include "support.hpp"

#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace sr = shuffle_r1;

namespace {

template <class T>
using cspan = sr::host_span<const T>;
template <class T>
using span = sr::host_span<T>;

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

/// `call` must throw shuffle_r1::error with `code` and a message that starts with
/// "<function>: " and contains `text`.
template <class F>
void expect_error(F&& call, sr::errc code, const char* function, const char* text) {
  try {
    call();
    FAIL_CHECK("no exception; expected ", function, ": ...", text);
  } catch (const sr::error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.code() == code);
    CHECK(what.rfind(std::string(function) + ": ", 0) == 0);
    CHECK(what.find(text) != std::string::npos);
  }
}

/// n copies of the sentinel -7.
template <class T>
std::vector<T> sentinel(std::size_t n) {
  return std::vector<T>(n, T(-7));
}

}  // namespace

TEST_CASE("errors: shuffle_r1::error is a std::runtime_error with a stable code") {
  static_assert(std::is_base_of_v<std::runtime_error, sr::error>);
  CHECK(static_cast<int>(sr::errc::invalid_argument) == 1);
  CHECK(static_cast<int>(sr::errc::size_mismatch) == 2);
  CHECK(static_cast<int>(sr::errc::non_finite) == 3);
  CHECK(static_cast<int>(sr::errc::invalid_layout) == 4);
  CHECK(static_cast<int>(sr::errc::singleton_group) == 5);
  CHECK(static_cast<int>(sr::errc::odd_group) == 6);
  CHECK(static_cast<int>(sr::errc::too_few_pairs) == 7);
  CHECK(static_cast<int>(sr::errc::out_of_range) == 8);
  CHECK(static_cast<int>(sr::errc::cuda) == 9);
  CHECK(std::string(sr::to_string(sr::errc::odd_group)) == "odd_group");
  CHECK(std::string(sr::to_string(sr::errc::out_of_range)) == "out_of_range");
  const std::vector<float> r = {1, 0};
  std::vector<float> a = sentinel<float>(2);
  sr::advantage_options o;
  o.ddof = 3;
  try {
    (void)sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{1, 2}, a, o);
    FAIL_CHECK("no exception");
  } catch (const std::runtime_error& e) {  // catchable as the standard base class
    CHECK(std::string(e.what()) == "normalize_advantages: options.ddof is 3, expected 0 or 1");
    const auto* typed = dynamic_cast<const sr::error*>(&e);
    REQUIRE(typed != nullptr);
    CHECK(typed->code() == sr::errc::invalid_argument);
  }
  CHECK(a == sentinel<float>(2));
}

TEST_CASE("errors: group layouts: uniform_groups whose row count overflows") {
  const std::vector<float> none;
  std::vector<float> out;
  const sr::uniform_groups huge{int64_max / 2, 4};
  expect_error([&] { (void)sr::normalize_advantages(sr::cpu, none, huge, out); },
               sr::errc::out_of_range, "normalize_advantages",
               "groups.num_groups * groups.group_size overflows");
  expect_error([&] { (void)sr::count_pairs(huge, 0); }, sr::errc::out_of_range, "count_pairs",
               "groups.num_groups * groups.group_size overflows");
}

TEST_CASE("errors: normalize_advantages: stats.std of the wrong size, rloo overflow") {
  const std::vector<float> r = {1, 0, 1, 0};
  std::vector<float> a = sentinel<float>(4);
  std::vector<double> sd = sentinel<double>(3);
  expect_error(
      [&] {
        (void)sr::normalize_advantages(sr::cpu, r, sr::uniform_groups{2, 2}, a, {},
                                       {span<double>(), span<double>(sd)});
      },
      sr::errc::size_mismatch, "normalize_advantages",
      "stats.std has 3 elements, expected 2 (one per group) or 0");
  CHECK(a == sentinel<float>(4));
  CHECK(sd == sentinel<double>(3));
  const std::vector<float> big = {1, 2, 3e38f, 4};
  sr::advantage_options o;
  o.kind = sr::estimator::rloo;
  expect_error(
      [&] {
        (void)sr::normalize_advantages(sr::cpu, big, sr::uniform_groups{2, 2}, a, o);
      },
      sr::errc::out_of_range, "normalize_advantages", "is too large for the rloo estimator");
  CHECK(a == sentinel<float>(4));
}

TEST_CASE("errors: count_pairs checks the layout and the PTS options") {
  expect_error(
      [&] {
        (void)sr::count_pairs(sr::uniform_groups{2, 2}, 5);
      },
      sr::errc::size_mismatch, "count_pairs", "groups describe 2 x 2 = 4 rows but the batch has 5");
  expect_error(
      [&] {
        (void)sr::count_pairs(sr::uniform_groups{1, 5}, 5);
      },
      sr::errc::odd_group, "count_pairs", "group 0 (first row 0) has 5 rows, an odd number");
  sr::pair_options o;
  o.keep_pairs = 3;
  expect_error(
      [&] {
        (void)sr::count_pairs(sr::uniform_groups{1, 4}, 4, o);
      },
      sr::errc::too_few_pairs, "count_pairs",
      "options.keep_pairs is 3 but group 0 has 4 rows, i.e. only 2 pairs");
  o = {};
  o.keep_ratio = 0.0;
  expect_error(
      [&] {
        (void)sr::count_pairs(sr::uniform_groups{1, 4}, 4, o);
      },
      sr::errc::invalid_argument, "count_pairs", "options.keep_ratio is 0");
  o = {};
  o.weight = static_cast<sr::pair_weight>(11);
  expect_error(
      [&] {
        (void)sr::count_pairs(sr::uniform_groups{1, 4}, 4, o);
      },
      sr::errc::invalid_argument, "count_pairs", "options.weight has no valid value (11)");
  // Empty: no groups, or only empty groups, keep nothing.
  CHECK(sr::count_pairs(sr::uniform_groups{0, 8}, 0) == 0);
  const std::vector<std::int64_t> offsets = {0, 0, 0};
  CHECK(sr::count_pairs(sr::ragged_groups{offsets}, 0) == 0);
}

TEST_CASE("errors: select_pairs: weights too small, infinite advantages") {
  std::vector<float> a = {1, 0, 1, 0};
  std::vector<std::int64_t> p = sentinel<std::int64_t>(4);
  std::vector<float> w = sentinel<float>(1);
  sr::pair_options o;
  o.keep_ratio = 1.0;  // K = 2
  expect_error(
      [&] {
        (void)sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 4}, p, w, o);
      },
      sr::errc::size_mismatch, "select_pairs", "weights has 1 entries, needs 2 (or 0 to skip)");
  std::vector<float> w2 = sentinel<float>(2);
  a[1] = std::numeric_limits<float>::infinity();
  expect_error(
      [&] {
        (void)sr::select_pairs(sr::cpu, a, sr::uniform_groups{1, 4}, p, w2, o);
      },
      sr::errc::non_finite, "select_pairs", "advantages[1] is +inf");
  CHECK(p == sentinel<std::int64_t>(4));
  CHECK(w == sentinel<float>(1));
  CHECK(w2 == sentinel<float>(2));
}

TEST_CASE("errors: shuffle_size and shuffle_pairs beyond the supported ranges") {
  expect_error([&] { (void)sr::shuffle_size(-1); }, sr::errc::invalid_argument, "shuffle_size",
               "num_pairs is -1, expected >= 0");
  expect_error([&] { (void)sr::shuffle_size((std::int64_t{1} << 31) + 1); }, sr::errc::out_of_range,
               "shuffle_size", "there are 2147483649 pairs; at most 2147483648 are supported");
  sr::shuffle_options o;
  o.rounds = 0xFFFFFFFFll;
  o.per_round = std::int64_t{1} << 31;
  expect_error([&] { (void)sr::shuffle_size(std::int64_t{1} << 31, o); }, sr::errc::out_of_range,
               "shuffle_size", "rounds * per_round overflows");
  o = {};
  o.rounds = 0;
  expect_error([&] { (void)sr::shuffle_size(4, o); }, sr::errc::invalid_argument, "shuffle_size",
               "options.rounds is 0");

  const std::vector<double> w = {1, 2, 3, 4};
  std::vector<std::int64_t> order = sentinel<std::int64_t>(64);
  const auto shuffle = [&](const std::vector<double>& weights, const sr::shuffle_options& opt) {
    return [&order, weights, opt] { (void)sr::shuffle_pairs(sr::cpu, weights, order, opt); };
  };
  o = {};
  o.rounds = std::int64_t{1} << 32;
  expect_error(shuffle(w, o), sr::errc::invalid_argument, "shuffle_pairs",
               "options.rounds is 4294967296, expected 1 <= rounds < 2^32");
  o = {};
  o.coeff = std::numeric_limits<double>::infinity();
  expect_error(shuffle(w, o), sr::errc::invalid_argument, "shuffle_pairs",
               "options.coeff is inf, expected a finite value >= 0");
  o = {};
  o.kind = sr::transform::softmax;
  o.t_max = std::numeric_limits<double>::quiet_NaN();
  expect_error(shuffle(w, o), sr::errc::invalid_argument, "shuffle_pairs",
               "must be finite with 0 < t_min <= t_max");
  o = {};
  o.rounds = 1;
  o.per_round = 2;
  const std::vector<double> inf = {1, std::numeric_limits<double>::infinity(), 3, 4};
  expect_error(shuffle(inf, o), sr::errc::non_finite, "shuffle_pairs", "weights[1] is +inf");
  CHECK(order == sentinel<std::int64_t>(64));
}

TEST_CASE("errors: pairs_to_rows checks its sizes and indices, an empty order writes nothing") {
  const std::vector<std::int64_t> pairs = {10, 11, 20, 21}, odd = {10, 11, 20};
  const std::vector<std::int64_t> order = {1, 0}, negative = {-1}, none;
  std::vector<std::int64_t> rows = sentinel<std::int64_t>(4), small = sentinel<std::int64_t>(3);
  expect_error([&] { sr::pairs_to_rows(sr::cpu, odd, order, rows); }, sr::errc::size_mismatch,
               "pairs_to_rows", "pairs has 3 entries, expected an even number (hi, lo per pair)");
  expect_error([&] { sr::pairs_to_rows(sr::cpu, pairs, order, small); }, sr::errc::size_mismatch,
               "pairs_to_rows", "rows has 3 entries, needs 4");
  expect_error([&] { sr::pairs_to_rows(sr::cpu, pairs, negative, rows); },
               sr::errc::invalid_argument, "pairs_to_rows", "order[0] = -1 is outside [0, 2)");
  sr::pairs_to_rows(sr::cpu, pairs, none, rows);
  CHECK(rows == sentinel<std::int64_t>(4));
  CHECK(small == sentinel<std::int64_t>(3));
}

TEST_CASE("errors: count_selected_rows and select_rows: options not covered elsewhere") {
  // A random rule drawing 2^32 items in one group (2^33 rows; uniform layouts need no memory).
  sr::selector_options o;
  o.kind = sr::selector::random;
  const std::int64_t n = std::int64_t{1} << 33;
  expect_error(
      [&] {
        (void)sr::count_selected_rows(sr::uniform_groups{1, n}, n, o);
      },
      sr::errc::out_of_range, "count_selected_rows",
      "group 0 would draw 4294967296 items; random rules support at most 2^32 per group");
  o.kind = sr::selector::resample;
  expect_error(
      [&] {
        (void)sr::count_selected_rows(sr::uniform_groups{1, n}, n, o);
      },
      sr::errc::out_of_range, "count_selected_rows", "group 0 would draw 4294967296 items");
  o = {};
  o.group_ratio = 1.5;
  expect_error(
      [&] {
        (void)sr::count_selected_rows(sr::uniform_groups{1, 4}, 4, o);
      },
      sr::errc::invalid_argument, "count_selected_rows", "options.group_ratio is 1.5");

  const std::vector<double> r = {1, 0, 0, 1, 1, 1, 0, 0};
  const std::vector<double> a = {1, -1, -1, 1, 1, 1, -1, -1};
  std::vector<std::int64_t> out = sentinel<std::int64_t>(8);
  const auto select = [&](const sr::selector_options& opt) {
    return [&, opt] { (void)sr::select_rows(sr::cpu, r, a, sr::uniform_groups{2, 4}, out, opt); };
  };
  o = {};
  o.kind = sr::selector::std_topk;
  o.std_mode = static_cast<sr::std_filter>(7);
  expect_error(select(o), sr::errc::invalid_argument, "select_rows",
               "options.std_mode has no valid value (7)");
  o = {};
  o.kind = sr::selector::resample;
  o.zero_mass = static_cast<sr::zero_mass_policy>(7);
  expect_error(select(o), sr::errc::invalid_argument, "select_rows",
               "options.zero_mass has no valid value (7)");
  o = {};
  o.kind = sr::selector::dapo;
  o.tolerance = std::numeric_limits<double>::quiet_NaN();
  expect_error(select(o), sr::errc::invalid_argument, "select_rows", "options.tolerance is nan");
  CHECK(out == sentinel<std::int64_t>(8));
}

TEST_CASE("errors: pair_weights: weight kind, odd list, non-finite advantages, empty list") {
  std::vector<float> a = {2.0f, -0.5f, 1.0f, -3.0f};
  const std::vector<std::int64_t> pairs = {0, 3, 1, 2}, odd = {0, 3, 1}, negative = {-1, 0};
  const std::vector<std::int64_t> none;
  std::vector<float> w = sentinel<float>(2);
  expect_error([&] { sr::pair_weights(sr::cpu, a, pairs, w, static_cast<sr::pair_weight>(9)); },
               sr::errc::invalid_argument, "pair_weights",
               "kind has no valid pair_weight value (9)");
  expect_error([&] { sr::pair_weights(sr::cpu, a, odd, w); }, sr::errc::size_mismatch,
               "pair_weights", "pairs has 3 entries, expected an even number (two rows per pair)");
  expect_error([&] { sr::pair_weights(sr::cpu, a, negative, w); }, sr::errc::invalid_argument,
               "pair_weights", "pairs[0] = -1 is outside [0, 4)");
  a[1] = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { sr::pair_weights(sr::cpu, a, pairs, w); }, sr::errc::non_finite,
               "pair_weights", "advantages[1] is NaN");
  a[1] = -0.5f;
  sr::pair_weights(sr::cpu, a, none, w);  // K = 0: nothing written
  CHECK(w == sentinel<float>(2));
}

TEST_CASE("errors: permute_pairs: num_pairs of 2^32, step negative or 2^32") {
  std::vector<std::int64_t> order = sentinel<std::int64_t>(4);
  expect_error([&] { sr::permute_pairs(sr::cpu, std::int64_t{1} << 32, order); },
               sr::errc::invalid_argument, "permute_pairs",
               "num_pairs is 4294967296, expected 0 <= num_pairs < 2^32");
  expect_error([&] { sr::permute_pairs(sr::cpu, 4, order, 0, -1); }, sr::errc::invalid_argument,
               "permute_pairs", "step is -1, expected 0 <= step < 2^32");
  expect_error([&] { sr::permute_pairs(sr::cpu, 4, order, 0, std::int64_t{1} << 32); },
               sr::errc::invalid_argument, "permute_pairs",
               "step is 4294967296, expected 0 <= step < 2^32");
  CHECK(order == sentinel<std::int64_t>(4));
}

TEST_CASE("errors: broadcast_padded and broadcast_packed: checks not covered elsewhere") {
  const std::vector<double> values = {1.0, 2.0};
  std::vector<double> out = sentinel<double>(6);
  expect_error(
      [&] {
        sr::broadcast_padded(sr::cpu, cspan<double>(values), cspan<bool>(), int64_max,
                             span<double>());
      },
      sr::errc::out_of_range, "broadcast_padded", "2 rows x seq_len 9223372036854775807 overflows");
  const std::vector<std::int64_t> cu = {0, 2, 5}, no_cu;
  const std::vector<std::uint8_t> mask4(4, 1);
  expect_error(
      [&] {
        sr::broadcast_packed(sr::cpu, cspan<double>(values), cspan<std::int64_t>(cu),
                             cspan<std::uint8_t>(mask4), span<double>(out.data(), 5));
      },
      sr::errc::size_mismatch, "broadcast_packed",
      "mask has 4 entries, expected 5 (or 0: every token is a response token)");
  expect_error(
      [&] {
        sr::broadcast_packed(sr::cpu, cspan<double>(values), cspan<std::int64_t>(no_cu),
                             cspan<bool>(), span<double>());
      },
      sr::errc::size_mismatch, "broadcast_packed",
      "cu_seqlens has 0 entries, expected 3 (one more than the sequences)");
  const std::vector<std::int64_t> rows = {0, 3};
  expect_error(
      [&] {
        sr::broadcast_packed(sr::cpu, cspan<double>(values), cspan<std::int64_t>(rows),
                             cspan<std::int64_t>(cu), cspan<bool>(), span<double>(out.data(), 5));
      },
      sr::errc::invalid_argument, "broadcast_packed", "rows[1] = 3 is outside [0, 2)");
  const std::vector<double> inf = {std::numeric_limits<double>::infinity(), 2.0};
  expect_error(
      [&] {
        sr::broadcast_packed(sr::cpu, cspan<double>(inf), cspan<std::int64_t>(cu), cspan<bool>(),
                             span<double>(out.data(), 5));
      },
      sr::errc::non_finite, "broadcast_packed", "values[0] is +inf");
  CHECK(out == sentinel<double>(6));
  // No sequence at all: cu_seqlens = {0}, nothing to write.
  const std::vector<std::int64_t> zero_cu = {0};
  sr::broadcast_packed(sr::cpu, cspan<double>(), cspan<std::int64_t>(zero_cu), cspan<bool>(),
                       span<double>());
}

TEST_CASE("errors: partition_offsets_size and partition_rows: checks not covered elsewhere") {
  sr::partition_options o;
  o.ranks = 0;
  expect_error([&] { (void)sr::partition_offsets_size(o); }, sr::errc::invalid_argument,
               "partition_offsets_size", "options.ranks is 0, expected >= 1");
  o.ranks = std::int64_t{1} << 16;
  o.minibatches = std::int64_t{1} << 16;
  expect_error([&] { (void)sr::partition_offsets_size(o); }, sr::errc::out_of_range,
               "partition_offsets_size", "options.ranks * options.minibatches is too large");

  const std::vector<std::int64_t> rows = {0, 1, 2, 3}, len = {5, 6, 7, 8};
  std::vector<std::int64_t> out = sentinel<std::int64_t>(4), offsets = sentinel<std::int64_t>(3);
  std::vector<std::int64_t> small = sentinel<std::int64_t>(3);
  // partition_rows names itself in the checks it shares with partition_offsets_size.
  expect_error([&] { (void)sr::partition_rows(sr::cpu, rows, len, out, offsets, o); },
               sr::errc::out_of_range, "partition_rows", "is too large");
  o = {};
  o.ranks = 2;
  expect_error([&] { (void)sr::partition_rows(sr::cpu, rows, len, small, offsets, o); },
               sr::errc::size_mismatch, "partition_rows", "out_rows has 3 entries, needs 4");
  const std::vector<std::int64_t> sum_overflows = {int64_max, 1, 0, 0};
  expect_error([&] { (void)sr::partition_rows(sr::cpu, rows, sum_overflows, out, offsets, o); },
               sr::errc::out_of_range, "partition_rows",
               "the lengths sum beyond 2^63 tokens (at lengths[1])");
  const std::vector<std::int64_t> repeated = {0, 0, 0, 0}, half = {std::int64_t{1} << 62, 0};
  expect_error([&] { (void)sr::partition_rows(sr::cpu, repeated, half, out, offsets, o); },
               sr::errc::out_of_range, "partition_rows",
               "the training rows hold more than 2^63 tokens");
  const std::vector<std::uint64_t> unsigned_len = {5, std::uint64_t{1} << 63, 7, 8};
  expect_error([&] { (void)sr::partition_rows(sr::cpu, rows, unsigned_len, out, offsets, o); },
               sr::errc::invalid_argument, "partition_rows",
               "lengths[1] = 9223372036854775808 is not a token count");
  CHECK(out == sentinel<std::int64_t>(4));
  CHECK(small == sentinel<std::int64_t>(3));
  CHECK(offsets == sentinel<std::int64_t>(3));
}

TEST_CASE("errors: diagnostics: checks and empty inputs not covered elsewhere") {
  const std::vector<float> adv = {0.0f, 1.0f, -1.0f, 0.5f};
  const std::vector<std::int64_t> outside = {4}, negative = {-1}, none;
  expect_error(
      [&] {
        (void)sr::collapse_ratio(sr::cpu, cspan<float>(adv),
                                 std::numeric_limits<double>::quiet_NaN());
      },
      sr::errc::invalid_argument, "collapse_ratio",
      "threshold is nan, expected a finite value >= 0");
  expect_error([&] { (void)sr::collapse_ratio(sr::cpu, cspan<float>(adv), -1.0); },
               sr::errc::invalid_argument, "collapse_ratio", "threshold is -1");
  CHECK(sr::collapse_ratio(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(none)) == 0.0);
  expect_error(
      [&] {
        (void)sr::nonzero_gradient_ratio(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(outside));
      },
      sr::errc::invalid_argument, "nonzero_gradient_ratio", "rows[0] = 4 is outside [0, 4)");
  expect_error(
      [&] {
        (void)sr::nonzero_gradient_ratio(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(negative));
      },
      sr::errc::invalid_argument, "nonzero_gradient_ratio", "rows[0] = -1 is outside [0, 4)");
  CHECK(sr::nonzero_gradient_ratio(sr::cpu, cspan<float>(adv), cspan<std::int64_t>(none)) == 0.0);

  std::vector<std::int64_t> histogram = sentinel<std::int64_t>(2);
  expect_error([&] { (void)sr::pair_multiplicity(sr::cpu, none, -1, histogram); },
               sr::errc::invalid_argument, "pair_multiplicity", "num_pairs is -1, expected >= 0");
  expect_error([&] { (void)sr::pair_multiplicity(sr::cpu, negative, 5, histogram); },
               sr::errc::invalid_argument, "pair_multiplicity", "order[0] = -1 is outside [0, 5)");
  CHECK(histogram == sentinel<std::int64_t>(2));
  CHECK(sr::pair_multiplicity(sr::cpu, none, 3, histogram) == 0);  // empty order: all unused
  CHECK(histogram == std::vector<std::int64_t>{3, 0});

  const std::vector<float> two = {0.0f, 1.0f};
  const std::vector<std::int64_t> sum_overflows = {int64_max, 1};
  expect_error(
      [&] {
        (void)sr::token_utilization(sr::cpu, cspan<float>(two), cspan<std::int64_t>(sum_overflows));
      },
      sr::errc::out_of_range, "token_utilization", "the lengths sum beyond 2^63 tokens");
  const std::vector<std::int64_t> half = {std::int64_t{1} << 62, 0}, twice = {0, 0};
  expect_error(
      [&] {
        (void)sr::token_utilization(sr::cpu, cspan<float>(two), cspan<std::int64_t>(half),
                                    cspan<std::int64_t>(twice));
      },
      sr::errc::out_of_range, "token_utilization", "the listed rows hold more than 2^63 tokens");

  sr::shuffle_options o;
  o.rounds = 0;
  expect_error(
      [&] {
        (void)sr::effective_sample_size(sr::cpu, std::vector<double>{1, 2}, o);
      },
      sr::errc::invalid_argument, "effective_sample_size", "options.rounds is 0");
  o = {};
  o.per_round = 3;
  expect_error(
      [&] {
        (void)sr::effective_sample_size(sr::cpu, std::vector<double>{1, 2}, o);
      },
      sr::errc::too_few_pairs, "effective_sample_size",
      "options.per_round is 3 but there are only 2 pairs");
  expect_error(
      [&] {
        (void)sr::effective_sample_size(
            sr::cpu, std::vector<double>{1, std::numeric_limits<double>::infinity()});
      },
      sr::errc::non_finite, "effective_sample_size", "weights[1] is +inf");
}

TEST_CASE("errors: validate_selection: unusable pair options, and an empty selection is valid") {
  const std::vector<float> a = {1, -1, 1, -1, 0};
  sr::selection_view<float> s;
  s.advantages = cspan<float>(a.data(), 4);
  sr::pair_options o;
  o.keep_ratio = 0.0;
  expect_error(
      [&] {
        (void)sr::validate_selection(sr::uniform_groups{1, 4}, o, s);
      },
      sr::errc::invalid_argument, "validate_selection", "options.keep_ratio is 0");
  s.advantages = cspan<float>(a);
  expect_error(
      [&] {
        (void)sr::validate_selection(sr::uniform_groups{1, 5}, sr::pair_options{}, s);
      },
      sr::errc::odd_group, "validate_selection", "has 5 rows, an odd number");
  const sr::selection_view<float> empty{};
  const sr::validation v =
      sr::validate_selection(sr::uniform_groups{0, 8}, sr::pair_options{}, empty);
  CHECK(v.ok);
  CHECK(v.message.empty());
}

TEST_CASE("errors: synthetic_rewards: negative counts, wrong size, empty batch") {
  std::vector<float> r = sentinel<float>(7);
  expect_error([&] { sr::synthetic_rewards(-1, 4, 0, span<float>(r)); }, sr::errc::invalid_argument,
               "synthetic_rewards", "prompts = -1 and rollouts = 4 must be >= 0");
  expect_error([&] { sr::synthetic_rewards(2, 4, 0, span<float>(r)); }, sr::errc::size_mismatch,
               "synthetic_rewards", "rewards has 7 elements, expected 8");
  CHECK(r == sentinel<float>(7));
  sr::synthetic_rewards(0, 4, 0, span<float>());  // nothing to write
  sr::synthetic_rewards(3, 0, 0, span<float>());
}

TEST_CASE("errors: plan_pipeline names itself and checks the layout and the options") {
  expect_error(
      [&] {
        (void)sr::plan_pipeline(sr::uniform_groups{2, 4}, 9);
      },
      sr::errc::size_mismatch, "plan_pipeline",
      "groups describe 2 x 4 = 8 rows but the batch has 9");
  expect_error(
      [&] {
        (void)sr::plan_pipeline(sr::uniform_groups{1, 5}, 5);
      },
      sr::errc::odd_group, "plan_pipeline", "has 5 rows, an odd number");
  sr::pipeline_config c;
  c.pairs.keep_ratio = 2.0;
  expect_error(
      [&] {
        (void)sr::plan_pipeline(sr::uniform_groups{1, 4}, 4, c);
      },
      sr::errc::invalid_argument, "plan_pipeline", "options.keep_ratio is 2");
  c = {};
  c.shuffle.rounds = 0;
  expect_error(
      [&] {
        (void)sr::plan_pipeline(sr::uniform_groups{1, 4}, 4, c);
      },
      sr::errc::invalid_argument, "plan_pipeline", "options.rounds is 0");
  c = {};
  c.shuffle.per_round = 2;  // K = 1
  expect_error(
      [&] {
        (void)sr::plan_pipeline(sr::uniform_groups{1, 4}, 4, c);
      },
      sr::errc::too_few_pairs, "plan_pipeline",
      "options.per_round is 2 but there are only 1 pairs");
  const sr::pipeline_sizes empty = sr::plan_pipeline(sr::uniform_groups{0, 8}, 0);
  CHECK(empty.rows == 0);
  CHECK(empty.groups == 0);
  CHECK(empty.pairs == 0);
  CHECK(empty.order == 0);
  CHECK(empty.training_rows == 0);
}

TEST_CASE("errors: run_pipeline: every stage's checks and the output sizes, nothing written") {
  // Two groups of 8 with mixed rewards: K = 4 pairs, S = 2 rounds of T = 2.
  const std::vector<float> good = {1, 0, 0, 1, 0.5f, 0, 1, 0, 0, 1, 1, 0, 0.25f, 1, 0, 0};
  sr::pipeline_config config;
  config.shuffle.rounds = 2;
  const sr::pipeline_sizes n = sr::plan_pipeline(sr::uniform_groups{2, 8}, 16, config);
  REQUIRE(n.pairs == 4);
  REQUIRE(n.order == 4);
  std::vector<float> adv = sentinel<float>(16), weights = sentinel<float>(4);
  std::vector<std::int64_t> pairs = sentinel<std::int64_t>(8), order = sentinel<std::int64_t>(4),
                            rows = sentinel<std::int64_t>(8), tiny = sentinel<std::int64_t>(1);
  std::vector<float> tiny_weights = sentinel<float>(1), short_adv = sentinel<float>(15);
  std::vector<double> mean = sentinel<double>(2), sd = sentinel<double>(2),
                      bad_mean = sentinel<double>(3);
  const auto outputs = [&] {
    sr::pipeline_outputs<float> out;
    out.advantages = adv;
    out.pairs = pairs;
    out.pair_weights = weights;
    out.order = order;
    out.rows = rows;
    out.group_mean = mean;
    out.group_std = sd;
    return out;
  };
  sr::pipeline_workspace<float> ws;
  const auto run = [&](const std::vector<float>& r, const auto& groups,
                       const sr::pipeline_config& c, const sr::pipeline_outputs<float>& out) {
    return [&ws, r, groups, c, out] { (void)sr::run_pipeline(sr::cpu, r, groups, c, ws, out); };
  };
  const sr::uniform_groups uniform{2, 8};

  std::vector<float> nan = good;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  expect_error(run(nan, uniform, config, outputs()), sr::errc::non_finite, "run_pipeline",
               "rewards[3] is NaN");
  expect_error(run(good, sr::uniform_groups{2, 4}, config, outputs()), sr::errc::size_mismatch,
               "run_pipeline", "groups describe 2 x 4 = 8 rows but the batch has 16");
  const std::vector<std::int64_t> singleton = {0, 1, 16}, odd = {0, 3, 16};
  expect_error(run(good, sr::ragged_groups{singleton}, config, outputs()),
               sr::errc::singleton_group, "run_pipeline", "group 0 (row 0) has a single row");
  expect_error(run(good, sr::ragged_groups{odd}, config, outputs()), sr::errc::odd_group,
               "run_pipeline", "group 0 (first row 0) has 3 rows, an odd number");
  sr::pipeline_config c = config;
  c.advantage.ddof = 2;
  expect_error(run(good, uniform, c, outputs()), sr::errc::invalid_argument, "run_pipeline",
               "options.ddof is 2");
  c = config;
  c.advantage.kind = sr::estimator::mean_only;
  std::vector<float> huge = good;
  huge[5] = 3e38f;
  expect_error(run(huge, uniform, c, outputs()), sr::errc::out_of_range, "run_pipeline",
               "is too large for the mean_only estimator");
  c = config;
  c.advantage.kind = sr::estimator::batch_std;  // the check after the batch's sigma
  c.advantage.singleton = sr::singleton_policy::verl;
  c.pairs.odd = sr::odd_policy::drop_median;
  const std::vector<std::int64_t> lone = {0, 15, 16};  // 15 rows, then row 15 alone
  sr::pipeline_outputs<float> few;  // K = 7: only the outputs that do not depend on it
  few.advantages = adv;
  few.group_mean = mean;
  few.group_std = sd;
  expect_error(run(std::vector<float>(16, 1e33f), sr::ragged_groups{lone}, c, few),
               sr::errc::out_of_range, "run_pipeline",
               "the only row of group 1, is too large for the batch_std estimator: its "
               "advantage rewards[15] / (sigma_batch + eps) overflows float (sigma_batch = 0");
  c = config;
  c.pairs.keep_pairs = 5;
  expect_error(run(good, uniform, c, outputs()), sr::errc::too_few_pairs, "run_pipeline",
               "options.keep_pairs is 5 but group 0 has 8 rows");
  c = config;
  c.shuffle.rounds = 0;
  expect_error(run(good, uniform, c, outputs()), sr::errc::invalid_argument, "run_pipeline",
               "options.rounds is 0");

  sr::pipeline_outputs<float> out = outputs();
  out.advantages = short_adv;
  expect_error(run(good, uniform, config, out), sr::errc::size_mismatch, "run_pipeline",
               "out.advantages has 15 entries, expected 16 (or 0 to skip)");
  out = outputs();
  out.pairs = tiny;
  expect_error(run(good, uniform, config, out), sr::errc::size_mismatch, "run_pipeline",
               "out.pairs has 1 entries, needs 8 (or 0 to skip)");
  out = outputs();
  out.pair_weights = tiny_weights;
  expect_error(run(good, uniform, config, out), sr::errc::size_mismatch, "run_pipeline",
               "out.pair_weights has 1 entries, needs 4 (or 0 to skip)");
  out = outputs();
  out.rows = tiny;
  expect_error(run(good, uniform, config, out), sr::errc::size_mismatch, "run_pipeline",
               "out.rows has 1 entries, needs 8 (or 0 to skip)");
  out = outputs();
  out.group_mean = bad_mean;
  expect_error(run(good, uniform, config, out), sr::errc::size_mismatch, "run_pipeline",
               "stats.mean has 3 elements, expected 2 (one per group) or 0");

  CHECK(adv == sentinel<float>(16));
  CHECK(weights == sentinel<float>(4));
  CHECK(pairs == sentinel<std::int64_t>(8));
  CHECK(order == sentinel<std::int64_t>(4));
  CHECK(rows == sentinel<std::int64_t>(8));
  CHECK(tiny == sentinel<std::int64_t>(1));
  CHECK(tiny_weights == sentinel<float>(1));
  CHECK(short_adv == sentinel<float>(15));
  CHECK(mean == sentinel<double>(2));
  CHECK(sd == sentinel<double>(2));
  CHECK(bad_mean == sentinel<double>(3));
  // The same call with correct outputs succeeds (the failures above were the checks).
  const sr::pipeline_summary s = sr::run_pipeline(sr::cpu, good, uniform, config, ws, outputs());
  CHECK(s.pairs == 4);
  CHECK(s.shuffle.size == 4);
}
