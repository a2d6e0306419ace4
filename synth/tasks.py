"""The paper's tasks. Each builds an objective, a start image and a constraint, then calls `pgd` once.

Every task takes PIL images (or paths/arrays; a list for a batch), returns PIL images at the input's
original size where that makes sense, and accepts `steps`, `eps`, `step_size`, `seed`, `preset`
('paper' = the authors' notebook settings, 'fast' = fewer, larger, linearly decaying steps),
`precision` and a per-step `callback` (see `synth.pgd.Step`).
"""

from __future__ import annotations

import math
import torch

from .images import check_mask, load_image, load_mask, resize, resize_mask, to_pil, to_tensor
from .objectives import class_loss, masked_fidelity
from .objectives import feature as feature_objective
from .pgd import keep_outside, pgd, uses_bf16
from .seeds import seeds_for
from .starts import consistent_with, mean_fill, smooth_fill, upsample

# The authors' settings for 224x224 models (eps is an L2 radius in [0,1]-pixel units), and CIFAR where given.
# For other input sizes eps and step scale with sqrt(pixels), i.e. with the side length.
PAPER_224 = {
    "generate": dict(eps=40.0, step_size=1.0, steps=60),
    "inpaint": dict(eps=21.6, step_size=0.1, steps=720),
    "translate": dict(eps=80.0, step_size=0.5, steps=200),
    "super_resolve": dict(eps=8.0, step_size=1.0, steps=40),  # x8 (x7: below)
    "super_resolve_x7": dict(eps=15.0, step_size=1.0, steps=50),
    "sketch": dict(eps=40.0, step_size=1.0, steps=60),
    "paint": dict(eps=70.0, step_size=1.0, steps=140),
    "visualize": dict(eps=40.0, step_size=1.0, steps=60),
}
PAPER_CIFAR = {"generate": dict(eps=30.0, step_size=0.5, steps=60)}
# The paper's method beyond eps/steps: where each task starts and which hard constraints it has.
PAPER_METHOD = {
    "inpaint": dict(fill="mean", hard=False),
    "super_resolve": dict(start="nearest", consistent=False),  # also x7
}
# 'fast': the paper's method with fewer steps; the step starts larger and decays linearly to 0, which reaches the
# paper schedule's objective value in a fraction of the steps (benchmarks/bench_inpaint_schedule.py).
FAST_STEPS = {
    "generate": 30,
    "inpaint": 100,
    "translate": 60,
    "super_resolve": 20,
    "super_resolve_x7": 25,
    "sketch": 30,
    "paint": 60,
    "visualize": 30,
}
# 'ours' (the default): changes to the paper's method that measure better (python -m synth.evaluate; README
# "Results"). Inpainting starts from a smooth (harmonic) fill and never touches pixels outside the mask;
# super-resolution starts from back-projected bicubic and stays consistent with its input (it downsamples back
# to it), with a small eps; generation on CIFAR uses a small eps so samples keep their seed's variety instead of
# collapsing to a class prototype. Values at 224 px scale with the side length like the paper's.
OURS_224 = {  # keyed like PAPER_METHOD: super_resolve covers x7
    "inpaint": dict(eps=7.0, step_size=1.4, steps=20, schedule="linear", fill="smooth", hard=True),
    "super_resolve": dict(
        eps=5.95, step_size=1.19, steps=20, schedule="linear", start="backprojected", consistent=True
    ),
}
OURS_CIFAR = {"generate": dict(eps=2.5, step_size=0.5, steps=20, schedule="linear")}  # ImageNet: paper (unmeasured)
PRESETS = ("ours", "paper", "fast")


def task_params(model, task: str, preset: str | None = None, **overrides) -> dict:
    """eps/step_size/steps/schedule (and, where the task has them, its start and constraints) for `task` on
    `model` under a preset ('ours' by default, 'paper', 'fast'), then any non-None overrides."""
    preset = preset or "ours"
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    scale = model.input_size / 224
    cifar = model.dataset == "cifar10"
    method = task.removesuffix("_x7")  # x7 super-resolution differs from x8 only in the paper's eps/steps
    if cifar and task in PAPER_CIFAR:
        p = dict(PAPER_CIFAR[task])
    else:
        p = {k: (v * scale if k != "steps" else v) for k, v in PAPER_224[task].items()}
    p["schedule"] = "constant"
    p.update(PAPER_METHOD.get(method, {}))
    if preset == "fast":
        p["step_size"] = _fast_step(p, task)
        p["steps"] = FAST_STEPS[task]
        p["schedule"] = "linear"
    elif preset == "ours":
        if cifar and task in OURS_CIFAR:
            p.update(OURS_CIFAR[task])
        elif method in OURS_224:
            p.update({k: v * scale if k in ("eps", "step_size") else v for k, v in OURS_224[method].items()})
    for k, v in overrides.items():
        if v is not None:
            p[k] = v
    if not p["eps"] > 0:
        raise ValueError(f"eps must be > 0, got {p['eps']}")
    if not p["step_size"] > 0:
        raise ValueError(f"step_size must be > 0, got {p['step_size']}")
    if int(p["steps"]) != p["steps"] or p["steps"] < 1:
        raise ValueError(f"steps must be a positive integer, got {p['steps']}")
    p["steps"] = int(p["steps"])
    return p


def _fast_step(p: dict, task: str) -> float:
    """First step of the linearly decaying schedule: n steps from s0 to 0 travel s0*n/2, so cover the paper's
    path length (steps * step_size), but at most two eps-diameters."""
    path = min(p["step_size"] * p["steps"], 4 * p["eps"])
    return 2 * path / FAST_STEPS[task]


# --------------------------------------------------------------------------------------------- helpers
def _as_list(x):
    return (list(x), True) if isinstance(x, (list, tuple)) else ([x], False)


def _device(model):
    return next(model.parameters()).device


def _labels(model, label, n: int) -> torch.Tensor | None:
    if label is None:
        return None
    labels, _ = _as_list(label)
    if len(labels) == 1:
        labels = labels * n
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    return torch.tensor([model.class_index(lab) for lab in labels])


@torch.no_grad()
def predict(model, x: torch.Tensor) -> torch.Tensor:
    return model.logits(x.to(_device(model))).argmax(1).cpu()


def classify(model, image, top: int = 5) -> list[tuple[str, float]]:
    """Top classes with probabilities for one image (resized to the model's input)."""
    x = resize(to_tensor(load_image(image)), model.input_size)
    with torch.no_grad():
        p = model.logits(x.to(_device(model))).float().softmax(1)[0].cpu()
    v, i = p.topk(min(top, len(p)))
    return [(model.class_names[j], float(s)) for s, j in zip(v, i)]


def _run(
    model,
    objective,
    x0,
    params,
    *,
    maximize=False,
    use_best=True,
    constraints=(),
    callback=None,
    precision="auto",
    centre=None,
):
    dev = _device(model)
    x0 = x0.to(dev).contiguous(memory_format=torch.channels_last)
    if not model.training:  # BatchNorm folded (and bf16 weights under bf16 autocast): same function, faster
        model = model.for_synthesis(torch.bfloat16 if uses_bf16(dev, precision) else torch.float32)
    out = pgd(
        lambda x: objective(model, x),
        x0,
        eps=params["eps"],
        step_size=params["step_size"],
        steps=params["steps"],
        schedule=params["schedule"],
        maximize=maximize,
        use_best=use_best,
        constraints=constraints,
        callback=callback,
        precision=precision,
        centre=None if centre is None else centre.to(dev),
    )
    return out.cpu()


def _load_batch(images, size):
    """Originals as (1,3,H,W) tensors and a (B,3,size,size) batch at the model's resolution."""
    originals = [to_tensor(load_image(im)) for im in images]
    small = torch.cat([resize(o, size) for o in originals])
    return originals, small


def _masked_batch(model, image, mask, allow_full=False):
    """Images + their masks: originals, the batch at model size, full-size masks and model-size masks."""
    images, batched = _as_list(image)
    masks, _ = _as_list(mask)
    if len(masks) != len(images):
        raise ValueError(f"{len(masks)} masks for {len(images)} images")
    originals, x = _load_batch(images, model.input_size)
    full_masks = [load_mask(m, (o.shape[-1], o.shape[-2])) for m, o in zip(masks, originals)]
    for fm in full_masks:
        check_mask(fm, allow_full=allow_full)
    m = torch.cat([resize_mask(fm, model.input_size) for fm in full_masks])
    return batched, originals, x, full_masks, m


def _paste_residual(originals, start, result):
    """Original + upsampled change: keeps the original's detail at its own size."""
    outs = []
    for o, s, r in zip(originals, start, result):
        delta = resize((r - s)[None], o.shape[-2:], "bilinear" if o.shape[-1] >= s.shape[-1] else "area", clamp=False)
        outs.append(to_pil((o + delta).clamp(0, 1)))
    return outs


def _generator(seed):
    return torch.Generator().manual_seed(int(seed)) if seed is not None else None


# --------------------------------------------------------------------------------------------- tasks
def _generation_labels(model, label, n: int, g) -> torch.Tensor:
    labels = _labels(model, label, n)
    return torch.randint(0, model.num_classes, (n,), generator=g) if labels is None else labels


def generation_classes(model, label=None, n: int = 1, seed: int | None = 0) -> list[str]:
    """The class names `generate(model, label, n, seed)` produces, in order (random classes when label is None)."""
    return [model.class_names[i] for i in _generation_labels(model, label, n, _generator(seed))]


def generate(
    model,
    label=None,
    n: int = 1,
    seed: int | None = 0,
    *,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    precision="auto",
    callback=None,
    return_seeds=False,
):
    """n class-conditional samples: a seed from the class Gaussian, then minimise the class loss in an
    eps-ball around it. `label` is a class (name or index) or a list of n; None draws random classes."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    g = _generator(seed)
    labels = _generation_labels(model, label, n, g)
    p = task_params(model, "generate", preset, eps=eps, step_size=step_size, steps=steps)
    x0 = seeds_for(model, labels, g)
    x = _run(model, class_loss(labels), x0, p, callback=callback, precision=precision)
    imgs = [to_pil(t) for t in x]
    return (imgs, [to_pil(t) for t in x0]) if return_seeds else imgs


def inpaint(
    model,
    image,
    mask,
    label=None,
    *,
    seed=0,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    weight: float = 10.0,
    precision="auto",
    callback=None,
):
    """Fill the masked region (white = fill) so the model sees `label` (its own prediction when omitted).

    Default ('ours'): start from a smooth fill of the hole and minimise the class loss with pixels outside the
    mask held fixed (a hard constraint). preset='paper': the authors' method, a mean fill then class loss +
    weight * change outside the mask. Either way pixels outside the mask are returned unchanged, at the
    original size."""
    batched, originals, x, full_masks, m = _masked_batch(model, image, mask)
    p = task_params(model, "inpaint", preset, eps=eps, step_size=step_size, steps=steps)
    xc = smooth_fill(x, m) if p["fill"] == "smooth" else mean_fill(x, m)
    labels = _labels(model, label, len(x))
    if labels is None:
        labels = predict(model, xc)
    dev = _device(model)
    obj = class_loss(labels, fake_relu=True)
    if p["hard"]:
        constraints = [keep_outside(xc.to(dev), m.to(dev))]
    else:
        obj, constraints = obj + weight * masked_fidelity(xc.to(dev), m.to(dev)), ()
    r = _run(model, obj, xc, p, callback=callback, precision=precision, constraints=constraints)
    outs = []
    for o, fm, ri in zip(originals, full_masks, r):
        up = resize(ri[None], o.shape[-2:], "bicubic")
        outs.append(to_pil(o * (1 - fm) + up * fm))
    return outs if batched else outs[0]


def _toward_class(model, image, label, task, preset, eps, step_size, steps, precision, callback):
    """Minimise the class loss from the image itself (ball around it); paste the change back at full size."""
    images, batched = _as_list(image)
    originals, x = _load_batch(images, model.input_size)
    labels = _labels(model, label, len(images))
    if labels is None:
        labels = predict(model, x)
    p = task_params(model, task, preset, eps=eps, step_size=step_size, steps=steps)
    r = _run(model, class_loss(labels), x, p, callback=callback, precision=precision)
    outs = _paste_residual(originals, x, r)
    return outs if batched else outs[0]


def translate(
    model, image, target, *, seed=0, preset=None, eps=None, step_size=None, steps=None, precision="auto", callback=None
):
    """Push an image toward a target class or domain (e.g. 'zebra'): minimise CE to the target."""
    if target is None:
        raise ValueError("translate needs a target class or domain")
    return _toward_class(model, image, target, "translate", preset, eps, step_size, steps, precision, callback)


def sketch_to_image(
    model,
    drawing,
    label=None,
    *,
    seed=0,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    precision="auto",
    callback=None,
):
    """A drawing pushed toward a class (predicted when omitted)."""
    return _toward_class(model, drawing, label, "sketch", preset, eps, step_size, steps, precision, callback)


def visualize(
    model,
    image,
    target,
    *,
    frames: int = 5,
    seed=0,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    precision="auto",
    callback=None,
):
    """Large-eps targeted PGD toward `target` from any image (the paper's Fig. 2). Returns `frames` images
    from the start to the result, at the model's resolution."""
    if target is None:
        raise ValueError("visualize needs a target class")
    x = resize(to_tensor(load_image(image)), model.input_size)
    labels = _labels(model, target, 1)
    p = task_params(model, "visualize", preset, eps=eps, step_size=step_size, steps=steps)
    at = [round(i * p["steps"] / max(frames - 1, 1)) for i in range(1, frames - 1)]  # steps to snapshot
    shots = {0: x[0].clone()}

    def cb(step):
        if step.i in at:
            shots[step.i] = step.x[0].detach().cpu().clone()
        if callback:
            callback(step)

    r = _run(model, class_loss(labels), x, p, use_best=False, callback=cb, precision=precision)
    shots = [shots[0]] + [shots[i] for i in at] + [r[0]] if frames > 1 else [r[0]]
    return [to_pil(t) for t in shots]


def super_resolve(
    model,
    image,
    factor: int = 4,
    label=None,
    *,
    start: str | None = None,
    seed=0,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    precision="auto",
    callback=None,
):
    """Upsample by `factor`, then minimise the class loss (label: the model's prediction) inside a small eps-ball.

    Default ('ours'): start from back-projected bicubic and keep every iterate consistent with the input (it
    area-downsamples back to it), so the classifier only adds detail the input cannot see. preset='paper':
    nearest-neighbour start, no consistency. `start` overrides the start ('nearest', 'bicubic',
    'backprojected'). Images with the same size are processed as one batch; large outputs in tiles of the
    model's input size (labels per tile)."""
    if int(factor) != factor or not 2 <= factor <= 16:
        raise ValueError(f"factor must be an integer from 2 to 16, got {factor}")
    factor = int(factor)
    task = "super_resolve_x7" if factor == 7 else "super_resolve"
    p = task_params(model, task, preset, eps=eps, step_size=step_size, steps=steps, start=start)
    images, batched = _as_list(image)
    smalls = [to_tensor(load_image(im)) for im in images]
    outs = [None] * len(smalls)
    by_size: dict[tuple, list[int]] = {}
    for i, sm in enumerate(smalls):
        h, w = sm.shape[-2] * factor, sm.shape[-1] * factor
        if h * w > 16_000_000:
            raise ValueError(f"output would be {w}x{h}: over 16 megapixels; use a smaller image or factor")
        by_size.setdefault(tuple(sm.shape), []).append(i)
    for idx in by_size.values():
        small = torch.cat([smalls[i] for i in idx])
        up = upsample(small, factor, p["start"])
        h, w = up.shape[-2:]
        tiled = [_tile(u[None], model.input_size) for u in up]
        tiles, grid = torch.cat([t for t, _ in tiled]), tiled[0][1]
        per = len(tiles) // len(idx)
        labels = _labels(model, label, len(tiles)) if label is not None else predict(model, tiles)
        constraints = ()
        if p["consistent"] and grid is None and model.input_size == h == w:
            constraints = [consistent_with(small.to(_device(model)), factor)]
        r = _run(model, class_loss(labels), tiles, p, callback=callback, precision=precision, constraints=constraints)
        for k, i in enumerate(idx):
            out = _untile(r[k * per : (k + 1) * per], grid, (h, w))
            if p["consistent"] and not constraints:  # tiled or resized: project the whole image once at the end
                out = consistent_with(smalls[i], factor)(out)
            outs[i] = to_pil(out)
    return outs if batched else outs[0]


def _tile(x: torch.Tensor, s: int):
    """(1,3,H,W) -> (N,3,s,s) tiles (replicate-padded to a multiple of s), and the grid shape."""
    h, w = x.shape[-2:]
    if h <= s and w <= s and h == w:
        return resize(x, s), None
    gh, gw = math.ceil(h / s), math.ceil(w / s)
    xp = torch.nn.functional.pad(x, (0, gw * s - w, 0, gh * s - h), mode="replicate")
    t = xp.unfold(2, s, s).unfold(3, s, s)  # 1,3,gh,gw,s,s
    return t.permute(0, 2, 3, 1, 4, 5).reshape(gh * gw, 3, s, s), (gh, gw)


def _untile(t: torch.Tensor, grid, size):
    if grid is None:
        return resize(t, size)
    gh, gw = grid
    s = t.shape[-1]
    x = t.view(gh, gw, 3, s, s).permute(2, 0, 3, 1, 4).reshape(1, 3, gh * s, gw * s)
    return x[..., : size[0], : size[1]]


def paint_features(
    model,
    image,
    mask,
    feature_index: int | None = None,
    *,
    feature: int | None = None,
    seed=0,
    preset=None,
    eps=None,
    step_size=None,
    steps=None,
    weight: float = 90.0,
    feature_weight: float = 0.1,
    precision="auto",
    callback=None,
):
    """Maximise one penultimate feature where the mask is white:
    0.1 * r_k - 90 * masked change outside the mask. Only masked pixels of the original change."""
    k = feature if feature is not None else feature_index
    if k is None:
        raise ValueError("paint_features needs a feature index")
    if int(k) != k or not 0 <= k < model.num_features:
        raise ValueError(f"feature must be an integer in 0..{model.num_features - 1}, got {k}")
    batched, originals, x, full_masks, m = _masked_batch(model, image, mask, allow_full=True)
    dev = _device(model)
    obj = feature_weight * feature_objective(int(k)) - weight * masked_fidelity(x.to(dev), m.to(dev))
    p = task_params(model, "paint", preset, eps=eps, step_size=step_size, steps=steps)
    r = _run(model, obj, x, p, maximize=True, callback=callback, precision=precision)
    outs = []
    for o, fm, xi, ri in zip(originals, full_masks, x, r):
        delta = resize((ri - xi)[None], o.shape[-2:], "bilinear", clamp=False)
        outs.append(to_pil((o + delta * fm).clamp(0, 1)))
    return outs if batched else outs[0]


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
