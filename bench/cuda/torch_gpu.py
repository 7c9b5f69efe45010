"""The Shuffle-R1 selection written vectorized in PyTorch on the GPU: the baseline of the CUDA
pipeline's speed target (at least 10x faster on the same GPU).

The same computation as shuffle_r1's run_pipeline with the benchmark's config (GRPO ddof 1,
eps 1e-6, exact 0 for zero-variance groups; PTS keep ratio 0.5, weight |A_hi| + |A_lo|; ABS power
transform, 8 rounds of K // 8 pairs shrunk to the non-zero pairs, Efraimidis-Spirakis keys and
top-k per round; training rows), on uniform groups, float32 rewards already on the GPU, on the
batches of bench/cuda/bench_cuda.cu (bench/compare/batch.py reproduces shuffle_r1's synthetic
rewards bit for bit). Timed with CUDA events around the whole selection, after warm-up; the
median of --runs runs is printed per size, in microseconds, next to the name of the benchmark
to compare with:

    /usr/bin/python3 bench/cuda/torch_gpu.py
    build/cuda/bench/cuda/shuffle_r1_cuda_bench --benchmark_filter=Pipeline_CUDA

Needs PyTorch with CUDA and a GPU (not run yet: see docs/gpu.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "compare"))
from batch import synthetic_rewards  # noqa: E402  (bench/compare/batch.py)

SIZES = [(512, 16), (512, 8), (4096, 16), (65536, 16), (1048576, 16)]


def select(rewards: torch.Tensor, prompts: int, rollouts: int, generator: torch.Generator,
           eps: float = 1e-6, keep_ratio: float = 0.5, rounds: int = 8) -> torch.Tensor:
    """Returns the training rows (advantages, pairs and weights are computed on the way)."""
    r = rewards.view(prompts, rollouts)
    adv = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, unbiased=True, keepdim=True) + eps)
    adv = torch.where((r.amax(dim=1) == r.amin(dim=1)).unsqueeze(1), torch.zeros_like(adv), adv)
    m = int((rollouts // 2) * keep_ratio)
    order = torch.sort(adv, dim=1, descending=True, stable=True).indices
    base = (torch.arange(prompts, device=rewards.device) * rollouts).unsqueeze(1)
    pairs = torch.stack([order[:, :m] + base, order.flip(1)[:, :m] + base], dim=-1).reshape(-1, 2)
    flat = adv.reshape(-1)
    weights = flat[pairs[:, 0]].abs() + flat[pairs[:, 1]].abs()
    k = pairs.shape[0]
    q = weights.double()
    per_round = min(k // rounds, int(torch.count_nonzero(q)))
    if per_round == 0:
        return torch.empty(0, dtype=torch.int64, device=rewards.device)
    p = q / q.sum()
    keys = torch.empty((rounds, k), dtype=torch.float64, device=rewards.device)
    keys = keys.exponential_(generator=generator) / p
    picked = torch.topk(keys, per_round, dim=1, largest=False, sorted=True).indices.reshape(-1)
    return pairs[picked].reshape(-1)


def time_size(prompts: int, rollouts: int, runs: int) -> float:
    device = torch.device("cuda")
    rewards = torch.from_numpy(synthetic_rewards(prompts, rollouts)).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    for _ in range(3):
        select(rewards, prompts, rollouts, generator)
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        select(rewards, prompts, rollouts, generator)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e3)  # microseconds
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("torch_gpu.py: no CUDA device (or PyTorch without CUDA)")
        return 0
    print(f"# PyTorch {torch.__version__} on {torch.cuda.get_device_name()}")
    for prompts, rollouts in SIZES:
        us = time_size(prompts, rollouts, args.runs)
        print(f"torch_gpu/prompts:{prompts}/rollouts:{rollouts}  {us:10.1f} us   "
              f"(compare BM_Pipeline_CUDA/prompts:{prompts}/rollouts:{rollouts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
