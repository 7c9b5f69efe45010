// Instantiates every kernel of the CUDA backend (float and double, every layout) so that
// check_ptx.cmake can scan their PTX: every floating-point operation must carry an explicit
// rounding mode (.rn), which no compiler stage fuses into an FMA, and no fma / mad may appear.
// This is how the bit-identity with the CPU is checked on machines without a GPU.
#include <shuffle_r1/cuda.cuh>

#include <cstdint>

namespace sr = shuffle_r1;

template <class T, class Layout>
void instantiate(const Layout& groups) {
  const sr::cuda_policy gpu{};
  const sr::device_span<const T> in;
  const sr::device_span<T> out;
  const sr::device_span<std::int64_t> idx;
  (void)sr::normalize_advantages(gpu, in, groups, out);
  (void)sr::select_pairs(gpu, in, groups, idx, out);
  (void)sr::run_pipeline(gpu, in, groups, sr::pipeline_config{}, sr::device_pipeline_outputs<T>{});
  (void)sr::shuffle_pairs(gpu, in, idx);
}

template <class T>
void instantiate_all() {
  const sr::device_span<const std::int64_t> none;
  instantiate<T>(sr::uniform_groups{});
  instantiate<T>(sr::device_ragged_groups{none});
  instantiate<T>(sr::device_indexed_groups{none, none});
  instantiate<T>(sr::device_id_groups<std::int64_t>{none});
}

void instantiate_everything() {
  instantiate_all<float>();
  instantiate_all<double>();
  sr::pairs_to_rows(sr::cuda_policy{}, {}, {}, {});
  (void)sr::groups_from_ids(sr::cuda_policy{}, sr::device_span<const std::int32_t>{},
                            sr::device_span<std::int64_t>{}, sr::device_span<std::int64_t>{});
}
