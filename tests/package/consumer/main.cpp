#include <shuffle_r1/shuffle_r1.hpp>

#include <cstdio>
#include <vector>

int main() {
  namespace sr = shuffle_r1;
  const std::vector<float> rewards = {1, 1, 0, 0, 0, 1, 0, 0};
  std::vector<float> advantages(8);
  sr::normalize_advantages(sr::cpu, rewards, sr::uniform_groups{1, 8}, advantages);
  std::vector<std::int64_t> pairs(4);
  std::vector<float> weights(2);
  const auto k = sr::select_pairs(sr::cpu, advantages, sr::uniform_groups{1, 8}, pairs, weights);
  if (k != 2 || pairs[0] != 0 || pairs[1] != 7) return 1;
  std::printf("consumer ok: shuffle_r1 %s\n", SHUFFLE_R1_VERSION_STRING);
  return 0;
}
