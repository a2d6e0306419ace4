"""Command line: python -m synth {generate,inpaint,super-resolve,translate,sketch,paint,visualize,models}."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import tasks
from .images import ImageError, list_images
from .models import DEFAULT_MODEL, ModelLoadError, list_models, load_model
from .presets import PRESETS
from .starts import UPSAMPLING

COMMANDS = {
    "generate": "class-conditional samples from the class seed (writes <class>_<k>.png)",
    "inpaint": "fill the white region of --mask",
    "super-resolve": "upsample by --factor, then strengthen the class",
    "translate": "push an image toward --target (a class or domain)",
    "sketch": "turn a drawing into an image of --label",
    "paint": "paint penultimate feature --feature where --mask is white",
    "visualize": "large-eps targeted PGD toward --target (the paper's Fig. 2; writes <name>_<k>.png frames)",
}


def _common(p: argparse.ArgumentParser, needs_input=True, mask=False):
    p.add_argument(
        "--model", default=None, help=f"preset, Hub REPO_ID[:FILENAME] or local path (default: {DEFAULT_MODEL})"
    )
    p.add_argument("--out", default="out", help="output folder for PNG files (default: out)")
    if needs_input:
        p.add_argument("--input", required=True, help="an image file, or a folder processed as a batch")
    if mask:
        p.add_argument(
            "--mask", required=True, help="mask file (white = region), or a folder of masks matched by file name"
        )
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="ours (default: measured improvements), paper (the authors' method) or fast (paper, fewer steps)",
    )
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--eps", type=float, default=None, help="L2 radius in [0,1]-pixel units")
    p.add_argument("--step-size", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=8, help="images per PGD batch for folder inputs")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m synth", description="Image synthesis with a single robust classifier.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the models")
    p = sub.add_parser("generate", help=COMMANDS["generate"])
    _common(p, needs_input=False)
    p.add_argument("--label", default=None, help="class name or index (default: random classes)")
    p.add_argument("--n", type=int, default=4, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same samples")
    p = sub.add_parser("inpaint", help=COMMANDS["inpaint"])
    _common(p, mask=True)
    p.add_argument("--label", default=None, help="class (default: the model's prediction)")
    p = sub.add_parser("super-resolve", help=COMMANDS["super-resolve"])
    _common(p)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument(
        "--start",
        choices=UPSAMPLING,
        default=None,
        help="default: the preset's (ours: backprojected, paper: nearest)",
    )
    p.add_argument("--label", default=None, help="class (default: predicted per tile)")
    p = sub.add_parser("translate", help=COMMANDS["translate"])
    _common(p)
    p.add_argument("--target", required=True, help="target class or domain")
    p = sub.add_parser("sketch", help=COMMANDS["sketch"])
    _common(p)
    p.add_argument("--label", default=None, help="class (default: the model's prediction)")
    p = sub.add_parser("paint", help=COMMANDS["paint"])
    _common(p, mask=True)
    p.add_argument("--feature", type=int, required=True, help="penultimate feature index")
    p = sub.add_parser("visualize", help=COMMANDS["visualize"])
    _common(p)
    p.add_argument("--target", required=True, help="target class")
    p.add_argument("--frames", type=int, default=5)
    return ap


def _inputs(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return list_images(p)
    if not p.exists():
        raise ImageError(f"no such file or folder: {path}")
    return [p]


def _masks(path: str, images: list[Path]) -> list[Path]:
    p = Path(path)
    if not p.is_dir():
        if len(images) != 1:
            raise ImageError("--input is a folder: --mask must be a folder of masks with the same file names")
        if not p.exists():
            raise ImageError(f"no such mask file: {path}")
        return [p]
    by_stem = {m.stem: m for m in list_images(p)}
    missing = [im.name for im in images if im.stem not in by_stem]
    if missing:
        raise ImageError(f"no mask in {path} for {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return [by_stem[im.stem] for im in images]


def _progress(total_desc: str):
    from tqdm import tqdm

    bar = tqdm(desc=total_desc, disable=None, leave=False)

    def cb(step):
        bar.total = step.steps
        bar.update(1)
        bar.set_postfix(loss=f"{float(step.loss.mean()):.3f}")

    return cb, bar


def _name(label: str) -> str:
    return label.replace(" ", "_").replace("/", "_")


def _generate(model, args, kw):
    """(file name, image) pairs: <class>_<k>.png, k counting the samples of each class."""
    imgs = tasks.generate(model, label=args.label, n=args.n, seed=args.seed, **kw)
    names = tasks.generation_classes(model, args.label, args.n, args.seed)
    counts: dict[str, int] = {}
    for img, name in zip(imgs, names):
        counts[name] = counts.get(name, -1) + 1
        yield f"{_name(name)}_{counts[name]}.png", img


# command -> the task on a batch of files (and masks), with the command's own arguments
BATCH_TASKS = {
    "inpaint": lambda m, files, masks, a, kw: tasks.inpaint(m, files, masks, label=a.label, **kw),
    "paint": lambda m, files, masks, a, kw: tasks.paint_features(m, files, masks, feature=a.feature, **kw),
    "super-resolve": lambda m, files, masks, a, kw: tasks.super_resolve(
        m, files, factor=a.factor, start=a.start, label=a.label, **kw
    ),
    "translate": lambda m, files, masks, a, kw: tasks.translate(m, files, target=a.target, **kw),
    "sketch": lambda m, files, masks, a, kw: tasks.sketch_to_image(m, files, label=a.label, **kw),
    "visualize": lambda m, files, masks, a, kw: tasks.visualize(m, files, target=a.target, frames=a.frames, **kw),
}


def _batches(model, args, kw):
    """(file name, image) pairs for every input file, worked --batch-size files at a time (visualize:
    <name>_<k>.png frames)."""
    files = _inputs(args.input)
    masks = _masks(args.mask, files) if hasattr(args, "mask") else [None] * len(files)
    bs = max(1, args.batch_size)
    for s in range(0, len(files), bs):
        chunk = files[s : s + bs]
        for f, result in zip(chunk, BATCH_TASKS[args.command](model, chunk, masks[s : s + bs], args, kw)):
            if args.command == "visualize":
                yield from ((f"{f.stem}_{k}.png", frame) for k, frame in enumerate(result))
            else:
                yield f"{f.stem}.png", result


def run(args) -> list[Path]:
    if args.command == "models":
        for name, desc in list_models().items():
            print(f"{name:40s} {desc}" + ("  [default]" if name == DEFAULT_MODEL else ""))
        return []
    model = load_model(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    callback, bar = _progress(args.command)
    kw = dict(
        preset=args.preset,
        steps=args.steps,
        eps=args.eps,
        step_size=args.step_size,
        precision=args.precision,
        callback=callback,
    )
    written = []
    try:
        for name, img in _generate(model, args, kw) if args.command == "generate" else _batches(model, args, kw):
            img.save(out / name)
            written.append(out / name)
    finally:
        bar.close()
    return written


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            written = run(args)
    except (ImageError, ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for p in written:
        print(p)
