"""Command line: python -m synth {generate,inpaint,super-resolve,translate,sketch,paint,visualize,models}."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import tasks
from .images import ImageError, list_images
from .models import DEFAULT_MODEL, ModelLoadError, list_models, load_model
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
        choices=tasks.PRESETS,
        default=None,
        help="ours (default: measured improvements), paper (the authors' method) or fast (paper, fewer steps)",
    )
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--eps", type=float, default=None, help="L2 radius in [0,1]-pixel units")
    p.add_argument("--step-size", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="images per PGD batch for folder inputs")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m synth", description="Image synthesis with a single robust classifier.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the model presets")
    p = sub.add_parser("generate", help=COMMANDS["generate"])
    _common(p, needs_input=False)
    p.add_argument("--label", default=None, help="class name or index (default: random classes)")
    p.add_argument("--n", type=int, default=4, help="number of samples")
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


def run(args) -> list[Path]:
    if args.command == "models":
        for name, desc in list_models().items():
            print(f"{name:40s} {desc}" + ("  [default]" if name == DEFAULT_MODEL else ""))
        return []
    model = load_model(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(
        preset=args.preset,
        steps=args.steps,
        eps=args.eps,
        step_size=args.step_size,
        seed=args.seed,
        precision=args.precision,
    )
    written = []
    cb, bar = _progress(args.command)
    kw["callback"] = cb
    try:
        if args.command == "generate":
            label = args.label
            imgs = tasks.generate(model, label=label, n=args.n, **kw)
            names = tasks.generation_classes(model, label, args.n, args.seed)
            counts: dict[str, int] = {}
            for img, name in zip(imgs, names):
                k = counts.get(name, 0)
                counts[name] = k + 1
                path = out / f"{name.replace(' ', '_').replace('/', '_')}_{k}.png"
                img.save(path)
                written.append(path)
            return written
        files = _inputs(args.input)
        masks = _masks(args.mask, files) if hasattr(args, "mask") else [None] * len(files)
        bs = max(1, args.batch_size)
        for s in range(0, len(files), bs):
            chunk, mchunk = files[s : s + bs], masks[s : s + bs]
            if args.command == "inpaint":
                res = tasks.inpaint(model, chunk, mchunk, label=args.label, **kw)
            elif args.command == "paint":
                res = tasks.paint_features(model, chunk, mchunk, feature=args.feature, **kw)
            elif args.command == "super-resolve":
                res = tasks.super_resolve(model, chunk, factor=args.factor, start=args.start, label=args.label, **kw)
            elif args.command == "translate":
                res = tasks.translate(model, chunk, target=args.target, **kw)
            elif args.command == "sketch":
                res = tasks.sketch_to_image(model, chunk, label=args.label, **kw)
            elif args.command == "visualize":
                for f in chunk:
                    for k, img in enumerate(tasks.visualize(model, f, target=args.target, frames=args.frames, **kw)):
                        path = out / f"{f.stem}_{k}.png"
                        img.save(path)
                        written.append(path)
                continue
            for f, img in zip(chunk, res):
                path = out / f"{f.stem}.png"
                img.save(path)
                written.append(path)
        return written
    finally:
        bar.close()


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
