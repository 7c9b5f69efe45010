/// @file cpu/partition.hpp
/// @brief CPU implementation of the data-parallel partition. Internal: include
/// <shuffle_r1/partition.hpp>.
#pragma once

#ifndef SHUFFLE_R1_CONFIG_INCLUDED
#error "shuffle_r1/cpu headers are internal: include <shuffle_r1/shuffle_r1.hpp>"
#endif

#include <shuffle_r1/research_types.hpp>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace shuffle_r1::detail::cpu {

/// Units of one mini-batch sorted by tokens descending, ties by position (a total order, so
/// the result does not depend on the sort implementation).
inline void sort_units_desc(const std::int64_t* tokens, std::int64_t count,
                            std::vector<std::int64_t>& ord) {
  ord.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    ord[i] = i;
  std::sort(ord.begin(), ord.end(), [&](std::int64_t a, std::int64_t b) {
    return tokens[a] > tokens[b] || (tokens[a] == tokens[b] && a < b);
  });
}

/// Balanced k-way largest differencing (Karmarkar-Karp with equal cardinality): the units,
/// sorted descending and padded with empty units to a multiple of R, form partial solutions of
/// R one-unit subsets per R consecutive units; the two partials of largest spread (max - min
/// subset sum; ties: the older first) are merged repeatedly, the heaviest subset of one with the
/// lightest of the other. Every subset ends with ceil(c / R) or floor(c / R) real units.
/// Writes rank[i] in [0, R) for the c units of `tokens`; rank 0 gets the heaviest subset.
inline void karmarkar_karp(const std::int64_t* tokens, std::int64_t count, std::int64_t R,
                           std::int64_t* rank) {
  struct subset {
    std::int64_t sum = 0;
    std::vector<std::int64_t> units;
  };
  struct partial {
    std::vector<subset> sets;  // sorted by sum descending
    std::int64_t spread() const { return sets.front().sum - sets.back().sum; }
  };
  std::vector<std::int64_t> ord;
  sort_units_desc(tokens, count, ord);
  const std::int64_t chunks = (count + R - 1) / R;
  std::vector<partial> pool;
  pool.reserve(static_cast<std::size_t>(2 * chunks));
  for (std::int64_t q = 0; q < chunks; ++q) {
    partial p;
    p.sets.resize(static_cast<std::size_t>(R));
    for (std::int64_t i = 0; i < R; ++i) {
      const std::int64_t k = q * R + i;
      if (k < count) {  // the padding units (k >= count) are empty subsets at the end
        p.sets[i].sum = tokens[ord[k]];
        p.sets[i].units.push_back(ord[k]);
      }
    }
    pool.push_back(std::move(p));
  }
  // Max-heap of pool indices by (spread, older first): a strict total order.
  std::vector<std::int64_t> spread(pool.size());
  for (std::size_t i = 0; i < pool.size(); ++i)
    spread[i] = pool[i].spread();
  const auto below = [&](std::int64_t a, std::int64_t b) {
    return spread[a] < spread[b] || (spread[a] == spread[b] && a > b);
  };
  std::vector<std::int64_t> heap;
  for (std::int64_t i = 0; i < chunks; ++i)
    heap.push_back(i);
  std::make_heap(heap.begin(), heap.end(), below);
  while (heap.size() > 1) {
    std::pop_heap(heap.begin(), heap.end(), below);
    const std::int64_t a = heap.back();
    heap.pop_back();
    std::pop_heap(heap.begin(), heap.end(), below);
    const std::int64_t b = heap.back();
    heap.pop_back();
    partial merged;
    merged.sets.resize(static_cast<std::size_t>(R));
    for (std::int64_t i = 0; i < R; ++i) {
      subset& x = pool[a].sets[i];
      subset& y = pool[b].sets[R - 1 - i];
      merged.sets[i].sum = x.sum + y.sum;
      merged.sets[i].units = std::move(x.units);
      merged.sets[i].units.insert(merged.sets[i].units.end(), y.units.begin(), y.units.end());
    }
    std::stable_sort(merged.sets.begin(), merged.sets.end(),
                     [](const subset& x, const subset& y) { return x.sum > y.sum; });
    pool[a] = partial{};
    pool[b] = partial{};
    spread.push_back(merged.spread());
    pool.push_back(std::move(merged));
    heap.push_back(static_cast<std::int64_t>(pool.size()) - 1);
    std::push_heap(heap.begin(), heap.end(), below);
  }
  if (heap.empty()) return;
  const partial& final_part = pool[heap.front()];
  for (std::int64_t r = 0; r < R; ++r)
    for (const std::int64_t u : final_part.sets[r].units)
      rank[u] = r;
}

/// Longest processing time first with equal cardinality: units in descending order, each to the
/// least loaded rank (ties: the lowest rank) that still has room; floor(c / R) units per rank,
/// c mod R ranks one more.
inline void lpt(const std::int64_t* tokens, std::int64_t count, std::int64_t R,
                std::int64_t* rank) {
  std::vector<std::int64_t> ord;
  sort_units_desc(tokens, count, ord);
  const std::int64_t base = count / R, extra = count % R;
  std::vector<std::int64_t> load(static_cast<std::size_t>(R), 0), held(load.size(), 0);
  std::int64_t extra_used = 0;
  for (const std::int64_t u : ord) {
    std::int64_t best = -1;
    for (std::int64_t r = 0; r < R; ++r) {
      const bool room = held[r] < base || (held[r] == base && extra_used < extra);
      if (room && (best < 0 || load[r] < load[best])) best = r;
    }
    rank[u] = best;
    load[best] += tokens[u];
    if (++held[best] == base + 1) ++extra_used;
  }
}

/// Consecutive chunks: rank r gets units [r c / R, (r + 1) c / R).
inline void contiguous(std::int64_t count, std::int64_t R, std::int64_t* rank) noexcept {
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t u = r * count / R; u < (r + 1) * count / R; ++u)
      rank[u] = r;
}

}  // namespace shuffle_r1::detail::cpu
