"""What a task call will do, known before it does any: `plan(task, model, *args, **kwargs)` takes a task and its own
arguments and returns a `Plan` - the PGD settings and the model-input images PGD will work on (samples, crops,
tiles) - so that a caller (the app, the CLI) can size a request, and refuse it, before any work. On the way it
checks what the task would refuse: a mask that is empty or of another size, an output over MAX_OUTPUT_PIXELS.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from .images import MAX_OUTPUT_PIXELS, ImageError, check_mask, load_image, read_mask
from .pgd import Settings, whole_number
from .photos import as_list, squares_for
from .presets import settings
from .tiles import Tiles


@dataclass(frozen=True)
class Plan:
    task: str
    settings: Settings
    side: int  # the model's input side
    rows: tuple[int, ...]  # model-input images PGD works on, per output image
    outputs: tuple[tuple[int, int], ...]  # (width, height) of each output image
    whole: tuple[bool, ...]  # per output: worked as one row of all of it (not in crops or tiles)
    enlarged: tuple[bool, ...]  # per output: made larger than its input (super-resolution): what output limits bound

    @property
    def images(self) -> int:
        """Model-input images PGD works on in all."""
        return sum(self.rows)

    @property
    def pixel_steps(self) -> int:
        """The PGD work: model-input pixels x steps (what a request costs, on one model)."""
        return self.images * self.side**2 * self.settings.steps

    def check_outputs(self, limit: int = MAX_OUTPUT_PIXELS) -> None:
        """An ImageError when an image the task enlarges would be over `limit` pixels (an output the size of its
        input is bounded by the input limits instead)."""
        for (w, h), enlarged in zip(self.outputs, self.enlarged):
            if enlarged:
                refuse_large_output(w, h, limit)


def refuse_large_output(w: int, h: int, limit: int = MAX_OUTPUT_PIXELS) -> None:
    """An ImageError (the input is too large for its output) when a w x h output is over `limit` pixels."""
    if w * h > limit:
        raise ImageError(f"output would be {w}x{h}: over {limit / 10**6:g} megapixels; use a smaller image or factor")


def plan(task: Callable, model, *args, **kwargs) -> Plan:
    """The Plan of `task(model, *args, **kwargs)` (any task of `synth.tasks`), without running it."""
    bound = inspect.signature(task).bind(model, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    name = task.__name__
    factor = whole_number(a["factor"], "factor", 2, 16) if name == "super_resolve" else None
    s = settings(model, name, a["preset"], factor=factor, **a.get("overrides", {}))
    return Plan(name, s, model.input_size, *zip(*_SIZING.get(name, _one_per_image)(model, a, factor)))


# task -> (model, its bound arguments, factor) -> [(rows, (width, height), whole, enlarged) per output image]
def _samples(model, a, factor):
    return [(1, (model.input_size,) * 2, True, False)] * whole_number(a["n"], "n", hi=10_000)


def _crops(model, a, allow_full: bool):
    images, masks = as_list(a["image"])[0], as_list(a["mask"])[0]
    if len(masks) != len(images):
        raise ValueError(f"{len(masks)} masks for {len(images)} images")
    out = []
    for image, mask in zip(images, masks):
        size = load_image(image).size
        m = read_mask(mask, size)
        check_mask(m, allow_full=allow_full)
        squares = squares_for(m, model.input_size)
        out.append((len(squares), size, squares == [(0, 0, size[1], size[0])], False))
    return out


def _tiles(model, a, factor):
    out = []
    for im in as_list(a["image"])[0]:
        w, h = load_image(im).size
        refuse_large_output(w * factor, h * factor)  # synth's own limit, before its tiles are counted
        tiles = Tiles((h * factor, w * factor), model.input_size)
        out.append((tiles.count, (w * factor, h * factor), tiles.fits, True))
    return out


def _one_per_image(model, a, factor, at_model_size=False):
    images = as_list(a["drawing"] if "drawing" in a else a["image"])[0]
    sizes = [load_image(im).size for im in images]  # read even at model size: a bad file is refused before work
    return [(1, (model.input_size,) * 2 if at_model_size else size, True, False) for size in sizes]


_SIZING = {
    "generate": _samples,
    "inpaint": lambda model, a, factor: _crops(model, a, allow_full=False),
    "paint_features": lambda model, a, factor: _crops(model, a, allow_full=True),  # may paint everywhere
    "super_resolve": _tiles,
    "visualize": lambda model, a, factor: _one_per_image(model, a, factor, at_model_size=True),
}
