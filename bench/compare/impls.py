"""The Shuffle-R1 selection in Python, written the way RL trainers write it today.

Three implementations of the same computation, for comparison with shuffle_r1:

1. normalize: GRPO advantages per group, (r - mean) / (std + eps), std unbiased (ddof 1),
   eps 1e-6, in float32 as trainers hold rewards; a zero-variance group (max == min) gets
   advantages of exactly 0 (as shuffle_r1 does; the release leaves a float32 residue there).
2. PTS: per group, rows sorted by advantage descending, stable (ties keep batch order); pair k is
   (k-th highest, k-th lowest); the first M = int(keep_ratio * n/2) pairs are kept, in group
   order then rank; pair weight = |A_hi| + |A_lo|.
3. ABS with the power transform: mass q = w**coeff, p = q / sum q; S rounds, each draws
   T = K // S distinct pairs by successive sampling without replacement with probabilities p,
   in draw order; when fewer than T pairs have q > 0, rounds shrink to that many (shuffle_r1's
   `shrink` policy, which the C++ benchmark uses); the training rows are each drawn pair's hi
   then lo row.

The implementations:

- `LoopImpl`: a per-row loop over dictionaries and lists of torch scalars, as in verl/EasyR1's
  `compute_grpo_outcome_advantage` and the Shuffle-R1 release's PTS, with
  `numpy.random.choice(..., replace=False, p=p)` per round as the release's ABS.
- `NumpyImpl`: vectorized NumPy on the uniform (prompt-major) layout: reshape to (G, n),
  a stable argsort, Efraimidis-Spirakis keys E / p for all rounds at once, argpartition.
- `TorchImpl`: the same in PyTorch on CPU with `torch.set_num_threads(1)`.

Advantages and pairs are deterministic and agree across the three (and with `sr1 select`) up to
float32 rounding of the advantages; the ABS draws are random (seeded), so the orders differ
between implementations but follow the same distribution.

Each implementation has three methods: `prepare(rewards, prompts, rollouts)` builds its native
inputs (not timed), `run(inputs, seed)` is the timed selection, and `collect(result)` converts
its native result to a `Selection` of NumPy arrays (not timed).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Config:
    """The selection's parameters (shuffle_r1's defaults, with on_short = shrink)."""

    eps: float = 1e-6
    keep_ratio: float = 0.5
    rounds: int = 8
    coeff: float = 1.0


@dataclass
class Selection:
    """A selection as NumPy arrays, for checks.

    advantages: (B,) float32; pairs: (K, 2) int64 [hi, lo] rows; weights: (K,) float;
    order: (S * T,) int64 pair indices in draw order; rows: (2 * S * T,) int64 training rows.
    """

    advantages: np.ndarray
    pairs: np.ndarray
    weights: np.ndarray
    order: np.ndarray
    rows: np.ndarray
    per_round: int


def kept_pairs_per_group(rollouts: int, keep_ratio: float) -> int:
    """M = int(keep_ratio * (n // 2)), the release's bucket size."""
    return int((rollouts // 2) * keep_ratio)


def round_size(weights_nonzero: int, pairs: int, rounds: int) -> int:
    """T = K // S, shrunk to the number of pairs with non-zero mass."""
    return min(pairs // rounds, weights_nonzero)


class LoopImpl:
    """Per-row loops over dicts and lists of torch scalars, as GRPO trainers and the release."""

    name = "loop"

    def __init__(self, config: Config = Config()):
        self.config = config

    def prepare(self, rewards: np.ndarray, prompts: int, rollouts: int):
        """A float32 score tensor and a per-row prompt id list (verl's `uid`)."""
        scores = torch.from_numpy(np.ascontiguousarray(rewards, dtype=np.float32)).clone()
        index = [f"prompt-{b // rollouts}" for b in range(prompts * rollouts)]
        return scores, index

    def run(self, inputs, seed: int):
        """Returns (advantage tensor, kept pair dicts, drawn pair dicts, training rows)."""
        scores, index = inputs
        cfg = self.config
        scores = scores.clone()
        id2score = defaultdict(list)
        for i in range(scores.shape[0]):
            id2score[index[i]].append({"score": scores[i], "index": i})

        kept = []
        for uid, items in id2score.items():
            group = torch.stack([item["score"] for item in items])
            if bool(group.max() == group.min()):
                mean, std, constant = group[0], torch.tensor(1.0), True
            else:
                mean, std, constant = torch.mean(group), torch.std(group), False
            for item in items:
                item["adv"] = (torch.tensor(0.0) if constant
                               else (item["score"] - mean) / (std + cfg.eps))
                scores[item["index"]] = item["adv"]
            items.sort(key=lambda item: item["adv"], reverse=True)  # stable
            pairs = []
            left, right = 0, len(items) - 1
            while left < right:
                hi, lo = items[left], items[right]
                pairs.append({"pair_index": [hi["index"], lo["index"]],
                              "weight": (abs(hi["adv"]) + abs(lo["adv"])).item()})
                left += 1
                right -= 1
            kept.extend(pairs[:int(len(pairs) * cfg.keep_ratio)])

        drawn = []
        if kept:
            q = np.array([pair["weight"] for pair in kept], dtype=np.float64) ** cfg.coeff
            per_round = round_size(int(np.count_nonzero(q)), len(kept), cfg.rounds)
            if per_round > 0:
                p = q / q.sum()
                rng = np.random.RandomState(seed)
                for _ in range(cfg.rounds):
                    for j in rng.choice(len(kept), per_round, replace=False, p=p):
                        drawn.append(dict(kept[j], pair_id=int(j)))
        rows = []
        for pair in drawn:
            rows.extend(pair["pair_index"])
        return scores, kept, drawn, rows

    def collect(self, result) -> Selection:
        scores, kept, drawn, rows = result
        order = np.array([pair["pair_id"] for pair in drawn], dtype=np.int64)
        return Selection(
            advantages=scores.numpy().astype(np.float32),
            pairs=np.array([pair["pair_index"] for pair in kept], dtype=np.int64).reshape(-1, 2),
            weights=np.array([pair["weight"] for pair in kept], dtype=np.float64),
            order=order, rows=np.array(rows, dtype=np.int64),
            per_round=len(order) // self.config.rounds)


class NumpyImpl:
    """Vectorized NumPy on the uniform layout (G groups of n rows, prompt-major)."""

    name = "numpy"

    def __init__(self, config: Config = Config()):
        self.config = config

    def prepare(self, rewards: np.ndarray, prompts: int, rollouts: int):
        return np.ascontiguousarray(rewards, dtype=np.float32), prompts, rollouts

    def run(self, inputs, seed: int):
        """Returns (advantages, pairs, weights, order, rows, per_round)."""
        rewards, prompts, rollouts = inputs
        cfg = self.config
        r = rewards.reshape(prompts, rollouts)
        mean = r.mean(axis=1, keepdims=True)
        std = r.std(axis=1, ddof=1, keepdims=True)
        adv = (r - mean) / (std + np.float32(cfg.eps))
        adv[r.max(axis=1) == r.min(axis=1)] = 0.0

        m = kept_pairs_per_group(rollouts, cfg.keep_ratio)
        order_in_group = np.argsort(-adv, axis=1, kind="stable")
        base = (np.arange(prompts, dtype=np.int64) * rollouts)[:, None]
        hi = order_in_group[:, :m] + base
        lo = order_in_group[:, ::-1][:, :m] + base
        pairs = np.stack([hi, lo], axis=-1).reshape(-1, 2)
        flat = adv.reshape(-1)
        weights = np.abs(flat[pairs[:, 0]]) + np.abs(flat[pairs[:, 1]])

        k = pairs.shape[0]
        q = weights.astype(np.float64) ** cfg.coeff
        per_round = round_size(int(np.count_nonzero(q)), k, cfg.rounds)
        if per_round > 0:
            p = q / q.sum()
            rng = np.random.default_rng(seed)
            with np.errstate(divide="ignore"):
                keys = rng.standard_exponential((cfg.rounds, k)) / p  # p = 0: never drawn
            best = np.argpartition(keys, per_round - 1, axis=1)[:, :per_round]
            by_key = np.argsort(np.take_along_axis(keys, best, axis=1), axis=1)
            order = np.take_along_axis(best, by_key, axis=1).reshape(-1)
        else:
            order = np.empty(0, dtype=np.int64)
        rows = pairs[order].reshape(-1)
        return flat, pairs, weights, order, rows, per_round

    def collect(self, result) -> Selection:
        adv, pairs, weights, order, rows, per_round = result
        return Selection(adv.astype(np.float32), pairs, weights, order, rows, per_round)


class TorchImpl:
    """Vectorized PyTorch on CPU, one thread, on the uniform layout."""

    name = "torch"

    def __init__(self, config: Config = Config()):
        self.config = config
        torch.set_num_threads(1)

    def prepare(self, rewards: np.ndarray, prompts: int, rollouts: int):
        return (torch.from_numpy(np.ascontiguousarray(rewards, dtype=np.float32)).clone(),
                prompts, rollouts)

    def run(self, inputs, seed: int):
        """Returns (advantages, pairs, weights, order, rows, per_round) as tensors."""
        rewards, prompts, rollouts = inputs
        cfg = self.config
        r = rewards.view(prompts, rollouts)
        mean = r.mean(dim=1, keepdim=True)
        std = r.std(dim=1, unbiased=True, keepdim=True)
        adv = (r - mean) / (std + cfg.eps)
        adv[r.amax(dim=1) == r.amin(dim=1)] = 0.0

        m = kept_pairs_per_group(rollouts, cfg.keep_ratio)
        order_in_group = torch.sort(adv, dim=1, descending=True, stable=True).indices
        base = (torch.arange(prompts, dtype=torch.int64) * rollouts).unsqueeze(1)
        hi = order_in_group[:, :m] + base
        lo = order_in_group.flip(1)[:, :m] + base
        pairs = torch.stack([hi, lo], dim=-1).reshape(-1, 2)
        flat = adv.reshape(-1)
        weights = flat[pairs[:, 0]].abs() + flat[pairs[:, 1]].abs()

        k = pairs.shape[0]
        q = weights.double() ** cfg.coeff
        per_round = round_size(int(torch.count_nonzero(q)), k, cfg.rounds)
        if per_round > 0:
            p = q / q.sum()
            gen = torch.Generator().manual_seed(seed)
            keys = torch.empty((cfg.rounds, k), dtype=torch.float64).exponential_(generator=gen) / p
            order = torch.topk(keys, per_round, dim=1, largest=False, sorted=True).indices
            order = order.reshape(-1)
        else:
            order = torch.empty(0, dtype=torch.int64)
        rows = pairs[order].reshape(-1)
        return flat, pairs, weights, order, rows, per_round

    def collect(self, result) -> Selection:
        adv, pairs, weights, order, rows, per_round = result
        return Selection(adv.numpy().astype(np.float32), pairs.numpy(),
                         weights.double().numpy(), order.numpy(), rows.numpy(), per_round)


#: Every implementation, slowest first.
IMPLEMENTATIONS = (LoopImpl, NumpyImpl, TorchImpl)


def select(impl, rewards: np.ndarray, prompts: int, rollouts: int, seed: int = 0) -> Selection:
    """Runs one implementation end to end and returns its Selection (convenience for checks)."""
    return impl.collect(impl.run(impl.prepare(rewards, prompts, rollouts), seed))


def differences(a: Selection, b: Selection, atol: float = 1e-5) -> list[str]:
    """What differs between the deterministic parts of two selections (empty: they agree).

    Advantages and weights may differ by float32 rounding (`atol`); pairs must be identical.
    """
    problems = []
    if a.advantages.shape != b.advantages.shape:
        return [f"advantages have shapes {a.advantages.shape} and {b.advantages.shape}"]
    gap = float(np.max(np.abs(a.advantages.astype(np.float64) - b.advantages), initial=0.0))
    if gap > atol:
        problems.append(f"advantages differ by up to {gap:.3g} (> {atol})")
    if a.pairs.shape != b.pairs.shape or not np.array_equal(a.pairs, b.pairs):
        problems.append(f"pairs differ ({a.pairs.shape[0]} and {b.pairs.shape[0]} pairs)")
    elif np.max(np.abs(a.weights - b.weights.astype(np.float64)), initial=0.0) > 2 * atol:
        problems.append("pair weights differ")
    if a.per_round != b.per_round or a.order.shape != b.order.shape:
        problems.append(f"rounds have {a.per_round} and {b.per_round} pairs")
    return problems


def invariant_violations(sel: Selection, config: Config = Config()) -> list[str]:
    """Checks one selection's ABS output against its pairs (empty: all invariants hold).

    order has rounds * per_round entries, distinct within a round, never a zero-weight pair;
    rows are the drawn pairs' (hi, lo) rows in order; hi advantage >= lo advantage.
    """
    problems = []
    k, t = sel.pairs.shape[0], sel.per_round
    if sel.order.shape != (config.rounds * t,):
        problems.append(f"order has {sel.order.size} entries, expected {config.rounds} x {t}")
        return problems
    if t > 0:
        for s, chunk in enumerate(sel.order.reshape(config.rounds, t)):
            if len(set(chunk.tolist())) != t:
                problems.append(f"round {s} draws a pair twice")
            if chunk.min() < 0 or chunk.max() >= k:
                problems.append(f"round {s} draws a pair index outside [0, {k})")
            elif np.any(sel.weights[chunk] == 0):
                problems.append(f"round {s} draws a pair of weight 0")
    if not np.array_equal(sel.rows, sel.pairs[sel.order].reshape(-1)):
        problems.append("rows are not the drawn pairs' rows in draw order")
    if k and np.any(sel.advantages[sel.pairs[:, 0]] < sel.advantages[sel.pairs[:, 1]]):
        problems.append("a pair's hi row has a lower advantage than its lo row")
    return problems
