"""The paper's tasks, each a short recipe: load the inputs -> start image -> objective -> constraints -> `pgd` ->
paste the result back into the photo.

Images are PIL images, paths or arrays; a list is a batch and gives a list back, one image gives one result.
Every task takes `preset` ('ours', the default; 'paper'; 'fast'), overrides of the preset's PGD settings
(`eps`, `step_size`, `steps`, `schedule`: see `synth.presets`), `precision` and a per-step `callback`
(a `synth.pgd.Step`; raise from it to cancel). Recipe choices (`fill`, `hard`, `start`, `consistent`) default to
the preset's (`synth.presets.recipe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .exemplar import exemplar_fill
from .images import load_image, load_mask, resize, resize_mask, to_pil, to_tensor
from .objectives import class_loss, masked_fidelity
from .objectives import feature as feature_objective
from .pgd import Settings, Step, autocast_for, keep_outside, pgd, uses_bf16, whole_number
from .photos import Crops, as_list, load_batch, one_or_many, paste_residual
from .planning import refuse_large_output
from .presets import recipe, settings
from .seeds import seeds_for
from .starts import FILLS, INPAINT_FILLS, consistent_with, held_to_detail, upsample
from .tiles import Tiles

if TYPE_CHECKING:
    from typing import Unpack

    from .presets import Overrides


# --------------------------------------------------------------------------------------------- shared parts
# Thousands of tiles (super-resolution of a photo on a 32 px model) are worked in batches of about this many
# model-input pixels: a batch whose activations outgrow the CPU's cache is slower per image (bench_photos.py).
TILE_BATCH_PIXELS = 512 * 32 * 32


def _device(model):
    return next(model.parameters()).device


def _targets(model, label, n: int) -> torch.Tensor:
    """The targets of n images from a class or super-class (name or index) for all, or a list of n: class indices,
    or, where any is a super-class, a (n, classes) mask of the classes each stands for (`class_loss`)."""
    classes = [model.target_classes(lab) for lab in _n_labels(label, n)]
    if all(len(c) == 1 for c in classes):
        return torch.tensor([c[0] for c in classes])
    mask = torch.zeros(n, model.num_classes, dtype=torch.bool)
    for row, c in enumerate(classes):
        mask[row, c] = True
    return mask


def _n_labels(label, n: int) -> list:
    labels, _ = as_list(label)
    labels = labels * n if len(labels) == 1 else labels
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    return labels


def _labels(model, label, x: torch.Tensor, precision="auto", photo_of: torch.Tensor | None = None) -> torch.Tensor:
    """The targets for the batch x (`_targets`): `label`, or the model's prediction when it is None. `photo_of`:
    each row's photo, when a photo gives several rows (crops), so that a label per photo holds for all its rows."""
    if label is None:
        return predict(model, x, precision)
    if photo_of is None:
        return _targets(model, label, len(x))
    return _targets(model, label, int(photo_of.max()) + 1)[photo_of]


@torch.no_grad()
def predict(model, x: torch.Tensor, precision="auto") -> torch.Tensor:
    """The class each row of x is predicted, by the copy of the model that PGD then runs on (`optimise`), in
    batches of about TILE_BATCH_PIXELS."""
    net, dev = _synthesis_copy(model, precision), _device(model)
    with autocast_for(dev, precision):
        return torch.cat([net.logits(_on(part, dev)).argmax(1).cpu() for part in x.split(_batch_rows(x))])


def _batch_rows(x: torch.Tensor) -> int:
    """How many rows of x make a batch of about TILE_BATCH_PIXELS."""
    return max(1, TILE_BATCH_PIXELS // (x.shape[-2] * x.shape[-1]))


def _synthesis_copy(model, precision):
    """What tasks run the model as: its synthesis copy (BatchNorm folded; bf16 weights where PGD runs in bf16),
    or the model itself while it is training."""
    if model.training:
        return model
    return model.for_synthesis(torch.bfloat16 if uses_bf16(_device(model), precision) else torch.float32)


def _on(x: torch.Tensor, dev) -> torch.Tensor:
    return x.to(dev).contiguous(memory_format=torch.channels_last)


def optimise(
    model,
    objective,
    x0: torch.Tensor,
    s: Settings,
    *,
    constraints=(),
    maximize=False,
    use_best=True,
    precision="auto",
    callback=None,
):
    """`pgd` on `objective(model, x)` from x0 with settings `s`, on the model's synthesis copy and device (the best
    iterate unless `use_best=False`); the result on the CPU."""
    net = _synthesis_copy(model, precision)
    return pgd(
        lambda x: objective(net, x),
        _on(x0, _device(model)),
        s,
        constraints=constraints,
        maximize=maximize,
        use_best=use_best,
        precision=precision,
        callback=callback,
    ).cpu()


def _generator(seed):
    return None if seed is None else torch.Generator().manual_seed(whole_number(seed, "seed", lo=0))


# --------------------------------------------------------------------------------------------- tasks
def classify(model, image, top: int = 5) -> list[tuple[str, float]]:
    """Top classes with probabilities for one image (resized to the model's input)."""
    x = resize(to_tensor(load_image(image)), model.input_size)
    with torch.no_grad():
        p = model.logits(x.to(_device(model))).float().softmax(1)[0].cpu()
    v, i = p.topk(min(top, len(p)))
    return [(model.class_names[j], float(s)) for s, j in zip(v, i)]


def generation_classes(model, label=None, n: int = 1, seed: int | None = 0) -> list[str]:
    """The class (or super-class) names `generate(model, label, n, seed)` produces, in order (random classes when
    label is None)."""
    if label is None:
        return [model.class_names[i] for i in _generation_labels(model, label, n, _generator(seed))]
    return [model.target_name(lab) for lab in _n_labels(label, whole_number(n, "n", hi=10_000))]


def _generation_labels(model, label, n: int, g) -> torch.Tensor:
    n = whole_number(n, "n", hi=10_000)
    if label is None:
        return torch.randint(0, model.num_classes, (n,), generator=g)
    return _targets(model, label, n)


def _seed_classes(model, targets: torch.Tensor, g) -> torch.Tensor:
    """A class per generated image whose seed it starts from: its target, or for a super-class one of its classes
    drawn at random (those the seed bank covers, where it covers any): a draw from the mixture of their seeds."""
    if targets.dtype != torch.bool:
        return targets
    bank = model.seed_bank
    covered = (
        bank.covers(torch.arange(model.num_classes))
        if bank is not None
        else torch.zeros(model.num_classes, dtype=torch.bool)
    )
    picks = []
    for row in targets:
        members = (row & covered).nonzero()[:, 0] if (row & covered).any() else row.nonzero()[:, 0]
        picks.append(members[torch.randint(len(members), (1,), generator=g)])
    return torch.cat(picks)


def generate(
    model,
    label=None,
    n: int = 1,
    seed: int | None = 0,
    *,
    return_seeds=False,
    preset=None,
    precision="auto",
    callback=None,
    **overrides: Unpack[Overrides],
):
    """n class-conditional samples: a seed drawn from the class Gaussian, then the class loss minimised in an
    eps-ball around it. `label`: a class or super-class (name or index), a list of n, or None for random classes."""
    g = _generator(seed)
    labels = _generation_labels(model, label, n, g)
    s = settings(model, "generate", preset, **overrides)
    x0 = seeds_for(model, _seed_classes(model, labels, g), g)
    x = optimise(model, class_loss(labels), x0, s, precision=precision, callback=callback)
    imgs = [to_pil(t) for t in x]
    return (imgs, [to_pil(t) for t in x0]) if return_seeds else imgs


def inpaint(
    model,
    image,
    mask,
    label=None,
    *,
    fill=None,
    hard=None,
    weight: float = 10.0,
    seed: int = 0,
    preset=None,
    precision="auto",
    callback=None,
    **overrides: Unpack[Overrides],
):
    """Fill the masked region (white = fill) so the model sees `label` (its own prediction when omitted).

    ours: the hole filled with the photo's own patches at its own resolution (`fill='texture'`, `synth.exemplar`;
    `seed` drives its random search; images the model sees 1:1 get the smooth fill), then the class loss with every
    pixel outside the mask held fixed (`hard=True`); PGD's change, made at the model's size, is upsampled and added
    to that fill. paper: a mean fill, then class loss + weight * change outside the mask. `fill='smooth'` (a
    membrane fill) and 'mean' are made at the model's size and the result resampled into the hole. Either way the
    pixels outside the mask are returned unchanged, at the original size. In a large photo each region of the
    mask is worked on a square crop around it (`synth.photos.Crops`); all crops of all photos are one batch."""
    r = recipe("inpaint", preset, fill=fill, hard=hard)
    if r["fill"] not in INPAINT_FILLS:
        raise ValueError(f"fill must be one of {', '.join(INPAINT_FILLS)}; got {r['fill']!r}")
    s = settings(model, "inpaint", preset, **overrides)
    seed = whole_number(seed, "seed", lo=0)
    images, batched = as_list(image)
    crops = Crops(images, as_list(mask)[0], model.input_size)
    fill = r["fill"]
    if fill == "texture" and not crops.finer_than_batch():
        fill = "smooth"  # thumbnails the model sees 1:1 have no finer texture to keep; smooth measured closer there
    if fill == "texture":  # started at the photo's resolution: PGD's change is added to it, its texture kept
        crops.fill(lambda crop, hole: exemplar_fill(crop, hole, seed))
    x, m = crops.batch, crops.batch_masks
    x0 = x if fill == "texture" else FILLS[fill](x, m)
    objective = class_loss(_labels(model, label, x0, precision, crops.photo_of), fake_relu=True)
    dev = _device(model)
    ref, m_dev = x0.to(dev), m.to(dev)
    constraints = []
    if r["hard"]:
        constraints = [keep_outside(ref, m_dev)]
    else:
        objective = objective + weight * masked_fidelity(ref, m_dev)
    result = optimise(model, objective, x0, s, constraints=constraints, precision=precision, callback=callback)
    return one_or_many((crops.paste_residual if fill == "texture" else crops.paste_inside)(result), batched)


def _toward_class(model, task: str, image, label, preset, precision, callback, overrides):
    """translate / sketch_to_image: minimise the class loss from the image itself (a ball around it) and paste
    the change back onto the original at its own size."""
    images, batched = as_list(image)
    originals, x = load_batch(images, model.input_size)
    s = settings(model, task, preset, **overrides)
    result = optimise(
        model, class_loss(_labels(model, label, x, precision)), x, s, precision=precision, callback=callback
    )
    return one_or_many(paste_residual(originals, x, result), batched)


def translate(model, image, target, *, preset=None, precision="auto", callback=None, **overrides: Unpack[Overrides]):
    """Push an image toward a target class or domain (e.g. 'zebra'): minimise the cross-entropy to it."""
    if target is None:
        raise ValueError("translate needs a target class or domain")
    return _toward_class(model, "translate", image, target, preset, precision, callback, overrides)


def sketch_to_image(
    model, drawing, label=None, *, preset=None, precision="auto", callback=None, **overrides: Unpack[Overrides]
):
    """A drawing pushed toward a class (the model's prediction when omitted)."""
    return _toward_class(model, "sketch_to_image", drawing, label, preset, precision, callback, overrides)


def visualize(
    model,
    image,
    target,
    *,
    frames: int = 5,
    preset=None,
    precision="auto",
    callback=None,
    **overrides: Unpack[Overrides],
):
    """Large-eps targeted PGD toward `target` from any image (the paper's Fig. 2): `frames` images from the start
    to the result, at the model's resolution (a list of such lists for a batch)."""
    if target is None:
        raise ValueError("visualize needs a target class")
    frames = whole_number(frames, "frames", 1, 100)
    images, batched = as_list(image)
    _, x = load_batch(images, model.input_size)
    s = settings(model, "visualize", preset, **overrides)
    at = [round(i * s.steps / max(frames - 1, 1)) for i in range(1, frames - 1)]  # steps to snapshot
    shots = {0: x.clone()}

    def snapshot(step):
        if step.i in at:
            shots[step.i] = step.x.detach().cpu().clone()
        if callback:
            callback(step)

    objective = class_loss(_labels(model, target, x, precision))
    result = optimise(model, objective, x, s, use_best=False, precision=precision, callback=snapshot)
    strip = [shots[0]] + [shots[i] for i in at] + [result] if frames > 1 else [result]
    return one_or_many([[to_pil(f[k]) for f in strip] for k in range(len(x))], batched)


def super_resolve(
    model,
    image,
    factor: int = 4,
    label=None,
    *,
    start=None,
    consistent=None,
    detail=None,
    preset=None,
    precision="auto",
    callback=None,
    **overrides: Unpack[Overrides],
):
    """Upsample by `factor`, then minimise the class loss (label: the model's prediction) inside a small eps-ball.

    ours: start from back-projected bicubic (`start`), hold the push back where the start is flat in an output
    cut into tiles (`detail`: each pixel's change scaled by its neighbourhood's standard deviation over `detail`,
    capped at 1, `synth.starts.held_to_detail`; 0: no hold) and keep the result consistent with the input: it
    area-downsamples back to it (`consistent`). paper: a nearest-neighbour start, unconstrained. Images of one size
    are one batch; outputs larger than the model's input are worked in tiles of it (labels per tile), in batches
    of about TILE_BATCH_PIXELS."""
    factor = whole_number(factor, "factor", 2, 16)
    if detail is not None and (
        isinstance(detail, bool) or not isinstance(detail, (int, float)) or not 0 <= detail < 1e9
    ):
        raise ValueError(f"detail must be a number >= 0 (0: no hold), got {detail!r}")
    r = recipe("super_resolve", preset, start=start, consistent=consistent, detail=detail)
    s = settings(model, "super_resolve", preset, factor=factor, **overrides)
    images, batched = as_list(image)
    smalls = [to_tensor(load_image(im)) for im in images]
    for sm in smalls:
        refuse_large_output(sm.shape[-1] * factor, sm.shape[-2] * factor)
    outs = [None] * len(smalls)
    for idx in _same_size(smalls):
        upscaled = _super_resolve_same_size(model, [smalls[i] for i in idx], factor, label, r, s, precision, callback)
        for i, out in zip(idx, upscaled):
            outs[i] = to_pil(out)
    return one_or_many(outs, batched)


def _same_size(images: list[torch.Tensor]) -> list[list[int]]:
    """The indices of the images, grouped by size (each group is one batch)."""
    by_size: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        by_size.setdefault(tuple(im.shape), []).append(i)
    return list(by_size.values())


def _super_resolve_same_size(model, smalls, factor, label, r, s, precision, callback) -> list[torch.Tensor]:
    """Upsample (the recipe's start), cut into the model's tiles, push each tile toward its class (a label per tile:
    the model's prediction unless given), blend; keep the result consistent with the input where asked."""
    small = torch.cat(smalls)
    up = upsample(small, factor, r["start"])
    tiles = Tiles(up.shape[-2:], model.input_size)
    x = tiles.cut(up)  # all tiles of all images
    consistent = [consistent_with(small.to(_device(model)), factor)] if r["consistent"] and tiles.whole else []
    labels = _labels(model, label, x, precision)
    rows = len(x) if tiles.fits else _batch_rows(x)  # tiles are independent problems: worked a batch at a time
    parts = list(zip(x.split(rows), labels.split(rows)))

    def push(part, y, cb):
        # held to detail only in an output cut into tiles: each tile is a small piece of a photo, whose flat areas the
        # model would paint with texture; an output of one tile keeps the full push (docs/results.md, Super-resolution)
        held = [held_to_detail(_on(part, _device(model)), r["detail"])] if r["detail"] and tiles.count > 1 else []
        return optimise(model, class_loss(y), part, s, constraints=held + consistent, precision=precision, callback=cb)

    result = torch.cat([push(part, y, cb) for (part, y), cb in zip(parts, _per_part(callback, len(parts)))])
    out = tiles.join(result)
    if r["consistent"] and not tiles.whole:  # tiled or resized: project the whole image once, at the end
        out = consistent_with(small, factor)(out)
    return list(out.split(1))


def _per_part(callback, n: int) -> list:
    """Callbacks for n PGD runs one after another that report them to `callback` as one run of n times the steps."""
    if callback is None:
        return [None] * n
    return [lambda st, k=k: callback(Step(k * st.steps + st.i, n * st.steps, st.x, st.loss)) for k in range(n)]


def paint_features(
    model,
    image,
    mask,
    feature: int,
    *,
    weight: float = 90.0,
    feature_weight: float = 0.1,
    preset=None,
    precision="auto",
    callback=None,
    **overrides: Unpack[Overrides],
):
    """Paint penultimate-layer feature number `feature` where the mask is white: maximise
    feature_weight * r_k - weight * (change outside the mask); only the masked pixels of the original change."""
    k = whole_number(feature, "feature", 0, model.num_features - 1)
    images, batched = as_list(image)
    crops = Crops(images, as_list(mask)[0], model.input_size, allow_full=True)
    x, m = crops.batch, crops.batch_masks
    dev = _device(model)
    objective = feature_weight * feature_objective(k) - weight * masked_fidelity(x.to(dev), m.to(dev))
    s = settings(model, "paint_features", preset, **overrides)
    result = optimise(model, objective, x, s, maximize=True, precision=precision, callback=callback)
    return one_or_many(crops.paste_residual(result), batched)


def top_features(model, image, mask=None, k: int = 5) -> list[tuple[int, float]]:
    """The penultimate features most active on the image (inside the mask, if given): (index, activation)."""
    o = to_tensor(load_image(image))
    x = resize(o, model.input_size)
    if mask is not None:
        m = resize_mask(load_mask(mask, (o.shape[-1], o.shape[-2])), model.input_size)
        x = x * m + x.mean(dim=(2, 3), keepdim=True) * (1 - m)
    with torch.no_grad():
        rep = model.features(x.to(_device(model))).float()[0].cpu()
    v, i = rep.topk(min(k, len(rep)))
    return [(int(j), float(a)) for a, j in zip(v, i)]
