// sr1 --backend cuda: the CUDA run_pipeline on host data (see backend.hpp). Compiled by nvcc
// only when sr1 is configured with -DSHUFFLE_R1_ENABLE_CUDA=ON.
//
// <shuffle_r1/cuda.cuh> comes first: it includes Eigen (through the CPU headers) in host-only
// mode, which it can only arrange before anything else has included Eigen.
#include <shuffle_r1/cuda.cuh>

#include "backend.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace sr1 {

namespace {

namespace sr = shuffle_r1;

constexpr const char* fn = "cuda_backend";

/// A non-blocking stream of our own, destroyed (after its work) on scope exit.
class stream_guard {
 public:
  stream_guard() {
    SHUFFLE_R1_CUDA_CHECK(fn, cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  stream_guard(const stream_guard&) = delete;
  stream_guard& operator=(const stream_guard&) = delete;
  ~stream_guard() {
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
  }
  cudaStream_t get() const noexcept { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// A pair of CUDA events timing work enqueued between start() and stop_us().
class event_timer {
 public:
  event_timer() {
    SHUFFLE_R1_CUDA_CHECK(fn, cudaEventCreate(&start_));
    const cudaError_t status = cudaEventCreate(&stop_);
    if (status != cudaSuccess) {
      (void)cudaEventDestroy(start_);
      sr::detail::gpu::throw_cuda(fn, status, "cudaEventCreate(&stop_)");
    }
  }
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;
  ~event_timer() {
    (void)cudaEventDestroy(start_);
    (void)cudaEventDestroy(stop_);
  }
  void start(cudaStream_t s) { SHUFFLE_R1_CUDA_CHECK(fn, cudaEventRecord(start_, s)); }
  /// Waits for the stop event and returns the elapsed stream time in microseconds.
  double stop_us(cudaStream_t s) {
    SHUFFLE_R1_CUDA_CHECK(fn, cudaEventRecord(stop_, s));
    SHUFFLE_R1_CUDA_CHECK(fn, cudaEventSynchronize(stop_));
    float ms = 0;
    SHUFFLE_R1_CUDA_CHECK(fn, cudaEventElapsedTime(&ms, start_, stop_));
    return 1000.0 * static_cast<double>(ms);
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

/// A device copy of a host output view (uninitialized; empty when the view is).
template <class U>
sr::device_buffer<U> device_like(sr::host_span<U> host, const sr::cuda_policy& policy) {
  return sr::device_buffer<U>(host.size(), policy);
}

/// Copies a device buffer into the host view of the same size (enqueued, not waited for).
template <class U>
void copy_back(sr::host_span<U> host, const sr::device_buffer<U>& dev, cudaStream_t s) {
  if (host.empty()) return;
  SHUFFLE_R1_CUDA_CHECK(fn, cudaMemcpyAsync(host.data(), dev.data(), host.size() * sizeof(U),
                                            cudaMemcpyDeviceToHost, s));
}

template <class T, class Layout>
sr::pipeline_summary run_on_device(const sr::cuda_policy& policy, sr::device_span<const T> rewards,
                                   const Layout& groups, const sr::pipeline_config& config,
                                   const sr::pipeline_outputs<T>& out, cuda_timing* timing,
                                   std::chrono::steady_clock::time_point t0) {
  const cudaStream_t s = policy.stream;
  sr::device_buffer<T> adv = device_like(out.advantages, policy);
  sr::device_buffer<std::int64_t> pairs = device_like(out.pairs, policy);
  sr::device_buffer<T> weights = device_like(out.pair_weights, policy);
  sr::device_buffer<std::int64_t> order = device_like(out.order, policy);
  sr::device_buffer<std::int64_t> rows = device_like(out.rows, policy);
  sr::device_buffer<double> mean = device_like(out.group_mean, policy);
  sr::device_buffer<double> sd = device_like(out.group_std, policy);
  const sr::device_pipeline_outputs<T> dout{adv.span(),  pairs.span(), weights.span(), order.span(),
                                            rows.span(), mean.span(),  sd.span()};
  const std::size_t bytes = sr::pipeline_workspace_size<T>(
      policy, groups, static_cast<std::int64_t>(rewards.size()), config);
  const sr::device_buffer<std::byte> ws(bytes, policy);
  sr::run_pipeline(policy, rewards, groups, config, ws.span(), dout);
  const sr::pipeline_summary summary = sr::pipeline_result(policy, ws.cspan());
  copy_back(out.advantages, adv, s);
  copy_back(out.pairs, pairs, s);
  copy_back(out.pair_weights, weights, s);
  copy_back(out.order, order, s);
  copy_back(out.rows, rows, s);
  copy_back(out.group_mean, mean, s);
  copy_back(out.group_std, sd, s);
  SHUFFLE_R1_CUDA_CHECK(fn, cudaStreamSynchronize(s));
  if (timing) {
    timing->first_us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    timing->us.clear();
    event_timer timer;
    for (int i = 0; i < timing->repeats; ++i) {
      timer.start(s);
      sr::run_pipeline(policy, rewards, groups, config, ws.span(), dout);
      timing->us.push_back(timer.stop_us(s));
    }
    if (timing->repeats > 0) (void)sr::pipeline_result(policy, ws.cspan());
  }
  return summary;
}

template <class T>
sr::pipeline_summary run(const T* rewards_host, std::int64_t B, const cuda_layout& layout,
                         const sr::pipeline_config& config, const sr::pipeline_outputs<T>& out,
                         cuda_timing* timing) {
  const auto t0 = std::chrono::steady_clock::now();
  require_cuda_device();
  try {
    if (timing) {
      int device = 0;
      cudaDeviceProp prop{};
      SHUFFLE_R1_CUDA_CHECK(fn, cudaGetDevice(&device));
      SHUFFLE_R1_CUDA_CHECK(fn, cudaGetDeviceProperties(&prop, device));
      timing->device_name = prop.name;
    }
    const stream_guard stream;
    const sr::cuda_policy policy = sr::cuda_on(stream.get());
    const auto n = static_cast<std::size_t>(B);
    sr::device_buffer<T> rewards(n, policy);
    sr::copy_to_device<T>(policy, sr::host_span<const T>(rewards_host, n), rewards.span());
    if (layout.ids == nullptr)
      return run_on_device<T>(policy, rewards.cspan(),
                              sr::uniform_groups{layout.num_groups, layout.group_size}, config, out,
                              timing, t0);
    sr::device_buffer<std::int64_t> ids(n, policy);
    sr::copy_to_device<std::int64_t>(policy, sr::host_span<const std::int64_t>(layout.ids, n),
                                     ids.span());
    return run_on_device<T>(policy, rewards.cspan(),
                            sr::device_id_groups<std::int64_t>{ids.cspan()}, config, out, timing,
                            t0);
  } catch (const sr::cuda_error& e) {
    throw sr::error(sr::errc::cuda, std::string("--backend cuda: ") + e.what());
  }
}

}  // namespace

void require_cuda_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw shuffle_r1::error(shuffle_r1::errc::cuda,
                            std::string("--backend cuda: no CUDA device is available (") +
                                cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")");
  }
  if (count < 1)
    throw shuffle_r1::error(shuffle_r1::errc::cuda,
                            "--backend cuda: no CUDA device is available (the CUDA runtime "
                            "reports 0 devices)");
}

shuffle_r1::pipeline_summary run_pipeline_cuda(const float* rewards, std::int64_t B,
                                               const cuda_layout& groups,
                                               const shuffle_r1::pipeline_config& config,
                                               const shuffle_r1::pipeline_outputs<float>& out,
                                               cuda_timing* timing) {
  return run<float>(rewards, B, groups, config, out, timing);
}

shuffle_r1::pipeline_summary run_pipeline_cuda(const double* rewards, std::int64_t B,
                                               const cuda_layout& groups,
                                               const shuffle_r1::pipeline_config& config,
                                               const shuffle_r1::pipeline_outputs<double>& out,
                                               cuda_timing* timing) {
  return run<double>(rewards, B, groups, config, out, timing);
}

}  // namespace sr1
