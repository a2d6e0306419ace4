"""What a task call will do, known before it does any: `plan(task, model, *args, **kwargs)` takes a task and its own
arguments and returns a `Plan` - the PGD settings and the model-input images PGD will work on (samples, crops,
tiles) - so that a caller (the app, the CLI) can size a request, and refuse it, before any work. On the way it
checks what the task would refuse: a mask that is empty or of another size, an output over MAX_OUTPUT_PIXELS.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

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

    def memory(self, image_bytes: int, batch_pixels: int) -> int:
        """Bytes the task holds at its peak, about: PGD's batch (`image_bytes` per model input, `activation_bytes`;
        super-resolution works its tiles about `batch_pixels` model-input pixels at a time, the other tasks all
        their rows at once) and the task's images at full size (HELD_BYTES per output pixel). An upper estimate:
        measured peaks were 0.66-0.96x of it (docs/app.md, Limits)."""
        rows = self.images
        if self.task == "super_resolve":
            rows = min(rows, max(1, batch_pixels // self.side**2))
        pixels = sum(w * h for w, h in self.outputs)
        return rows * image_bytes + pixels * HELD_BYTES.get(self.task, HELD_BYTES["other"])

    def check_outputs(self, limit: int = MAX_OUTPUT_PIXELS) -> None:
        """An ImageError when an image the task enlarges would be over `limit` pixels (an output the size of its
        input is bounded by the input limits instead)."""
        for (w, h), enlarged in zip(self.outputs, self.enlarged):
            if enlarged:
                refuse_large_output(w, h, limit)


# bytes a task holds per output pixel besides PGD's batch (the original, start and result in float32, the images it
# writes): the peak resident memory of 12 MP inpainting (+316 MB: 26 B a pixel) and of a 4 MP super-resolution
# output less its tile batch (+300 MB: 75), rounded up
HELD_BYTES = {"super_resolve": 80, "other": 30}


def activation_bytes(model) -> int:
    """float32 bytes of every layer's output for one model input: about what PGD keeps per image for its backward
    pass (kept on the model: measured once)."""
    if getattr(model, "_activation_bytes", None) is None:
        total = []
        leaves = [m for m in model.modules() if not list(m.children())]
        hooks = [
            m.register_forward_hook(lambda m, a, out: total.append(out.numel() if torch.is_tensor(out) else 0))
            for m in leaves
        ]
        try:
            with torch.no_grad():
                model.logits(
                    torch.zeros(1, 3, model.input_size, model.input_size, device=next(model.parameters()).device)
                )
        finally:
            for h in hooks:
                h.remove()
        model._activation_bytes = 4 * sum(total)
    return model._activation_bytes


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
