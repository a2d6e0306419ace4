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

from typing import TypedDict

from .pgd import Settings

PRESETS = ("ours", "paper", "fast")


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
        "paper": dict(start="nearest", consistent=False, detail=0),
        "ours": dict(start="backprojected", consistent=True, detail=0.05),
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
