/// @file cuda/runtime.cuh
/// @brief The CUDA policy, memory resources, device buffers, error checking and the device-side
/// status record shared by every CUDA algorithm. Internal: include <shuffle_r1/cuda.cuh>.
#pragma once

#ifndef SHUFFLE_R1_CUDA_INCLUDED
#error "shuffle_r1/cuda headers are internal: include <shuffle_r1/cuda.cuh>"
#endif

#include <shuffle_r1/config.hpp>
#include <shuffle_r1/cuda/tuning.cuh>
#include <shuffle_r1/error.hpp>
#include <shuffle_r1/span.hpp>

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace shuffle_r1 {

/// The exception thrown when a CUDA runtime call fails: a shuffle_r1::error with code
/// errc::cuda that also carries the CUDA status.
class cuda_error : public error {
 public:
  /// @param status the failed call's status
  /// @param message full message, starting with the function name
  cuda_error(cudaError_t status, const std::string& message)
      : error(errc::cuda, message), status_(status) {}

  /// The CUDA status of the failed call.
  cudaError_t status() const noexcept { return status_; }

 private:
  cudaError_t status_;
};

namespace detail::gpu {

/// Throws cuda_error for a failed CUDA call; the message names the function and the call.
[[noreturn]] inline void throw_cuda(const char* fn, cudaError_t status, const char* call) {
  throw cuda_error(status, message(fn, ": CUDA call ", call, " failed: ", cudaGetErrorName(status),
                                   " (", cudaGetErrorString(status), ")"));
}

/// Checks a CUDA status. @throws cuda_error when it is not cudaSuccess.
inline void check(const char* fn, cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw_cuda(fn, status, call);
}

}  // namespace detail::gpu

/// `#pragma unroll` for the device pass only (host compilers warn about the unknown pragma in
/// __host__ __device__ functions).
#if SHUFFLE_R1_DEVICE_PASS
#define SHUFFLE_R1_UNROLL _Pragma("unroll")
#else
#define SHUFFLE_R1_UNROLL
#endif

/// Checks the cudaError_t of `expr`; throws shuffle_r1::cuda_error naming `fn` and the call.
#define SHUFFLE_R1_CUDA_CHECK(fn, expr) ::shuffle_r1::detail::gpu::check((fn), (expr), #expr)

/// Where the CUDA backend gets device memory for temporaries. Allocation and deallocation are
/// stream-ordered: memory returned by `allocate(bytes, s)` may be used by work enqueued on `s`
/// after the call, and `deallocate(p, bytes, s)` may only reuse it after the work enqueued on `s`
/// before it. An implementation must be thread-safe if policies using it run concurrently.
class cuda_memory_resource {
 public:
  virtual ~cuda_memory_resource() = default;
  /// Device memory for `bytes` bytes (nullptr for 0), aligned to at least 256 bytes.
  /// @throws cuda_error (or any exception) when no memory is available.
  virtual void* allocate(std::size_t bytes, cudaStream_t stream) = 0;
  /// Returns memory from allocate with the same `bytes`. Never throws.
  virtual void deallocate(void* p, std::size_t bytes, cudaStream_t stream) noexcept = 0;
};

/// The default resource: the CUDA stream-ordered allocator (cudaMallocAsync / cudaFreeAsync on
/// the device's default memory pool).
class cuda_async_memory_resource final : public cuda_memory_resource {
 public:
  /// @throws cuda_error when cudaMallocAsync fails.
  void* allocate(std::size_t bytes, cudaStream_t stream) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    SHUFFLE_R1_CUDA_CHECK("cuda_async_memory_resource::allocate",
                          cudaMallocAsync(&p, bytes, stream));
    return p;
  }
  void deallocate(void* p, std::size_t /*bytes*/, cudaStream_t stream) noexcept override {
    if (p) (void)cudaFreeAsync(p, stream);
  }
};

/// The process-wide default resource (a cuda_async_memory_resource). Never throws.
inline cuda_memory_resource& default_cuda_memory_resource() noexcept {
  static cuda_async_memory_resource resource;
  return resource;
}

/// The CUDA backend: the first argument of every CUDA overload, which take `device_span`s.
///
/// Work is enqueued on `stream` (nullptr: the legacy default stream, which cannot be captured
/// into a CUDA graph; use a stream of your own for capture). Temporaries of the convenience
/// overloads come from `resource` (nullptr: default_cuda_memory_resource()). The policy is a
/// plain value: copying it is free and it owns nothing.
struct cuda_policy {
  cudaStream_t stream = nullptr;             ///< where all work is enqueued
  cuda_memory_resource* resource = nullptr;  ///< temporaries; nullptr: the default resource

  /// The resource temporaries come from. Never throws.
  cuda_memory_resource& memory() const noexcept {
    return resource ? *resource : default_cuda_memory_resource();
  }
};

/// A CUDA policy on `stream` with an optional memory resource. Never throws.
inline cuda_policy cuda_on(cudaStream_t stream, cuda_memory_resource* resource = nullptr) noexcept {
  return cuda_policy{stream, resource};
}

/// Whether a CUDA device can be used by this process (a driver is loaded and at least one device
/// is visible). Never throws; clears the error it may provoke.
inline bool cuda_device_available() noexcept {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return count > 0;
}

/// Owning device memory for `size` elements of T, allocated from a policy's resource on its
/// stream and freed (stream-ordered) on the same stream. A convenience for tests, examples and
/// callers without a memory manager of their own; every algorithm takes plain device_spans.
/// Move-only. The contents are uninitialized.
template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "device_buffer: T must be trivially copyable");

 public:
  device_buffer() = default;
  /// Allocates `size` elements. @throws cuda_error when the allocation fails.
  explicit device_buffer(std::size_t size, const cuda_policy& policy = {})
      : policy_(policy), size_(size) {
    data_ = static_cast<T*>(policy_.memory().allocate(size * sizeof(T), policy_.stream));
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept
      : policy_(other.policy_),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      reset();
      policy_ = other.policy_;
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~device_buffer() { reset(); }

  /// Frees the memory (stream-ordered) and becomes empty. Never throws.
  void reset() noexcept {
    if (data_) policy_.memory().deallocate(data_, size_ * sizeof(T), policy_.stream);
    data_ = nullptr;
    size_ = 0;
  }
  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  /// A view of the whole buffer.
  device_span<T> span() const noexcept { return device_span<T>(data_, size_); }
  /// A read-only view of the whole buffer.
  device_span<const T> cspan() const noexcept { return device_span<const T>(data_, size_); }

 private:
  cuda_policy policy_{};
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Copies host memory to device memory on the policy's stream and waits for it.
/// @throws error(errc::size_mismatch) when `dst` is smaller than `src`; cuda_error.
template <class T>
void copy_to_device(const cuda_policy& policy, host_span<const T> src, device_span<T> dst) {
  if (dst.size() < src.size())
    detail::fail(errc::size_mismatch, "copy_to_device", "dst has ", dst.size(), " elements, needs ",
                 src.size());
  if (src.empty()) return;
  SHUFFLE_R1_CUDA_CHECK("copy_to_device",
                        cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(T),
                                        cudaMemcpyHostToDevice, policy.stream));
  SHUFFLE_R1_CUDA_CHECK("copy_to_device", cudaStreamSynchronize(policy.stream));
}

/// Copies device memory into a new host vector on the policy's stream and waits for it.
/// @throws cuda_error.
template <class T>
std::vector<std::remove_const_t<T>> copy_to_host(const cuda_policy& policy, device_span<T> src) {
  std::vector<std::remove_const_t<T>> out(src.size());
  if (src.empty()) return out;
  SHUFFLE_R1_CUDA_CHECK("copy_to_host",
                        cudaMemcpyAsync(out.data(), src.data(), src.size() * sizeof(T),
                                        cudaMemcpyDeviceToHost, policy.stream));
  SHUFFLE_R1_CUDA_CHECK("copy_to_host", cudaStreamSynchronize(policy.stream));
  return out;
}

namespace detail::gpu {

/// Number of SMs of the current device (cached per device). @throws cuda_error.
inline int sm_count(const char* fn) {
  int device = 0;
  SHUFFLE_R1_CUDA_CHECK(fn, cudaGetDevice(&device));
  static std::atomic<int> cache[64];
  if (device >= 0 && device < 64) {
    const int v = cache[device].load(std::memory_order_relaxed);
    if (v > 0) return v;
  }
  int count = 0;
  SHUFFLE_R1_CUDA_CHECK(fn, cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  if (count < 1) count = 1;
  if (device >= 0 && device < 64) cache[device].store(count, std::memory_order_relaxed);
  return count;
}

/// Blocks of `threads` threads for `items` work items (one per thread), capped at
/// tuning::blocks_per_sm per SM (kernels loop grid-stride). At least 1.
inline unsigned grid_for(const char* fn, std::int64_t items, int threads) {
  const std::int64_t needed = (items + threads - 1) / threads;
  const std::int64_t cap = static_cast<std::int64_t>(sm_count(fn)) * tuning::blocks_per_sm;
  const std::int64_t blocks = needed < cap ? needed : cap;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

/// Checks a kernel launch (configuration errors surface here, execution errors at the next
/// synchronization). @throws cuda_error.
inline void check_launch(const char* fn) {
  SHUFFLE_R1_CUDA_CHECK(fn, cudaGetLastError());
}

// ---------------------------------------------------------------------------------------------
// Device-side status: the first failed data-dependent check and the results of a call.
// ---------------------------------------------------------------------------------------------

/// Data-dependent checks, in the order the CPU backend makes them: when several fail, the one
/// with the smallest (check, index) is reported, which is the one the CPU reports.
enum class check_id : unsigned {
  offsets = 1,               ///< index: 0 (offsets[0] != 0), g (decreasing), G + 1 (last)
  rows = 2,                  ///< index: 4 k + kind (0 range, 1 order, 2 duplicate)
  stats_size = 3,            ///< index: 0 mean, 1 std (id layouts: G known on the device only)
  reward_nonfinite = 4,      ///< index: row
  reward_limit = 5,          ///< index: row
  singleton = 6,             ///< index: group
  pair_group = 7,            ///< index: 2 g + kind (0 odd, 1 fewer than keep_pairs)
  shuffle_shape = 8,         ///< index: 0 per_round > K, 1 rounds * per_round overflows
  output_size = 9,           ///< index: output (output_slot) too small for K
  singleton_range = 10,      ///< index: group (batch_std, verl: its advantage overflows T)
  advantage_nonfinite = 11,  ///< index: row
  weight_bad = 12,           ///< index: pair (non-finite or negative weight)
  too_few_pairs = 13,        ///< index: 0
  order_size = 14,           ///< index: 0 (shuffle_pairs: order shorter than S * T)
  order_range = 15,          ///< index: entry of `order`
  phases = 16,               ///< index: round
};

/// Outputs whose required size can depend on device data (the output_size check's index).
enum output_slot : int {
  slot_pairs = 0,
  slot_weights = 1,
  slot_order = 2,
  slot_rows = 3,
  slot_count = 4,
};

/// Host scalars a call hands to the device with its status (kernel arguments, so that a
/// captured graph needs no host memory).
struct status_context {
  std::int64_t rows = 0;                            ///< B
  std::int64_t rounds = 0;                          ///< S
  std::int64_t per_round = -1;                      ///< options.per_round (negative: K / S)
  std::int64_t keep_pairs = -1;                     ///< options.keep_pairs
  std::int64_t cap[slot_count] = {-1, -1, -1, -1};  ///< output capacities (-1: not checked)
  std::int64_t stats_cap[2] = {-1, -1};             ///< group_mean / group_std sizes (-1: none)
  int on_short = 0;                                 ///< short_policy
  int kind = 0;                                     ///< estimator (messages)
  double limit = 0.0;                               ///< mean_only / rloo reward limit (messages)
  double eps = 0.0;                                 ///< options.eps (messages)
  bool float_type = false;                          ///< T is float (messages)
};

/// The device-side record of one call: the first failed check (with what its message needs)
/// and the call's counts. Lives in device memory (a workspace or a temporary).
struct device_status {
  unsigned long long error;  ///< ~key of the first failed check (0: none): atomicMax
  long long info[4];         ///< integers the message needs (filled by describe_kernel)
  double value;              ///< the offending floating-point value, as double
  unsigned long long zero_variance, singleton, empty;  ///< advantage_summary counts
  unsigned long long max_abs;                          ///< bits of max |reward| (double)
  unsigned long long w_max, w_min;                     ///< bits of max / min |weight| (double)
  long long groups;                         ///< G (resolved on the device for id layouts)
  long long pairs;                          ///< K
  long long nonzero;                        ///< pairs of positive sampling mass
  long long per_round;                      ///< T actually drawn (shrink may lower it)
  long long extra_phases;                   ///< ABS phases beyond the first
  long long distinct;                       ///< pairs used at least once (pipeline)
  double batch_mu, batch_sigma, batch_den;  ///< batch_std: mean, sigma, sigma + eps (scaled)
  status_context ctx;                       ///< the call's host scalars
};

/// The sort key of a failed check: (check, index); smaller is reported first.
SHUFFLE_R1_HD constexpr unsigned long long check_key(check_id c,
                                                     unsigned long long index) noexcept {
  return (static_cast<unsigned long long>(c) << 48) | (index & 0xFFFFFFFFFFFFull);
}

/// Records a failed check; the smallest key wins, whatever the order threads arrive in.
__device__ inline void record(device_status* st, check_id c, unsigned long long index) {
  atomicMax(&st->error, ~check_key(c, index));
}

/// Whether a check has failed so far (a fresh read, not a cached one).
__device__ inline bool failed(const device_status* st) {
  return *static_cast<const volatile unsigned long long*>(&st->error) != 0;
}

/// Whether a check that comes before `c` has failed: a kernel that records `c` (or later checks)
/// and needs the inputs earlier checks validate gates on this, so that the check the CPU backend
/// would report first is never masked.
__device__ inline bool blocked(const device_status* st, check_id c) {
  const unsigned long long e = *static_cast<const volatile unsigned long long*>(&st->error);
  return e != 0 && ~e < check_key(c, 0);
}

/// Resets the status and stores the call's host scalars. One thread. (A template, as every
/// kernel of this header-only library, so that each translation unit may instantiate it.)
template <int = 0>
__global__ void init_status_kernel(device_status* st, status_context ctx, long long groups,
                                   long long pairs) {
  device_status s{};
  s.w_min = 0x7FF0000000000000ull;  // +infinity: the min of no weights
  s.groups = groups;
  s.pairs = pairs;
  s.ctx = ctx;
  *st = s;
}

/// Enqueues init_status_kernel. @throws cuda_error.
inline void init_status(const char* fn, cudaStream_t stream, device_status* st,
                        const status_context& ctx, std::int64_t groups, std::int64_t pairs) {
  init_status_kernel<>
      <<<1, 1, 0, stream>>>(st, ctx, static_cast<long long>(groups), static_cast<long long>(pairs));
  check_launch(fn);
}

// ---------------------------------------------------------------------------------------------
// Warp and block reductions of integers (order-free, so deterministic).
// ---------------------------------------------------------------------------------------------

__device__ inline unsigned long long warp_sum(unsigned long long v) {
  for (int h = 16; h >= 1; h >>= 1)
    v += __shfl_xor_sync(0xFFFFFFFFu, v, h);
  return v;
}
__device__ inline unsigned long long warp_max(unsigned long long v) {
  for (int h = 16; h >= 1; h >>= 1) {
    const unsigned long long o = __shfl_xor_sync(0xFFFFFFFFu, v, h);
    v = o > v ? o : v;
  }
  return v;
}
__device__ inline unsigned long long warp_min(unsigned long long v) {
  for (int h = 16; h >= 1; h >>= 1) {
    const unsigned long long o = __shfl_xor_sync(0xFFFFFFFFu, v, h);
    v = o < v ? o : v;
  }
  return v;
}

/// Reduction of one value per thread over the block (blockDim.x a multiple of 32, at most
/// 1024); every thread gets the result. Op: 0 sum, 1 max, 2 min. Contains __syncthreads.
template <int Op>
__device__ inline unsigned long long block_reduce(unsigned long long v) {
  __shared__ unsigned long long partial[32];
  const auto reduce = [](unsigned long long x) {
    return Op == 0 ? warp_sum(x) : Op == 1 ? warp_max(x) : warp_min(x);
  };
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned warps = blockDim.x >> 5;
  v = reduce(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const unsigned long long identity = Op == 2 ? ~0ull : 0ull;
  v = lane < warps ? partial[lane] : identity;
  return reduce(v);
}

// ---------------------------------------------------------------------------------------------
// Workspaces: one routine lays buffers out both to measure and to carve, so they always agree.
// ---------------------------------------------------------------------------------------------

/// Lays typed buffers out in a byte range (aligned to tuning::workspace_alignment). With a null
/// base it only measures.
class carver {
 public:
  explicit carver(std::byte* base = nullptr) noexcept : base_(base) {}
  /// Room for `count` elements of U (nullptr when measuring or count == 0).
  template <class U>
  U* take(std::int64_t count) noexcept {
    if (count <= 0) return nullptr;
    constexpr std::size_t a = tuning::workspace_alignment;
    offset_ = (offset_ + a - 1) / a * a;
    U* p = base_ ? reinterpret_cast<U*>(base_ + offset_) : nullptr;
    offset_ += static_cast<std::size_t>(count) * sizeof(U);
    return p;
  }
  /// Raw bytes for a CUB temporary.
  void* take_bytes(std::size_t bytes) noexcept {
    return take<std::byte>(static_cast<std::int64_t>(bytes));
  }
  /// Bytes used so far (with the final alignment).
  std::size_t size() const noexcept {
    constexpr std::size_t a = tuning::workspace_alignment;
    return (offset_ + a - 1) / a * a;
  }

 private:
  std::byte* base_;
  std::size_t offset_ = 0;
};

/// A temporary byte buffer from a policy's resource, freed (stream-ordered) on destruction.
class temporary {
 public:
  temporary(const cuda_policy& policy, std::size_t bytes) : policy_(policy), bytes_(bytes) {
    data_ = static_cast<std::byte*>(policy_.memory().allocate(bytes_, policy_.stream));
  }
  temporary(const temporary&) = delete;
  temporary& operator=(const temporary&) = delete;
  ~temporary() {
    if (data_) policy_.memory().deallocate(data_, bytes_, policy_.stream);
  }
  std::byte* data() const noexcept { return data_; }

 private:
  cuda_policy policy_;
  std::size_t bytes_;
  std::byte* data_ = nullptr;
};

/// Waits for the stream and copies the status to the host. @throws cuda_error.
inline device_status read_status(const char* fn, cudaStream_t stream, const device_status* st) {
  device_status host{};
  SHUFFLE_R1_CUDA_CHECK(fn,
                        cudaMemcpyAsync(&host, st, sizeof host, cudaMemcpyDeviceToHost, stream));
  SHUFFLE_R1_CUDA_CHECK(fn, cudaStreamSynchronize(stream));
  return host;
}

}  // namespace detail::gpu
}  // namespace shuffle_r1
