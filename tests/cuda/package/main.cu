// Compiles against the installed headers and links; runs with or without a GPU.
#include <shuffle_r1/cuda.cuh>

#include <cstdio>

int main() {
  namespace sr = shuffle_r1;
  const sr::cuda_policy gpu = sr::cuda_on(nullptr);
  std::printf("cuda consumer ok (device: %s, stream set: %s)\n",
              sr::cuda_device_available() ? "yes" : "no", gpu.stream ? "yes" : "no");
  return 0;
}
