"""Each tab's default action on real photos of several sizes: seconds per call on this machine, as a table.

    python -m benchmarks.bench_photos [--sizes 0.3 1 3 12] [--models embedded imagenet] [--tasks ...]

The photo is scikit-image's `chelsea` (CC0, committed as examples/photos/chelsea.jpg) resized to each size in
megapixels. Models: the embedded CIFAR-10 ResNet-20 (the default), the embedded 64 px ImageNet-class model
(tiny-imagenet), and a random-weight ResNet-50 in the madrylab layout (the
Hub path: 224 px input; speed does not depend on the weights). Defaults as the app uses them (preset 'ours', no
standard-model comparison): inpaint one square hole of a tenth of the short side near the cat's face, paint a
feature in the same hole, translate and visualize toward a class, sketch-to-image, super-resolution x4 (the input
is the photo shrunk so that the *output* has the size, up to --max-sr MP; ImageNet also 256 -> 1024 px), generation
of one sample (size-independent). Each figure is the best of --repeats calls after one warm-up call.
"""

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch
from PIL import Image

import synth
import synth.tasks
from synth.models import RobustModel

PHOTO = ROOT / "examples" / "photos" / "chelsea.jpg"
CLASS = {"cifar10": "cat", "imagenet": "tiger cat", "tiny_imagenet": "tabby"}
TARGET = {"cifar10": "dog", "imagenet": "Border collie", "tiny_imagenet": "golden retriever"}


def photo_of(megapixels: float) -> Image.Image:
    im = synth.load_image(PHOTO)
    scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)


def hole(im: Image.Image) -> Image.Image:
    """A square of a tenth of the short side, at the cat's face (chelsea's face is near 40% across, 35% down)."""
    side = min(im.size) // 10
    x, y = int(im.width * 0.4), int(im.height * 0.35)
    m = Image.new("L", im.size, 0)
    m.paste(255, (x, y, x + side, y + side))
    return m


def calls(model, im: Image.Image, task: str):
    """The call each tab makes by default, as a function of keyword overrides (the warm-up passes steps=1)."""
    d, mask = model.dataset, hole(im)  # made once, outside the timed calls
    small = im.resize((im.width // 4, im.height // 4))
    return {
        "generate": lambda **kw: synth.generate(model, CLASS[d], n=1, seed=0, **kw),
        "inpaint": lambda **kw: synth.inpaint(model, im, mask, **kw),
        "paint": lambda **kw: synth.paint_features(model, im, mask, feature=0, **kw),
        "translate": lambda **kw: synth.translate(model, im, target=TARGET[d], **kw),
        "sketch": lambda **kw: synth.sketch_to_image(model, im, label=CLASS[d], **kw),
        "visualize": lambda **kw: synth.visualize(model, im, target=TARGET[d], **kw),
        "super-resolve x4": lambda **kw: synth.super_resolve(model, small, 4, **kw),
    }[task]


def best_of(run, repeats: int, warm_up: bool = True) -> float:
    if warm_up:
        run(steps=1)  # packs weights, caches synthesis copies
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.3, 1, 3, 12], help="megapixels")
    ap.add_argument("--models", nargs="+", default=["embedded", "imagenet"])
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=["inpaint", "paint", "super-resolve x4", "translate", "sketch", "visualize", "generate"],
    )
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--max-sr", type=float, default=0.3, help="largest super-resolution output (MP) in the table")
    ap.add_argument("--tile-batch", type=int, help="synth.tasks.TILE_BATCH_PIXELS, in 32x32 tiles (default 512)")
    args = ap.parse_args()
    if args.tile_batch:
        synth.tasks.TILE_BATCH_PIXELS = args.tile_batch * 32 * 32
    models = {
        "embedded": lambda: synth.load_model(),
        "tiny-imagenet": lambda: synth.load_model("tiny-imagenet-resnet18-half-l2-eps1"),
        "imagenet": lambda: RobustModel("resnet50", 1000, synth.models.imagenet_classes(), dataset="imagenet").eval(),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; seconds per call (best of {args.repeats})\n")
    print("| model | task | " + " | ".join(f"{s:g} MP" for s in args.sizes) + " |")
    print("|---|---|" + "---|" * len(args.sizes))
    for name in args.models:
        model = models[name]().requires_grad_(False)
        for task in args.tasks:
            cells = []
            for mp in args.sizes:
                too_big = task.startswith("super") and mp > args.max_sr
                same = task in ("generate",) and mp != args.sizes[0]
                if too_big or same:
                    cells.append("-")
                    continue
                cells.append(f"{best_of(calls(model, photo_of(mp), task), args.repeats):.2f}")
            print(f"| {name} | {task} | " + " | ".join(cells) + " |", flush=True)
        if name == "imagenet" and "super-resolve x4" in args.tasks:
            small = photo_of(1).resize((256, 256))
            t = best_of(lambda **kw: synth.super_resolve(model, small, 4, **kw), args.repeats)
            print(f"| {name} | super-resolve x4, 256x256 -> 1024x1024 | {t:.2f} |", flush=True)


if __name__ == "__main__":
    main()
