// Host memory handed to the CUDA policy must not compile.
#include <shuffle_r1/cuda.cuh>

namespace sr = shuffle_r1;

void misuse(float* p, float* q) {
#ifdef SHUFFLE_R1_EXPECT_OK
  sr::device_span<const float> rewards(p, 8);
  sr::device_span<float> out(q, 8);
#else
  sr::host_span<const float> rewards(p, 8);
  sr::host_span<float> out(q, 8);
#endif
  (void)sr::normalize_advantages(sr::cuda_policy{}, rewards, sr::uniform_groups{1, 8}, out);
}
