"""The one primitive: projected gradient descent on the input image.

    x <- x -/+ step * ball.direction(g)   (L2: g / ||g||; Linf: sign(g))
    x <- project(x)                      (the eps-ball around the start, then [0, 1], then any extra constraint)

as in the authors' `robustness` library (`Attacker`; the threat model is a value, like its `attack_steps.L2Step`):
`pgd(loss, x0, Settings(eps, step_size, steps), ball=L2Ball, constraints=[...], callback=...)`. Every synthesis
task, the training attack and the robustness evaluation call `pgd`; none has a loop of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULES = ("constant", "linear")
MAX_STEPS = 100_000  # far past any task's (the paper's longest: 720 inpainting steps); 10**12 would never end

Loss = Callable[[torch.Tensor], torch.Tensor]  # x (B,C,H,W) in [0,1] -> per-example loss (B,)
Projection = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[["Step"], None]


def whole_number(value, name: str, lo: int = 1, hi: int = 2**63 - 1) -> int:
    """`value` as an int when it is a whole number from lo to hi (NaN, text, 2.5, True are not); else a ValueError
    that names it."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Settings:
    """How far and how long `pgd` runs, checked once, when made."""

    eps: float  # radius of the ball around the start, [0,1]-pixel units
    step_size: float  # length of one step (the first one under the linear schedule)
    steps: int
    schedule: str = "constant"  # 'linear': the step decays to 0 over the run

    def __post_init__(self):
        for name in ("eps", "step_size"):  # inf would run with a ball that holds everything, NaN with nothing
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        object.__setattr__(self, "steps", whole_number(self.steps, "steps", 1, MAX_STEPS))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")

    def step_at(self, i: int) -> float:
        """The length of step i (0-based)."""
        return self.step_size * (1 - i / self.steps) if self.schedule == "linear" else self.step_size

    def scaled(self, factor: float) -> "Settings":
        """eps and step for a model whose side is `factor` times 224 px."""
        return dataclasses.replace(self, eps=self.eps * factor, step_size=self.step_size * factor)

    def faster(self, steps: int) -> "Settings":
        """The same path length (at most two eps-diameters) in `steps` linearly decaying steps: n steps from s0 to
        0 travel s0 * n / 2."""
        path = min(self.step_size * self.steps, 4 * self.eps)
        return Settings(self.eps, 2 * path / steps, steps, "linear")

    def overridden(self, **overrides) -> "Settings":
        """These settings with every override that is not None (checked again)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Step:
    """What the step callback sees: iteration `i` of `steps`, the current iterate and its losses."""

    i: int
    steps: int
    x: torch.Tensor
    loss: torch.Tensor


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


# ---------------------------------------------------------------------- the threat model (robustness: attack_steps)
class Ball(Protocol):
    """The set PGD stays in, around `centre`, and the steepest step in its norm (`ball(centre, eps)` makes one)."""

    def project(self, x: torch.Tensor) -> torch.Tensor: ...
    def direction(self, g: torch.Tensor) -> torch.Tensor: ...
    def random_point(self, generator: torch.Generator | None) -> torch.Tensor: ...


class L2Ball:
    """||x - centre||_2 <= eps per example; steps along g / ||g||."""

    def __init__(self, centre: torch.Tensor, eps: float):
        self.centre, self.eps = centre, eps

    def project(self, x):  # torch.renorm semantics: shrinks, never enlarges
        d = x - self.centre
        return self.centre + d * torch.clamp(self.eps / (_flat_norm(d) + 1e-12), max=1.0)

    def direction(self, g):
        return g / (_flat_norm(g) + 1e-10)

    def random_point(self, generator):
        """A random point of the sphere (drawn on the CPU, so a seed gives the same start on every device)."""
        noise = torch.randn(self.centre.shape, generator=generator, device="cpu").to(self.centre)
        return self.centre + self.eps * noise / _flat_norm(noise)


class LinfBall:
    """|x - centre| <= eps per pixel; steps along sign(g)."""

    def __init__(self, centre: torch.Tensor, eps: float):
        self.centre, self.eps = centre, eps

    def project(self, x):
        return self.centre + (x - self.centre).clamp(-self.eps, self.eps)

    def direction(self, g):
        return g.sign()

    def random_point(self, generator):
        u = torch.rand(self.centre.shape, generator=generator, device="cpu").to(self.centre)
        return self.centre + self.eps * (2 * u - 1)


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
    settings: Settings,
    *,
    ball: type[Ball] = L2Ball,
    constraints: Sequence[Projection] = (),
    maximize: bool = False,
    random_start: bool = False,
    use_best: bool = False,
    precision: str = "auto",
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run PGD from `x0` on a per-example `loss` inside `ball(x0, settings.eps)`; return the final (or, with
    `use_best`, the best) iterate, detached.

    `loss(x)` must return one value per example; the examples are independent (per-example step normalisation),
    so a batch gives the same result as one-by-one calls. `constraints` are extra projections applied after the
    ball and the [0,1] box. The callback gets a `Step` after every update; raise from it to cancel.
    """
    if not isinstance(settings, Settings):
        raise TypeError(f"settings must be a synth.pgd.Settings, got {type(settings).__name__}")
    x0 = x0.detach().float()
    region = ball(x0, settings.eps)
    projections = [region.project, box(0.0, 1.0), *constraints]

    def project(x):
        for p in projections:
            x = p(x)
        return x

    sign = 1.0 if maximize else -1.0
    x = project(region.random_point(generator)) if random_start else x0.clone()
    best = _Best(maximize) if use_best else None
    for i in range(settings.steps):
        ell, g = _loss_and_grad(loss, x, precision)
        if best is not None:
            best.track(x, ell)
        x = project(x + sign * settings.step_at(i) * region.direction(g)).detach()
        if callback is not None:
            callback(Step(i + 1, settings.steps, x, ell))
    if best is not None:
        ell, _ = _loss_and_grad(loss, x, precision, grad=False)
        best.track(x, ell)
        return best.x
    return x
