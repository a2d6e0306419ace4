"""The one primitive: projected gradient descent on the input image.

    x <- x -/+ step * g / ||g||          (L2; sign(g) for Linf)
    x <- project(x)                      (eps-ball around the centre, then [0, 1], then any extra constraint)

as in the authors' `robustness` library (`Attacker`, `L2Step`). Every synthesis task, the training attack
and the robustness evaluation call `pgd`; none has a loop of its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .presets import PRECISIONS, Settings

Loss = Callable[[torch.Tensor], torch.Tensor]  # x (B,C,H,W) in [0,1] -> per-example loss (B,)
Projection = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[["Step"], None]


@dataclass
class Step:
    """What the step callback sees: iteration `i` of `steps`, the current iterate and its losses."""

    i: int
    steps: int
    x: torch.Tensor
    loss: torch.Tensor


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def l2_ball(centre: torch.Tensor, eps: float | torch.Tensor) -> Projection:
    """Shrink x - centre per example to L2 norm <= eps (torch.renorm semantics: never enlarges)."""

    def project(x):
        d = x - centre
        n = _flat_norm(d)
        return centre + d * torch.clamp(eps / (n + 1e-12), max=1.0)

    return project


def linf_ball(centre: torch.Tensor, eps: float) -> Projection:
    return lambda x: centre + (x - centre).clamp(-eps, eps)


def box(lo: float = 0.0, hi: float = 1.0) -> Projection:
    return lambda x: x.clamp(lo, hi)


def keep_outside(ref: torch.Tensor, mask: torch.Tensor) -> Projection:
    """Pixels where mask == 0 are the user's: reset them to `ref` (a hard inpainting/painting constraint)."""
    return lambda x: x * mask + ref * (1 - mask)


def uses_bf16(device: torch.device | str, precision: str = "auto") -> bool:
    """Whether PGD on `device` runs in bf16: asked for, or 'auto' on CUDA with bf16 and CPUs with AVX512/AMX."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    dev = torch.device(device).type
    if dev == "cuda":
        return torch.cuda.is_bf16_supported()
    return dev == "cpu" and torch.backends.cpu.get_cpu_capability() in ("AVX512", "AVX512_BF16", "AMX")


def autocast_for(device: torch.device, precision: str = "auto"):
    """bf16 autocast on `device` where it pays (see `uses_bf16`); fp32 otherwise or when asked."""
    if not uses_bf16(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _random_start(x0: torch.Tensor, eps: float, norm: str, generator) -> torch.Tensor:
    """x0 plus a random point of the eps-ball's surface (L2) or of the eps-cube (Linf); drawn on the CPU."""
    noise = torch.randn(x0.shape, generator=generator, device="cpu").to(x0)
    if norm == "l2":
        return x0 + eps * noise / _flat_norm(noise)
    return x0 + eps * (2 * torch.rand(x0.shape, generator=generator, device="cpu").to(x0) - 1)


def _loss_and_grad(loss: Loss, x: torch.Tensor, precision: str, grad: bool = True):
    """The per-example loss at x and its gradient with respect to x (None when grad=False)."""
    x = x.detach().requires_grad_(grad)
    with torch.set_grad_enabled(grad), autocast_for(x.device, precision):
        ell = loss(x)
    ell = ell.float()
    if ell.shape != (x.shape[0],):
        raise ValueError(f"loss must return one value per example, shape ({x.shape[0]},), got {tuple(ell.shape)}")
    if not grad:
        return ell, None
    (g,) = torch.autograd.grad(ell.sum(), x)
    return ell.detach(), g


class _Best:
    """The best iterate seen so far, per example (lowest loss, or highest when maximising)."""

    def __init__(self, maximize: bool):
        self.maximize, self.x, self.loss = maximize, None, None

    def track(self, x: torch.Tensor, ell: torch.Tensor) -> None:
        if self.x is None:
            self.x, self.loss = x.clone(), ell.clone()
            return
        better = (ell > self.loss) if self.maximize else (ell < self.loss)
        self.x[better] = x[better]
        self.loss[better] = ell[better]


def pgd(
    loss: Loss,
    x0: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    maximize: bool = False,
    norm: str = "l2",
    centre: torch.Tensor | None = None,
    constraints: Sequence[Projection] = (),
    random_start: bool = False,
    use_best: bool = False,
    schedule: str = "constant",
    precision: str = "auto",
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run PGD from `x0` on a per-example `loss`; return the final (or best) iterate, detached.

    `loss(x)` must return one value per example; the examples are independent (per-example step
    normalisation), so a batch gives the same result as one-by-one calls. The ball is around `centre`
    (default: `x0`); `constraints` are extra projections applied after the ball and the [0,1] box.
    `schedule='linear'` decays the step linearly to 0 over the run (a faster schedule for long tasks).
    The callback gets a `Step` after every update; raise from it to cancel.
    """
    Settings(eps, step_size, steps, schedule)  # checks them
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")

    x0 = x0.detach().float()
    centre = x0 if centre is None else centre.detach().float()
    ball = l2_ball(centre, eps) if norm == "l2" else linf_ball(centre, eps)
    projections = [ball, box(0.0, 1.0), *constraints]

    def project(x):
        for p in projections:
            x = p(x)
        return x

    sign = 1.0 if maximize else -1.0
    x = project(_random_start(x0, eps, norm, generator)) if random_start else x0.clone()
    best = _Best(maximize) if use_best else None
    for i in range(steps):
        ell, g = _loss_and_grad(loss, x, precision)
        if best is not None:
            best.track(x, ell)
        lr = step_size * (1 - i / steps) if schedule == "linear" else step_size
        d = g / (_flat_norm(g) + 1e-10) if norm == "l2" else g.sign()
        x = project(x + sign * lr * d).detach()
        if callback is not None:
            callback(Step(i + 1, steps, x, ell))
    if best is not None:
        ell, _ = _loss_and_grad(loss, x, precision, grad=False)
        best.track(x, ell)
        return best.x
    return x
