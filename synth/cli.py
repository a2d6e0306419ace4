"""Command line: python -m synth {generate,inpaint,super-resolve,translate,sketch,paint,visualize,models}."""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

from . import tasks
from .images import ImageError, list_images
from .models import DEFAULT_MODEL, RESTRICTED_IMAGENET, ModelLoadError, list_models, load_model
from .pgd import PRECISIONS, whole_number
from .planning import plan
from .presets import PRESETS
from .starts import INPAINT_FILLS, UPSAMPLING

COMMANDS = {
    "generate": "class-conditional samples from the class seed (writes <class>_<k>.png)",
    "inpaint": "fill the white region of --mask",
    "super-resolve": "upsample by --factor, then strengthen the class",
    "translate": "push an image toward --target (a class or domain)",
    "sketch": "turn a drawing into an image of --label",
    "paint": "paint penultimate feature --feature where --mask is white",
    "visualize": "large-eps targeted PGD toward --target (the paper's Fig. 2; writes <name>_<k>.png frames)",
}
SUPER = f"; on an ImageNet model also a super-class ({', '.join(RESTRICTED_IMAGENET)})"


def _common(p: argparse.ArgumentParser, needs_input=True, mask=False):
    p.add_argument(
        "--model", default=None, help=f"preset, Hub REPO_ID[:FILENAME] or local path (default: {DEFAULT_MODEL})"
    )
    p.add_argument("--out", default="out", help="output folder for PNG files (default: out)")
    p.add_argument("--overwrite", action="store_true", help="replace files already in --out (default: refuse)")
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
    p.add_argument("--precision", choices=PRECISIONS, default="auto")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m synth", description="Image synthesis with a single robust classifier.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the models")
    p = sub.add_parser("generate", help=COMMANDS["generate"])
    _common(p, needs_input=False)
    p.add_argument("--label", default=None, help="class name or index (default: random classes)" + SUPER)
    p.add_argument("--n", type=int, default=4, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same samples")
    p = sub.add_parser("inpaint", help=COMMANDS["inpaint"])
    _common(p, mask=True)
    p.add_argument("--label", default=None, help="class (default: the model's prediction)" + SUPER)
    p.add_argument(
        "--fill",
        choices=INPAINT_FILLS,
        default=None,
        help="the hole's start (default: the preset's; ours: texture, the photo's own patches; paper: mean)",
    )
    p.add_argument("--seed", type=int, default=0, help="the texture fill's random search: the same seed, the same fill")
    p = sub.add_parser("super-resolve", help=COMMANDS["super-resolve"])
    _common(p)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument(
        "--start",
        choices=UPSAMPLING,
        default=None,
        help="default: the preset's (ours: backprojected, paper: nearest)",
    )
    p.add_argument("--label", default=None, help="class (default: predicted per tile)" + SUPER)
    p = sub.add_parser("translate", help=COMMANDS["translate"])
    _common(p)
    p.add_argument("--target", required=True, help="target class or domain" + SUPER)
    p = sub.add_parser("sketch", help=COMMANDS["sketch"])
    _common(p)
    p.add_argument("--label", default=None, help="class (default: the model's prediction)" + SUPER)
    p = sub.add_parser("paint", help=COMMANDS["paint"])
    _common(p, mask=True)
    p.add_argument("--feature", type=int, required=True, help="penultimate feature index")
    p = sub.add_parser("visualize", help=COMMANDS["visualize"])
    _common(p)
    p.add_argument("--target", required=True, help="target class" + SUPER)
    p.add_argument("--frames", type=int, default=5)
    return ap


def _inputs(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return list_images(p)
    if not p.exists():
        raise ImageError(f"no such file or folder: {path}")
    return [p]


def _masks(path: str, images: list[Path]) -> list[Path | None]:
    """The mask of each image: the file itself for one image, else the file of the same name in the folder
    (None where there is none: that image is skipped)."""
    p = Path(path)
    if not p.is_dir():
        if len(images) != 1:
            raise ImageError("--input is a folder: --mask must be a folder of masks with the same file names")
        if not p.exists():
            raise ImageError(f"no such mask file: {path}")
        return [p]
    by_stem = {m.stem: m for m in list_images(p)}
    return [by_stem.get(im.stem) for im in images]


def _checked_inputs(model, args, kw) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """(image, mask) pairs that can be worked, and a line for each that cannot: every input is planned
    (`synth.plan`: its image and mask read, its output size checked) before any work, so one bad file costs only
    itself."""
    files = _inputs(args.input)
    masks = _masks(args.mask, files) if hasattr(args, "mask") else [None] * len(files)
    good, skipped = [], []
    for f, m in zip(files, masks):
        try:
            if hasattr(args, "mask") and m is None:
                raise ImageError(f"no mask named {f.stem}.* in {args.mask}")
            task, inputs, own = _call(args, [f], [m])
            plan(task, model, *inputs, **own, **kw)
            good.append((f, m))
        except ImageError as e:
            skipped.append(f"skipped {f}: {str(e).removeprefix(f'{f}: ')}")
    return good, skipped


def _output_stems(files: list[Path]) -> tuple[dict[Path, str], list[str], list[str]]:
    """The stem each input writes under (visualize adds _<k>), lines to say, lines for inputs skipped. Inputs that
    share a stem (a.jpg, a.png) write under stem_ext (a_jpg.png, a_png.png), said on stderr; one whose name is still
    taken is skipped with a line - a clash never costs the other inputs."""
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    taken = {s for s, fs in by_stem.items() if len(fs) == 1}
    stems = {fs[0]: s for s, fs in by_stem.items() if len(fs) == 1}
    said, skipped = [], []
    for fs in (fs for fs in by_stem.values() if len(fs) > 1):
        renamed = []
        for f in fs:
            alt = f"{f.stem}_{f.suffix.lstrip('.')}"
            if alt in taken:
                skipped.append(f"skipped {f}: its output name {alt}.png is taken by another input")
                continue
            stems[f] = alt
            taken.add(alt)
            renamed.append(f"{f.name} -> {alt}")
        said.append(f"{' and '.join(f.name for f in fs)} share a name; written as {', '.join(renamed) or 'nothing'}")
    return {f: stems[f] for f in files if f in stems}, said, skipped


def _output_names(args, stems: list[str]) -> list[str]:
    """The files the inputs write (visualize: one per frame)."""
    frames = range(args.frames) if args.command == "visualize" else [None]
    return [f"{s}.png" if k is None else f"{s}_{k}.png" for s in stems for k in frames]


def _out_folder(path: str, names: list[str], overwrite: bool) -> Path:
    """--out as a writable folder where none of `names` exists yet (unless overwrite), checked before any work."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ImageError(f"--out {path} is not a writable folder ({e.strerror or e.__class__.__name__})") from None
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ImageError(f"{', '.join(existing[:3])}{more} already in {out}: pass --overwrite to replace them")
    return out


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


def _generated_names(classes: list[str]) -> list[str]:
    """<class>_<k>.png, k counting the samples of each class."""
    counts: dict[str, int] = {}
    names = []
    for c in classes:
        counts[c] = counts.get(c, -1) + 1
        names.append(f"{_name(c)}_{counts[c]}.png")
    return names


def _generate(model, args, kw):
    """(file name, image) pairs of the samples."""
    imgs = tasks.generate(model, label=args.label, n=args.n, seed=args.seed, **kw)
    yield from zip(_generated_names(tasks.generation_classes(model, args.label, args.n, args.seed)), imgs)


# command -> (the task, its own arguments from the command line)
TASKS = {
    "inpaint": (tasks.inpaint, lambda a: dict(label=a.label, fill=a.fill, seed=a.seed)),
    "paint": (tasks.paint_features, lambda a: dict(feature=a.feature)),
    "super-resolve": (tasks.super_resolve, lambda a: dict(factor=a.factor, start=a.start, label=a.label)),
    "translate": (tasks.translate, lambda a: dict(target=a.target)),
    "sketch": (tasks.sketch_to_image, lambda a: dict(label=a.label)),
    "visualize": (tasks.visualize, lambda a: dict(target=a.target, frames=a.frames)),
}


def _call(args, files: list, masks: list):
    """(task, its inputs, its own arguments) for the command on a batch of files (and masks)."""
    task, own = TASKS[args.command]
    return task, ((files, masks) if hasattr(args, "mask") else (files,)), own(args)


def _batches(model, args, kw, items: list[tuple[Path, Path | None]], stems: dict[Path, str]):
    """(file name, image) pairs for the checked inputs, worked --batch-size files at a time (visualize:
    <stem>_<k>.png frames)."""
    for s in range(0, len(items), args.batch_size):
        files, masks = zip(*items[s : s + args.batch_size])
        task, inputs, own = _call(args, list(files), list(masks))
        for f, result in zip(files, task(model, *inputs, **own, **kw)):
            if args.command == "visualize":
                yield from ((f"{stems[f]}_{k}.png", frame) for k, frame in enumerate(result))
            else:
                yield f"{stems[f]}.png", result


def run(args) -> tuple[list[Path], list[str]]:
    """Check the inputs and --out, then work: (files written, a line for each input skipped)."""
    if args.command == "models":
        for name, desc in list_models().items():
            print(f"{name:40s} {desc}" + ("  [default]" if name == DEFAULT_MODEL else ""))
        return [], []
    _check_ranges(args)
    model = load_model(args.model)
    for flag in ("label", "target"):  # an unknown class is a usage error: refused before --out is touched
        if getattr(args, flag, None) is not None:
            model.target_name(getattr(args, flag))
    kw = {"preset": args.preset, "steps": args.steps, "eps": args.eps, "step_size": args.step_size}
    if args.command == "generate":
        classes = tasks.generation_classes(model, args.label, args.n, args.seed)
        names, items, skipped, stems = _generated_names(classes), [], [], {}
    else:
        items, skipped = _checked_inputs(model, args, kw)
        stems, said, clashes = _output_stems([f for f, _ in items])
        items, skipped = [(f, m) for f, m in items if f in stems], skipped + clashes
        names = _output_names(args, list(stems.values()))
        for line in said:
            print(line, file=sys.stderr)
    for line in skipped:
        print(line, file=sys.stderr)
    out = _out_folder(args.out, names, args.overwrite)
    callback, bar = _progress(args.command)
    kw.update(precision=args.precision, callback=callback)
    written = []
    try:
        results = _generate(model, args, kw) if args.command == "generate" else _batches(model, args, kw, items, stems)
        for name, img in results:
            img.save(out / name)
            written.append(out / name)
    finally:
        bar.close()
    return written, skipped


def _check_ranges(args):
    """Numbers the command line gives, checked before the model loads (a ValueError: exit 2, nothing done); eps,
    step size and steps are checked by synth.Settings, before any work too."""
    for flag, lo, hi in (("batch_size", 1, 1024), ("frames", 1, 100), ("n", 1, 10_000), ("factor", 2, 16)):
        if hasattr(args, flag):
            whole_number(getattr(args, flag), "--" + flag.replace("_", "-"), lo, hi)


def main(argv=None):
    """Exit 0 when every input was written; 1 when some were skipped and the rest written; 2 on a usage error
    (flags, names and ranges: nothing done); 3 when nothing was written (a model, file or folder that cannot be
    used, or every input skipped)."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            written, skipped = run(args)
    except (ImageError, ModelLoadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for p in written:
        print(p)
    if skipped:
        print(f"{len(skipped)} input(s) skipped, {len(written)} file(s) written", file=sys.stderr)
        sys.exit(1 if written else 3)
