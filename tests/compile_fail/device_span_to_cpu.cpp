// Device memory handed to the CPU policy must not compile.
#include <shuffle_r1/shuffle_r1.hpp>

namespace sr = shuffle_r1;

void misuse(float* p, float* q) {
#ifdef SHUFFLE_R1_EXPECT_OK
  sr::host_span<const float> rewards(p, 8);
  sr::host_span<float> out(q, 8);
#else
  sr::device_span<const float> rewards(p, 8);
  sr::device_span<float> out(q, 8);
#endif
  sr::normalize_advantages(sr::cpu, rewards, sr::uniform_groups{1, 8}, out);
}
