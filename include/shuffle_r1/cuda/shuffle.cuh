/// @file cuda/shuffle.cuh
/// @brief CUDA implementation of shuffle_pairs (ABS). Internal: include <shuffle_r1/cuda.cuh>.
///
/// The sampler is the one of detail/sampler.hpp, computed identically:
/// - one block builds the tables: weight validation, the mass plan (det_log / det_exp /
///   det_log1p from detail/det_math.hpp), the integer masses (detail::mass_of), their inclusive
///   prefix sums and the guide table (integers: any summation order gives the same table);
/// - one block per round (parallel across rounds, sequential inside one, as the definition
///   is): each batch of 2 * round_threads draws computes its Philox words (detail::draw_block,
///   the CPU's counters) and table lookups in parallel; a draw is new when its pair is not taken
///   and no earlier draw of the batch drew it (an atomicMin per pair elects the earliest), and
///   new draws are numbered in draw order with a block scan. Draws past the round's end or the
///   phase's limit are discarded, as on the CPU, so the order is the CPU's bit for bit. Later
///   phases rebuild the prefix sums without the taken pairs and search them by bisection (the
///   guide table is only an accelerator: any lower bound gives the same pair).
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/cuda/runtime.cuh>
#include <shuffle_r1/cuda/tuning.cuh>
#include <shuffle_r1/detail/det_math.hpp>
#include <shuffle_r1/detail/int_math.hpp>
#include <shuffle_r1/detail/sampler.hpp>
#include <shuffle_r1/random.hpp>
#include <shuffle_r1/shuffle.hpp>
#include <shuffle_r1/types.hpp>

#include <cub/block/block_scan.cuh>

#include <cstdint>

namespace shuffle_r1::detail::gpu {

/// The sampling tables (device memory), sized for up to Kmax pairs.
struct table_buffers {
  std::uint64_t* mass = nullptr;
  std::uint64_t* cum = nullptr;
  std::uint32_t* guide = nullptr;
  std::uint64_t* fill_mass = nullptr;  ///< null unless short_policy::fill
  std::uint64_t* fill_cum = nullptr;
  std::uint32_t* fill_guide = nullptr;
  unsigned char* used = nullptr;  ///< pipeline: pairs used at least once (reset here)
};

/// Lays out (or measures) the tables for up to Kmax pairs.
inline table_buffers reserve_tables(carver& ws, std::int64_t Kmax, short_policy on_short,
                                    bool used) {
  table_buffers b;
  const std::int64_t buckets = std::int64_t{1} << guide_bits(Kmax);
  b.mass = ws.take<std::uint64_t>(Kmax);
  b.cum = ws.take<std::uint64_t>(Kmax);
  b.guide = ws.take<std::uint32_t>(buckets);
  if (on_short == short_policy::fill) {
    b.fill_mass = ws.take<std::uint64_t>(Kmax);
    b.fill_cum = ws.take<std::uint64_t>(Kmax);
    b.fill_guide = ws.take<std::uint32_t>(buckets);
  }
  if (used) b.used = ws.take<unsigned char>(Kmax);
  return b;
}

/// Per-call constants of the table kernel.
struct table_params {
  transform kind = transform::power;
  double coeff = 1.0;
  double tau = 1.0;  ///< schedule temperature, computed on the host (detail::schedule_tau)
  short_policy on_short = short_policy::error;
  std::int64_t rounds = 1;
  std::int64_t per_round = -1;  ///< options.per_round (negative: K / S)
  bool check_order = false;     ///< shuffle_pairs: order capacity (ctx.cap[slot_order]) >= S * T
};

/// First index j in [0, K) with cum[j] > r (cum non-decreasing, cum[K-1] > r).
__device__ inline std::int64_t upper_bound(const std::uint64_t* cum, std::int64_t K,
                                           std::uint64_t r) {
  std::int64_t lo = 0, hi = K - 1;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > r)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/// guide[b] = min(first j with cum[j] > r_b, K - 1), r_b the smallest r of bucket b: the
/// tightest lower bound (cpu::build_table's entries may be lower; any lower bound draws the
/// same pairs).
__device__ inline void build_guide(const std::uint64_t* cum, std::int64_t K, std::uint64_t total,
                                   int gbits, std::uint32_t* guide) {
  const std::int64_t buckets = std::int64_t{1} << gbits;
  for (std::int64_t b = threadIdx.x; b < buckets; b += blockDim.x) {
    const std::uint64_t r = mulhi64(static_cast<std::uint64_t>(b) << (64 - gbits), total);
    guide[b] = static_cast<std::uint32_t>(upper_bound(cum, K, r));
  }
}

/// The mass plan for K weights whose largest and smallest magnitudes are w_max and w_min: the
/// constants cpu::plan_masses computes, with the same operations. Host and device.
SHUFFLE_R1_STRICT_FP SHUFFLE_R1_HD inline mass_plan plan_of(const table_params& p, std::int64_t K,
                                                            double w_max, double w_min) {
  SHUFFLE_R1_STRICT_FP_BODY
  mass_plan m;
  m.kind = p.kind;
  m.coeff = p.coeff;
  m.unit = pow2(mass_bits(K));
  switch (p.kind) {
    case transform::power:
      m.w_ref = w_max;
      if (p.coeff != 0.0 && p.coeff != 1.0 && w_max > 0.0) m.q_ref = det_log(w_max);
      break;
    case transform::softmax:
      m.tau = p.tau;
      m.w_ref = w_max;
      break;
    case transform::log_softmax:
      m.tau = p.tau;
      m.q_ref = det_log1p(fp::div(w_max, m.tau));
      break;
    case transform::inverse:
      m.w_ref = w_min;
      m.q_ref = fp::div(1.0, fp::add(w_min, 1e-6));
      break;
  }
  return m;
}

/// One block: validates the weights, plans and computes the integer masses, their prefix sums
/// and guide tables, the round size T (with the short-round policy) and the checks that need
/// the number of non-zero masses. K is `K_host`, or st->pairs when K_host < 0 (pipeline).
template <class T>
__global__ void __launch_bounds__(tuning::table_threads)
    tables_kernel(const T* w, std::int64_t K_host, table_params p, table_buffers b,
                  device_status* st) {
  using scan_t = cub::BlockScan<unsigned long long, tuning::table_threads>;
  __shared__ typename scan_t::TempStorage scan_storage;
  if (blocked(st, check_id::weight_bad)) return;
  const std::int64_t K = K_host >= 0 ? K_host : static_cast<std::int64_t>(st->pairs);
  const int tid = static_cast<int>(threadIdx.x);
  // 1. Validation (first bad weight), largest and smallest |weight| (bit patterns: for finite
  //    non-negative doubles the integer order is the numeric order; -0.0 counts as +0.0, which
  //    no transform distinguishes).
  unsigned long long hi = 0, lo = ~0ull;
  for (std::int64_t j = tid; j < K; j += blockDim.x) {
    const T v = w[j];
    if (!is_finite(v) || static_cast<double>(v) < 0.0) {
      record(st, check_id::weight_bad, static_cast<unsigned long long>(j));
    } else {
      const unsigned long long bits = bits_of(fabs(static_cast<double>(v)));
      hi = bits > hi ? bits : hi;
      lo = bits < lo ? bits : lo;
    }
  }
  hi = block_reduce<1>(hi);
  lo = block_reduce<2>(lo);
  __syncthreads();
  if (failed(st)) return;
  // 2. The mass plan (cpu::plan_masses), computed by every thread alike.
  const mass_plan m = plan_of(p, K, K > 0 ? double_of(hi) : 0.0, K > 0 ? double_of(lo) : 0.0);
  // 3. Masses and inclusive prefix sums, block by block with a carry (integers).
  const bool fill = b.fill_mass != nullptr;
  unsigned long long carry = 0, fill_carry = 0, nonzero = 0;
  for (std::int64_t base = 0; base < K; base += blockDim.x) {
    const std::int64_t j = base + tid;
    unsigned long long q = 0;
    if (j < K) {
      q = mass_of(m, static_cast<double>(w[j]));
      b.mass[j] = q;
      nonzero += q != 0;
      if (b.used) b.used[j] = 0;
    }
    unsigned long long incl = 0, total = 0;
    scan_t(scan_storage).InclusiveSum(q, incl, total);
    if (j < K) b.cum[j] = carry + incl;
    carry += total;
    __syncthreads();
    if (fill) {
      const unsigned long long f = (j < K && q == 0) ? 1 : 0;
      if (j < K) b.fill_mass[j] = f;
      scan_t(scan_storage).InclusiveSum(f, incl, total);
      if (j < K) b.fill_cum[j] = fill_carry + incl;
      fill_carry += total;
      __syncthreads();
    }
  }
  nonzero = block_reduce<0>(nonzero);
  // 4. T and the short-round policy (cpu::prepare_shuffle).
  const std::int64_t T_req = p.per_round < 0 ? K / p.rounds : p.per_round;
  std::int64_t T_eff = T_req;
  if (static_cast<std::int64_t>(nonzero) < T_req) {
    if (p.on_short == short_policy::error) {
      if (tid == 0) record(st, check_id::too_few_pairs, 0);
    } else if (p.on_short == short_policy::shrink) {
      T_eff = static_cast<std::int64_t>(nonzero);
    }
  }
  if (tid == 0) {
    st->pairs = K;
    st->nonzero = static_cast<long long>(nonzero);
    st->per_round = T_eff;
    if (p.check_order && st->ctx.cap[slot_order] < p.rounds * T_eff)
      record(st, check_id::order_size, 0);
  }
  // 5. Guide tables (after every prefix sum is written).
  __syncthreads();
  if (K == 0) return;
  const int gbits = guide_bits(K);
  if (carry > 0) build_guide(b.cum, K, carry, gbits, b.guide);
  if (fill && fill_carry > 0) build_guide(b.fill_cum, K, fill_carry, gbits, b.fill_guide);
}

/// Where the rounds go. `pairs` (2K entries, any integer type) is needed for `rows` only.
template <class Index>
struct round_outputs {
  std::int64_t* order = nullptr;  ///< S * T pair indices (or null)
  std::int64_t* rows = nullptr;   ///< 2 S T rows (or null)
  const Index* pairs = nullptr;
  unsigned char* used = nullptr;  ///< set to 1 for every drawn pair (or null)
};

/// Per-call constants of the round kernel.
struct round_params {
  std::uint64_t seed = 0;
  std::uint32_t step = 0;
  std::int64_t rounds = 1;
  std::int64_t Kmax = 0;  ///< stride of the per-block state
};

inline constexpr unsigned state_free = 0xFFFFFFFFu;
inline constexpr unsigned state_taken = 0xFFFFFFFEu;

/// The pair drawn by the random word x from the base table (guide, then a linear search: the
/// CPU's draw_pair) or a phase table (bisection of the rebuilt prefix sums).
__device__ inline std::int64_t draw_from(bool base, const std::uint64_t* cum,
                                         const std::uint32_t* guide, int gbits, std::uint64_t total,
                                         std::int64_t K, std::uint64_t x) {
  const std::uint64_t r = mulhi64(x, total);
  if (!base) return upper_bound(cum, K, r);
  std::int64_t j = guide[x >> (64 - gbits)];
  while (cum[j] <= r)
    ++j;
  return j;
}

/// One stream of one round, by the whole block: draws `needed` distinct pairs of positive mass
/// (cpu::sample_distinct) and emits them at positions out_base + 0, 1, ... Returns the number of
/// extra phases, or -1 after recording the phase-limit error.
template <class Index>
__device__ inline long long sample_round(const std::uint64_t* mass, const std::uint64_t* cum,
                                         const std::uint32_t* guide, std::int64_t K,
                                         std::int64_t needed, const round_params& p,
                                         std::uint32_t round, rng_stream stream, unsigned* state,
                                         std::uint64_t* cum_phase, std::int64_t out_base,
                                         const round_outputs<Index>& out, device_status* st) {
  using count_scan = cub::BlockScan<int, tuning::round_threads>;
  using mass_scan = cub::BlockScan<unsigned long long, tuning::round_threads>;
  __shared__ typename count_scan::TempStorage count_storage;
  __shared__ typename mass_scan::TempStorage mass_storage;
  const int tid = static_cast<int>(threadIdx.x);
  const int gbits = guide_bits(K);
  std::uint64_t total = cum[K - 1];
  bool base = true;
  std::int64_t got = 0;
  std::uint32_t phase = 0;
  for (;;) {
    const std::int64_t limit = phase_draw_limit(needed - got);
    for (std::int64_t d0 = 0; d0 < limit && got < needed; d0 += 2 * blockDim.x) {
      const auto block_index = static_cast<std::uint32_t>(d0 / 2) + static_cast<std::uint32_t>(tid);
      const philox_block words = draw_block(p.seed, p.step, round, stream, phase, block_index);
      std::int64_t j[2] = {-1, -1};
      unsigned local[2];
      SHUFFLE_R1_UNROLL
      for (int s = 0; s < 2; ++s) {
        local[s] = static_cast<unsigned>(2 * tid + s);
        if (d0 + local[s] < limit) {
          j[s] =
              draw_from(base, base ? cum : cum_phase, guide, gbits, total, K, block_word(words, s));
          if (state[j[s]] != state_taken) atomicMin(state + j[s], local[s]);
        }
      }
      __syncthreads();
      bool fresh[2];
      SHUFFLE_R1_UNROLL
      for (int s = 0; s < 2; ++s)
        fresh[s] = j[s] >= 0 && state[j[s]] == local[s];
      __syncthreads();  // every claim is read before any is resolved below
      int before = 0, batch_new = 0;
      count_scan(count_storage)
          .ExclusiveSum(static_cast<int>(fresh[0]) + static_cast<int>(fresh[1]), before, batch_new);
      int pos = before;
      SHUFFLE_R1_UNROLL
      for (int s = 0; s < 2; ++s) {
        if (!fresh[s]) continue;
        const std::int64_t at = got + pos++;
        if (at < needed) {
          const std::int64_t k = out_base + at;
          if (out.order) out.order[k] = j[s];
          if (out.rows) {
            out.rows[2 * k] = static_cast<std::int64_t>(out.pairs[2 * j[s]]);
            out.rows[2 * k + 1] = static_cast<std::int64_t>(out.pairs[2 * j[s] + 1]);
          }
          if (out.used) out.used[j[s]] = 1;
          state[j[s]] = state_taken;
        } else {
          state[j[s]] = state_free;  // past the round's end: not taken
        }
      }
      __syncthreads();
      got += batch_new < needed - got ? batch_new : needed - got;
    }
    if (got >= needed) break;
    ++phase;
    if (phase >= max_phases) {
      if (tid == 0) record(st, check_id::phases, round);
      return -1;
    }
    // The next phase's table: prefix sums of the masses of the pairs not taken (integers).
    unsigned long long carry = 0;
    for (std::int64_t b0 = 0; b0 < K; b0 += blockDim.x) {
      const std::int64_t jj = b0 + tid;
      const unsigned long long q = jj < K && state[jj] != state_taken ? mass[jj] : 0;
      unsigned long long incl = 0, sum = 0;
      mass_scan(mass_storage).InclusiveSum(q, incl, sum);
      if (jj < K) cum_phase[jj] = carry + incl;
      carry += sum;
      __syncthreads();
    }
    total = carry;
    base = false;
  }
  return static_cast<long long>(phase);
}

/// Blocks take rounds r = blockIdx.x, blockIdx.x + gridDim.x, ...; each block has its own
/// per-pair state (free / taken / earliest claim of the batch) and phase table.
template <class Index>
__global__ void __launch_bounds__(tuning::round_threads)
    rounds_kernel(table_buffers tb, round_params p, round_outputs<Index> out, unsigned* state_base,
                  std::uint64_t* cum_phase_base, device_status* st) {
  if (failed(st)) return;
  const std::int64_t K = st->pairs, T = st->per_round, nonzero = st->nonzero;
  if (T <= 0 || K <= 0) return;
  const std::int64_t weighted = T < nonzero ? T : nonzero;
  unsigned* state = state_base + blockIdx.x * p.Kmax;
  std::uint64_t* cum_phase = cum_phase_base + blockIdx.x * p.Kmax;
  long long extra = 0;
  for (std::int64_t r = blockIdx.x; r < p.rounds; r += gridDim.x) {
    for (std::int64_t j = threadIdx.x; j < K; j += blockDim.x)
      state[j] = state_free;
    __syncthreads();
    const auto round = static_cast<std::uint32_t>(r);
    if (weighted > 0) {
      const long long e = sample_round(tb.mass, tb.cum, tb.guide, K, weighted, p, round,
                                       rng_stream::abs_weighted, state, cum_phase, r * T, out, st);
      if (e < 0) return;
      extra += e;
    }
    if (T > weighted) {
      const long long e =
          sample_round(tb.fill_mass, tb.fill_cum, tb.fill_guide, K, T - weighted, p, round,
                       rng_stream::abs_fill, state, cum_phase, r * T + weighted, out, st);
      if (e < 0) return;
      extra += e;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0 && extra)
    atomicAdd(reinterpret_cast<unsigned long long*>(&st->extra_phases),
              static_cast<unsigned long long>(extra));
}

/// Buffers of the round kernel.
struct round_buffers {
  unsigned* state = nullptr;
  std::uint64_t* cum_phase = nullptr;
  unsigned blocks = 1;
};

/// Concurrent round blocks for S rounds of up to Kmax pairs. @throws cuda_error.
inline unsigned round_blocks(const char* fn, std::int64_t S, std::int64_t Kmax) {
  std::int64_t blocks = static_cast<std::int64_t>(sm_count(fn)) * tuning::round_blocks_per_sm;
  if (S < blocks) blocks = S;
  const std::int64_t per_block = 12 * (Kmax > 0 ? Kmax : 1);
  const std::int64_t budget = static_cast<std::int64_t>(tuning::round_state_budget) / per_block;
  if (budget < blocks) blocks = budget;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

/// Lays out (or measures) the round state. @throws cuda_error.
inline round_buffers reserve_rounds(const char* fn, carver& ws, std::int64_t S, std::int64_t Kmax) {
  round_buffers b;
  b.blocks = round_blocks(fn, S, Kmax);
  b.state = ws.take<unsigned>(static_cast<std::int64_t>(b.blocks) * Kmax);
  b.cum_phase = ws.take<std::uint64_t>(static_cast<std::int64_t>(b.blocks) * Kmax);
  return b;
}

/// Table constants from the options (host).
inline table_params make_table_params(const shuffle_options& o) {
  table_params p;
  p.kind = o.kind;
  p.coeff = o.coeff;
  if (o.kind == transform::softmax || o.kind == transform::log_softmax) p.tau = schedule_tau(o);
  p.on_short = o.on_short;
  p.rounds = o.rounds;
  p.per_round = o.per_round;
  return p;
}

/// Round constants from the options (host).
inline round_params make_round_params(const shuffle_options& o, std::int64_t Kmax) {
  round_params p;
  p.seed = o.seed;
  p.step = static_cast<std::uint32_t>(o.step);
  p.rounds = o.rounds;
  p.Kmax = Kmax;
  return p;
}

}  // namespace shuffle_r1::detail::gpu
