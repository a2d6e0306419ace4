"""Objectives as small composable values (after lucent): `obj(model, x)` -> one loss per example.

class_loss(y) + 10 * masked_fidelity(ref, m)          # inpainting (minimised)
0.1 * feature(k) - 90 * masked_fidelity(ref, m)       # feature painting (maximised)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Fn = Callable[[object, torch.Tensor], torch.Tensor]


class Objective:
    def __init__(self, fn: Fn, name: str):
        self.fn, self.name = fn, name

    def __call__(self, model, x: torch.Tensor) -> torch.Tensor:
        return self.fn(model, x)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(lambda m, x: self(m, x) + other(m, x), f"{self.name} + {other.name}")

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-1 * other)

    def __mul__(self, c: float) -> "Objective":
        return Objective(lambda m, x: c * self(m, x), f"{c}*{self.name}")

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return -1 * self

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def class_loss(labels: torch.Tensor, fake_relu: bool = False) -> Objective:
    """Per-example cross-entropy to `labels` (minimise it to strengthen the class). `labels`: class indices, or a
    (n, classes) boolean mask whose rows are super-classes: a row's log-probability is the log-sum-exp of its
    classes' logits less that of all logits (the paper's Restricted-ImageNet targets on an ImageNet model)."""

    def fn(model, x):
        logits, y = model.logits(x, fake_relu=fake_relu).float(), labels.to(x.device)
        if y.dtype == torch.bool:
            return logits.logsumexp(1) - logits.masked_fill(~y, float("-inf")).logsumexp(1)
        return F.cross_entropy(logits, y, reduction="none")

    return Objective(fn, "class_loss")


def feature(index: int | torch.Tensor, fake_relu: bool = True) -> Objective:
    """Activation of one penultimate-layer feature (per example index allowed)."""

    def fn(model, x):
        rep = model.features(x, fake_relu=fake_relu).float()
        idx = torch.as_tensor(index, device=x.device).long().view(-1, 1).expand(len(x), 1)
        return rep.gather(1, idx)[:, 0]

    return Objective(fn, f"feature[{index if isinstance(index, int) else '...'}]")


def masked_fidelity(ref: torch.Tensor, mask: torch.Tensor) -> Objective:
    """mean over C,H,W of ((x - ref) * (1 - mask))^2 - the authors' penalty (mean over all positions)."""

    def fn(model, x):
        return (((x - ref) * (1 - mask)) ** 2).flatten(1).mean(1)

    return Objective(fn, "masked_fidelity")
