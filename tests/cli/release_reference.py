"""What the Shuffle-R1 authors' release computes for advantages and PTS, re-implemented.

SPEC.md sections 0, 3 and 5 describe the release: per prompt id (groups in order of first
appearance, rows in batch order) it takes the float32 scores, the group mean `torch.mean` and
the unbiased `torch.std` (a group of one row: mean 0, std 1), and the advantage
(score - mean) / (std + eps) with eps = 1e-6, all in float32 torch arithmetic. For PTS it sorts a
group's rows by advantage with Python's stable `sort(reverse=True)`, asserts the group size is
even, pairs the k-th from the front with the k-th from the back ("hi" first), and keeps the first
`int(len(pairs) * (1.0 - purning_ratio))` pairs of the group; pair weights are float32 torch
values: sum |a_hi| + |a_lo|, max of the magnitudes, mean (sum / 2) and pos |max(a_hi, a_lo)|.

shuffle_r1 takes the kept share alpha = 1 - purning_ratio (`--keep-ratio`). Being float32 torch
arithmetic, the release leaves a residue in zero-variance groups (all-0.9 groups get about
-0.056) where shuffle_r1 gives exactly 0; elsewhere the two agree to float32 rounding and choose
the same pairs in the same order.

This is an independent re-implementation from that description, used as the oracle of
tests/cli/test_release.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

EPS = 1e-6


@dataclass
class ReleaseSelection:
    """The release's outputs: float32 advantages per row, kept pairs, and their weights."""

    advantages: np.ndarray
    pairs: list = field(default_factory=list)  # [hi row, lo row], group order then rank
    weights: dict = field(default_factory=lambda: {"sum": [], "max": [], "mean": [], "pos": []})
    zero_variance_groups: list = field(default_factory=list)  # row lists of constant groups


def groups_by_first_appearance(index) -> dict:
    """prompt id -> its rows in batch order; iteration order = first appearance of the id."""
    rows: dict = {}
    for i, uid in enumerate(index):
        rows.setdefault(uid, []).append(i)
    return rows


def group_statistics(scores: torch.Tensor):
    """The release's (mean, std) of one group's float32 scores."""
    if scores.numel() == 1:
        return torch.tensor(0.0), torch.tensor(1.0)
    return torch.mean(scores), torch.std(scores)  # std: unbiased (n - 1)


def release_select(rewards, index, purning_ratio: float = 0.5,
                   eps: float = EPS) -> ReleaseSelection:
    """Advantages and PTS pairs as the release computes them.

    rewards: one float per row (rounded to float32, as the release's score tensor);
    index: one hashable prompt id per row; purning_ratio: the dropped share of pairs.
    Raises AssertionError on a group of odd size, as the release does.
    """
    scores = torch.tensor(np.asarray(rewards, dtype=np.float32))
    advantages = torch.empty_like(scores)
    out = ReleaseSelection(advantages=np.empty(0, dtype=np.float32))
    for rows in groups_by_first_appearance(index).values():
        group = scores[rows]
        mean, std = group_statistics(group)
        adv = (group - mean) / (std + eps)  # float32 element-wise, as per-row scalar code
        advantages[rows] = adv
        if bool(group.max() == group.min()):
            out.zero_variance_groups.append(rows)

        values = adv.tolist()  # exact float32 values as Python floats
        ranked = sorted(range(len(rows)), key=lambda k: values[k], reverse=True)  # stable
        assert len(ranked) % 2 == 0, "Number of responses in a group should be even for pairing"
        group_pairs = []
        for k in range(len(ranked) // 2):
            hi, lo = ranked[k], ranked[len(ranked) - 1 - k]
            a_hi, a_lo = adv[hi], adv[lo]
            total = a_hi.abs() + a_lo.abs()
            group_pairs.append(([rows[hi], rows[lo]], {
                "sum": total.item(),
                "max": torch.max(a_hi.abs(), a_lo.abs()).item(),
                "mean": (total / 2).item(),
                "pos": torch.max(a_hi, a_lo).abs().item(),
            }))
        kept = int(len(group_pairs) * (1.0 - purning_ratio))
        for pair, weights in group_pairs[:kept]:
            out.pairs.append(pair)
            for kind, value in weights.items():
                out.weights[kind].append(value)
    out.advantages = advantages.numpy()
    return out
