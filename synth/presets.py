"""Each task's PGD settings under a preset, as one value: `settings(model, task, preset, **overrides)`.

Presets:
- `paper`: the authors' notebook settings and method;
- `fast`: the paper's method, with the paper's path length covered in fewer, linearly decaying steps;
- `ours` (the default): changes to the paper's method that measure better (`python -m benchmarks.evaluate`,
  docs/results.md); tasks we could not measure keep the paper's settings.

Values are for 224 px models (eps is an L2 radius in [0,1]-pixel units); for other input sizes eps and step scale
with sqrt(pixels), i.e. with the side. Where the authors gave their own values for a data set (CIFAR-10
generation) those are used as they are. Recipe choices (where a task starts, which hard constraints it has) are
the tasks' own arguments; `recipe(task, preset)` gives their preset defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypedDict

PRESETS = ("ours", "paper", "fast")
SCHEDULES = ("constant", "linear")
PRECISIONS = ("auto", "bf16", "fp32")


def whole_number(value, name: str, lo: int = 1, hi: int = 2**63 - 1) -> int:
    """`value` as an int when it is a whole number from lo to hi (NaN, text, 2.5, True are not); else a ValueError
    that names it."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Settings:
    """What `synth.pgd` needs to know of a run besides its loss and start; checked when made."""

    eps: float  # L2 radius of the ball around the start, [0,1]-pixel units
    step_size: float  # length of one step (the first one under the linear schedule)
    steps: int
    schedule: str = "constant"  # 'linear': the step decays to 0 over the run

    def __post_init__(self):
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        if not self.step_size > 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size}")
        object.__setattr__(self, "steps", whole_number(self.steps, "steps"))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")

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


class Overrides(TypedDict, total=False):
    """Every task's keyword arguments that override its preset's Settings (None: the preset's value)."""

    eps: float | None
    step_size: float | None
    steps: int | None
    schedule: str | None


def _presets(paper: Settings, fast_steps: int, ours: Settings | None = None) -> dict[str, Settings]:
    return {"paper": paper, "fast": paper.faster(fast_steps), "ours": ours or paper}


S = Settings
AT_224 = {  # task -> preset -> Settings, for 224 px models
    "generate": _presets(S(40.0, 1.0, 60), 30),
    "inpaint": _presets(S(21.6, 0.1, 720), 100, ours=S(7.0, 1.4, 20, "linear")),
    "translate": _presets(S(80.0, 0.5, 200), 60),
    "super_resolve": _presets(S(8.0, 1.0, 40), 20, ours=S(5.95, 2.975, 8, "linear")),  # x8 and other factors
    "sketch_to_image": _presets(S(40.0, 1.0, 60), 30),
    "paint_features": _presets(S(70.0, 1.0, 140), 60),
    "visualize": _presets(S(40.0, 1.0, 60), 30),
}
SUPER_RESOLVE_X7 = _presets(S(15.0, 1.0, 50), 25, ours=AT_224["super_resolve"]["ours"])  # the authors' x7 values
NATIVE = {  # data set -> task -> preset -> Settings at the data set's own size (not scaled)
    "cifar10": {"generate": _presets(S(30.0, 0.5, 60), 30, ours=S(2.5, 0.5, 20, "linear"))},
}

RECIPES = {  # task -> preset -> defaults of the task's recipe arguments ('fast' is the paper's method)
    "inpaint": {"paper": dict(fill="mean", hard=False), "ours": dict(fill="texture", hard=True)},
    "super_resolve": {
        "paper": dict(start="nearest", consistent=False),
        "ours": dict(start="backprojected", consistent=True),
    },
}


def check_preset(preset: str | None) -> str:
    preset = preset or "ours"
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return preset


def settings(model, task: str, preset: str | None = None, *, factor: int | None = None, **overrides) -> Settings:
    """The Settings `task` uses on `model` under `preset`, then any overrides that are not None
    (eps, step_size, steps, schedule). `factor` picks super-resolution's x7 values."""
    preset = check_preset(preset)
    native = NATIVE.get(model.dataset, {})
    if task in native:
        base = native[task][preset]
    elif task in AT_224:
        table = SUPER_RESOLVE_X7 if task == "super_resolve" and factor == 7 else AT_224[task]
        base = table[preset].scaled(model.input_size / 224)
    else:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(AT_224)}")
    return base.overridden(**overrides)


def recipe(task: str, preset: str | None = None, **chosen) -> dict:
    """The recipe arguments of `task` under `preset`, with the caller's choices (those not None) on top."""
    preset = check_preset(preset)
    defaults = RECIPES[task]
    return {**defaults.get(preset, defaults["paper"]), **{k: v for k, v in chosen.items() if v is not None}}
