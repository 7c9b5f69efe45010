/// @file groups.hpp
/// @brief Group layouts: which rows of a batch belong to which prompt.
///
/// Three layouts, all views (no ownership):
/// - `uniform_groups{G, n}`: group g is rows [g*n, (g+1)*n) (TRL, OpenRLHF);
/// - `ragged_groups{offsets}`: CSR offsets o[0..G], group g is rows [o[g], o[g+1]);
/// - `indexed_groups{offsets, rows}`: group g is rows rows[o[g]..o[g+1]), which need not be
///   adjacent in the batch (verl/EasyR1 `uid`). `groups_from_ids` builds one from per-row ids.
///
/// Every algorithm takes any of the three. Groups are processed in layout order; rows inside a
/// group in batch order (for `indexed_groups`, rows of a group must be strictly increasing).
/// Empty groups are allowed and contribute nothing.
#pragma once

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/execution.hpp>
#include <shuffle_r1/span.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace shuffle_r1 {

/// G groups of n consecutive rows each: group g is rows [g*n, (g+1)*n). n = 0 is accepted only
/// with G = 0 (the empty batch): G empty groups would make every algorithm spend O(G) on a batch
/// without rows, for a G that nothing bounds; ragged_groups describes empty groups.
struct uniform_groups {
  std::int64_t num_groups = 0;  ///< G >= 0
  std::int64_t group_size = 0;  ///< n >= 1, or n = 0 with G = 0
};

/// CSR layout: group g is rows [offsets[g], offsets[g+1]). offsets has G + 1 entries,
/// offsets[0] == 0, non-decreasing, offsets[G] == number of rows.
template <memory_space Space>
struct basic_ragged_groups {
  basic_span<const std::int64_t, Space> offsets;
};

/// Indexed layout: group g is rows rows[offsets[g]], ..., rows[offsets[g+1] - 1], strictly
/// increasing inside a group; `rows` is a permutation of [0, B).
template <memory_space Space>
struct basic_indexed_groups {
  basic_span<const std::int64_t, Space> offsets;
  basic_span<const std::int64_t, Space> rows;
};

/// Id layout: one integer id per row; groups are ordered by first appearance of their id and
/// rows inside a group keep batch order (verl/EasyR1 `uid`). Algorithms resolve it into an
/// indexed layout internally (O(B + R log R), see groups_from_ids); call groups_from_ids once
/// yourself to reuse the layout across calls.
template <class I, memory_space Space = memory_space::host>
struct id_groups {
  static_assert(std::is_integral_v<I>, "id_groups: ids must be integers");
  basic_span<const I, Space> ids;
};

using ragged_groups = basic_ragged_groups<memory_space::host>;
using indexed_groups = basic_indexed_groups<memory_space::host>;
using device_ragged_groups = basic_ragged_groups<memory_space::device>;
using device_indexed_groups = basic_indexed_groups<memory_space::device>;
template <class I>
using device_id_groups = id_groups<I, memory_space::device>;

namespace detail {
template <class L>
struct is_host_layout : std::false_type {};
template <>
struct is_host_layout<uniform_groups> : std::true_type {};
template <>
struct is_host_layout<ragged_groups> : std::true_type {};
template <>
struct is_host_layout<indexed_groups> : std::true_type {};
template <class I>
struct is_host_layout<id_groups<I, memory_space::host>> : std::true_type {};
}  // namespace detail

/// True for the layout types whose memory (if any) is on the host.
template <class L>
inline constexpr bool is_host_layout_v = detail::is_host_layout<std::remove_cv_t<L>>::value;

/// Number of groups of a layout. @par Complexity O(1). Never throws.
inline std::int64_t num_groups(const uniform_groups& g) noexcept {
  return g.num_groups;
}
/// @copydoc num_groups(const uniform_groups&)
template <memory_space S>
std::int64_t num_groups(const basic_ragged_groups<S>& g) noexcept {
  return g.offsets.empty() ? 0 : static_cast<std::int64_t>(g.offsets.size()) - 1;
}
/// @copydoc num_groups(const uniform_groups&)
template <memory_space S>
std::int64_t num_groups(const basic_indexed_groups<S>& g) noexcept {
  return g.offsets.empty() ? 0 : static_cast<std::int64_t>(g.offsets.size()) - 1;
}

namespace detail {

/// Internal host view of any layout: offsets (or uniform size) and optional row indices.
struct host_layout {
  std::int64_t groups = 0;
  std::int64_t uniform = -1;              // group size when uniform, else -1
  const std::int64_t* offsets = nullptr;  // G + 1 entries when not uniform
  const std::int64_t* rows = nullptr;     // B entries when indexed, else nullptr

  std::int64_t begin(std::int64_t g) const noexcept {
    return uniform >= 0 ? g * uniform : offsets[g];
  }
  std::int64_t size(std::int64_t g) const noexcept {
    return uniform >= 0 ? uniform : offsets[g + 1] - offsets[g];
  }
  /// Batch row of position k (0-based over the concatenated groups).
  std::int64_t row(std::int64_t k) const noexcept { return rows ? rows[k] : k; }
  /// Rows of the largest group (0 without groups). O(1) for uniform layouts, else O(G).
  std::int64_t largest() const noexcept {
    if (uniform >= 0) return groups > 0 ? uniform : 0;
    std::int64_t n = 0;
    for (std::int64_t g = 0; g < groups; ++g)
      n = std::max(n, size(g));
    return n;
  }
};

inline host_layout to_host_layout(const uniform_groups& g) noexcept {
  host_layout l;
  l.groups = g.num_groups;
  l.uniform = g.group_size;
  return l;
}
inline host_layout to_host_layout(const ragged_groups& g) noexcept {
  host_layout l;
  l.groups = num_groups(g);
  l.offsets = g.offsets.data();
  return l;
}
inline host_layout to_host_layout(const indexed_groups& g) noexcept {
  host_layout l;
  l.groups = num_groups(g);
  l.offsets = g.offsets.data();
  l.rows = g.rows.data();
  return l;
}

/// Reusable scratch of build_groups_from_ids: kept by workspaces so that repeated calls with
/// the same sizes do not allocate. Ids are compared as their 64-bit two's complement pattern,
/// which preserves equality for every integer type.
struct ids_scratch {
  std::vector<std::pair<std::uint64_t, std::int64_t>> runs;  // (id, first row) of each run
  std::vector<std::int64_t> order, group_of_run, leader, cursor;

  std::size_t bytes() const noexcept {
    return runs.capacity() * sizeof(runs[0]) +
           (order.capacity() + group_of_run.capacity() + leader.capacity() + cursor.capacity()) *
               sizeof(std::int64_t);
  }
};

/// Scratch of layout validation and id resolution, reusable across calls.
struct layout_scratch {
  std::vector<std::uint64_t> seen;          // indexed layout: rows seen so far
  std::vector<std::int64_t> offsets, rows;  // id_groups resolved
  ids_scratch ids;

  std::size_t bytes() const noexcept {
    return seen.capacity() * sizeof(std::uint64_t) +
           (offsets.capacity() + rows.capacity()) * sizeof(std::int64_t) + ids.bytes();
  }
};

inline void validate_offsets(const char* fn, host_span<const std::int64_t> offsets,
                             std::int64_t rows) {
  if (offsets.empty())
    fail(errc::invalid_layout, fn, "groups.offsets is empty; it needs G + 1 >= 1 entries");
  if (offsets[0] != 0)
    fail(errc::invalid_layout, fn, "groups.offsets[0] is ", offsets[0], ", expected 0");
  for (std::size_t g = 1; g < offsets.size(); ++g)
    if (offsets[g] < offsets[g - 1])
      fail(errc::invalid_layout, fn, "groups.offsets[", g, "] = ", offsets[g],
           " is less than groups.offsets[", g - 1, "] = ", offsets[g - 1]);
  if (offsets[offsets.size() - 1] != rows)
    fail(errc::invalid_layout, fn, "groups.offsets[", offsets.size() - 1, "] is ",
         offsets[offsets.size() - 1], ", expected the number of rows ", rows);
}

/// Checks a layout against a batch of `rows` rows. The scratch holds the bitmap of the indexed
/// check and the resolved layout of id_groups.
/// @throws error(errc::invalid_layout) naming the offending entry.
inline host_layout validate_layout(const char* fn, const uniform_groups& g, std::int64_t rows,
                                   layout_scratch& /*scratch*/) {
  if (g.num_groups < 0)
    fail(errc::invalid_layout, fn, "groups.num_groups is ", g.num_groups, ", expected >= 0");
  if (g.group_size < 0)
    fail(errc::invalid_layout, fn, "groups.group_size is ", g.group_size, ", expected >= 0");
  if (g.group_size == 0 && g.num_groups > 0)
    fail(errc::invalid_layout, fn, "groups.group_size is 0 but groups.num_groups is ", g.num_groups,
         "; a uniform layout needs group_size >= 1 unless num_groups is 0 (describe "
         "empty groups with ragged_groups)");
  if (g.group_size > 0 && g.num_groups > std::numeric_limits<std::int64_t>::max() / g.group_size)
    fail(errc::out_of_range, fn, "groups.num_groups * groups.group_size overflows");
  if (g.num_groups * g.group_size != rows)
    fail(errc::size_mismatch, fn, "groups describe ", g.num_groups, " x ", g.group_size, " = ",
         g.num_groups * g.group_size, " rows but the batch has ", rows);
  return to_host_layout(g);
}
inline host_layout validate_layout(const char* fn, const ragged_groups& g, std::int64_t rows,
                                   layout_scratch& /*scratch*/) {
  validate_offsets(fn, g.offsets, rows);
  return to_host_layout(g);
}
inline host_layout validate_layout(const char* fn, const indexed_groups& g, std::int64_t rows,
                                   layout_scratch& scratch) {
  std::vector<std::uint64_t>& seen = scratch.seen;
  validate_offsets(fn, g.offsets, rows);
  if (static_cast<std::int64_t>(g.rows.size()) != rows)
    fail(errc::size_mismatch, fn, "groups.rows has ", g.rows.size(), " entries, expected ", rows);
  seen.assign(static_cast<std::size_t>((rows + 63) / 64), 0);
  const std::int64_t G = num_groups(g);
  for (std::int64_t grp = 0; grp < G; ++grp) {
    for (std::int64_t k = g.offsets[grp]; k < g.offsets[grp + 1]; ++k) {
      const std::int64_t r = g.rows[k];
      if (r < 0 || r >= rows)
        fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", r, " is outside [0, ", rows, ")");
      if (k > g.offsets[grp] && r <= g.rows[k - 1])
        fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", r,
             " is not greater than the previous row of group ", grp,
             " (rows of a group must be strictly increasing)");
      std::uint64_t& word = seen[static_cast<std::size_t>(r / 64)];
      const std::uint64_t bit = std::uint64_t{1} << (r % 64);
      if (word & bit)
        fail(errc::invalid_layout, fn, "groups.rows[", k, "] = ", r,
             " appears in more than one group");
      word |= bit;
    }
  }
  return to_host_layout(g);
}

/// Builds the indexed layout of per-row ids into caller memory (sizes already checked).
/// Returns G.
template <class I>
std::int64_t build_groups_from_ids(const I* ids, std::int64_t n, std::int64_t* offsets,
                                   std::int64_t* rows, ids_scratch& s) {
  // 1. Runs of equal consecutive ids, in batch order. Adjacent layouts (verl repeats each
  //    prompt's responses next to each other) have one run per group.
  s.runs.clear();
  for (std::int64_t r = 0; r < n; ++r)
    if (r == 0 || !(ids[r] == ids[r - 1]))
      s.runs.emplace_back(static_cast<std::uint64_t>(ids[r]), r);
  const auto R = static_cast<std::int64_t>(s.runs.size());
  const auto run_end = [&](std::int64_t i) { return i + 1 < R ? s.runs[i + 1].second : n; };
  // 2. Sort runs by (id, first row): runs of one id become adjacent, in batch order.
  s.order.resize(static_cast<std::size_t>(R));
  for (std::int64_t i = 0; i < R; ++i)
    s.order[i] = i;
  std::sort(s.order.begin(), s.order.end(), [&](std::int64_t a, std::int64_t b) {
    if (s.runs[a].first < s.runs[b].first) return true;
    if (s.runs[b].first < s.runs[a].first) return false;
    return a < b;
  });
  // 3. The leader of a run is the first run (in batch order) with the same id; groups are
  //    numbered in the batch order of their leaders, i.e. by first appearance.
  s.leader.resize(static_cast<std::size_t>(R));
  for (std::int64_t i = 0; i < R; ++i) {
    const bool new_id = i == 0 || s.runs[s.order[i - 1]].first < s.runs[s.order[i]].first;
    s.leader[s.order[i]] = new_id ? s.order[i] : s.leader[s.order[i - 1]];
  }
  s.group_of_run.resize(static_cast<std::size_t>(R));
  std::int64_t G = 0;
  for (std::int64_t i = 0; i < R; ++i)
    s.group_of_run[i] = s.leader[i] == i ? G++ : s.group_of_run[s.leader[i]];
  // 4. Counting placement: sizes, offsets, then rows in batch order.
  for (std::int64_t g = 0; g <= G; ++g)
    offsets[g] = 0;
  for (std::int64_t i = 0; i < R; ++i)
    offsets[s.group_of_run[i] + 1] += run_end(i) - s.runs[i].second;
  for (std::int64_t g = 0; g < G; ++g)
    offsets[g + 1] += offsets[g];
  s.cursor.assign(offsets, offsets + G);
  for (std::int64_t i = 0; i < R; ++i) {
    std::int64_t& c = s.cursor[s.group_of_run[i]];
    for (std::int64_t r = s.runs[i].second; r < run_end(i); ++r)
      rows[c++] = r;
  }
  return G;
}

/// Resolves id_groups into scratch.offsets / scratch.rows.
template <class I>
host_layout validate_layout(const char* fn, const id_groups<I>& g, std::int64_t rows,
                            layout_scratch& scratch) {
  if (static_cast<std::int64_t>(g.ids.size()) != rows)
    fail(errc::size_mismatch, fn, "groups.ids has ", g.ids.size(), " entries, expected ", rows,
         " (one per row)");
  scratch.offsets.resize(static_cast<std::size_t>(rows + 1));
  scratch.rows.resize(static_cast<std::size_t>(rows));
  host_layout l;
  l.groups = build_groups_from_ids(g.ids.data(), rows, scratch.offsets.data(), scratch.rows.data(),
                                   scratch.ids);
  l.offsets = scratch.offsets.data();
  l.rows = scratch.rows.data();
  return l;
}

}  // namespace detail

/// Builds the indexed layout of a batch whose rows carry group ids (verl/EasyR1 `uid`).
///
/// Groups are numbered by the **first appearance** of their id; rows inside a group keep batch
/// order. Ids are compared with `<` and `==` only, so any integer type works.
///
/// @param ids one id per row (B entries)
/// @param offsets output, at least B + 1 entries (G + 1 are written)
/// @param rows output, at least B entries (B are written)
/// @return the layout, viewing the first G + 1 offsets and the first B rows
/// @pre `offsets` and `rows` do not overlap `ids`.
/// @throws error(errc::size_mismatch) when an output is too small. Nothing is written then.
/// @par Empty input B = 0 gives G = 0 and offsets = {0}.
/// @par Determinism A pure function of the ids.
/// @par Complexity O(B + R log R) time and O(R) extra memory, R = number of runs of equal
/// consecutive ids (R = G when each group's rows are adjacent).
template <class I>
indexed_groups groups_from_ids(cpu_policy, host_span<const I> ids, host_span<std::int64_t> offsets,
                               host_span<std::int64_t> rows) {
  static_assert(std::is_integral_v<I>, "groups_from_ids: ids must be integers");
  constexpr const char* fn = "groups_from_ids";
  const auto n = static_cast<std::int64_t>(ids.size());
  if (static_cast<std::int64_t>(offsets.size()) < n + 1)
    detail::fail(errc::size_mismatch, fn, "offsets has ", offsets.size(),
                 " entries, needs at least ids.size() + 1 = ", n + 1);
  if (static_cast<std::int64_t>(rows.size()) < n)
    detail::fail(errc::size_mismatch, fn, "rows has ", rows.size(),
                 " entries, needs at least ids.size() = ", n);
  detail::ids_scratch scratch;
  const std::int64_t G =
      detail::build_groups_from_ids(ids.data(), n, offsets.data(), rows.data(), scratch);
  return indexed_groups{
      host_span<const std::int64_t>(offsets.data(), static_cast<std::size_t>(G + 1)),
      host_span<const std::int64_t>(rows.data(), static_cast<std::size_t>(n))};
}

/// Convenience overload for containers (std::vector, Eigen vectors, spans).
template <class Ids, class Offsets, class Rows,
          class = std::enable_if_t<is_host_viewable_v<Ids> && is_host_viewable_v<Offsets> &&
                                   is_host_viewable_v<Rows>>>
indexed_groups groups_from_ids(cpu_policy policy, Ids& ids, Offsets& offsets, Rows& rows) {
  using I = std::remove_const_t<typename host_view_t<Ids>::element_type>;
  return groups_from_ids<I>(policy, host_span<const I>(as_host_span(ids)),
                            host_span<std::int64_t>(as_host_span(offsets)),
                            host_span<std::int64_t>(as_host_span(rows)));
}

}  // namespace shuffle_r1
