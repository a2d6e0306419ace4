"""Fingerprints of every task's output under every preset: a refactor that must not change results is checked by
comparing two runs of this script, before and after.

    python -m benchmarks.fingerprint [--models M ...] [--json F] [--compare F]

Each task runs on fixed inputs (the example images, a fixed mask, seed 0) on each embedded robust model, in fp32
(bf16 kernels differ between CPUs) and on one thread (so reductions run in one order); the sha256 of each output
image's bytes is printed and, with --json, written. --compare F prints only the rows that differ from F's and exits
with status 1 if any does.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import synth

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODELS = ("cifar10-resnet20-l2-eps0.5", "tiny-imagenet-resnet18-half-l2-eps1", "horse2zebra-resnet18-half-l2-eps3")


def digest(images) -> str:
    images = images if isinstance(images, list) else [images]
    h = hashlib.sha256()
    for im in images:
        if isinstance(im, list):  # visualize: frames
            h.update(digest(im).encode())
        else:
            h.update(np.asarray(im.convert("RGB")).tobytes())
    return h.hexdigest()[:16]


def hole(size) -> Image.Image:
    """A white square over the middle fifth of the image (the region to fill or paint)."""
    m = Image.new("L", size, 0)
    w, h = size
    ImageDraw.Draw(m).rectangle([2 * w // 5, 2 * h // 5, 3 * w // 5, 3 * h // 5], fill=255)
    return m


def runs(model) -> dict:
    """task -> a function of the preset that returns its output on the fixed inputs."""
    photo = Image.open(EXAMPLES / "photos" / "chelsea_small.png").convert("RGB")
    small = photo.resize((photo.width // 4, photo.height // 4), Image.Resampling.BOX)
    sketch = Image.open(EXAMPLES / "sketch_car.png").convert("RGB")
    label = model.class_names[0]
    fp32 = dict(precision="fp32")
    return {
        "generate": lambda p: synth.generate(model, label=label, n=2, preset=p, **fp32),
        "inpaint": lambda p: synth.inpaint(model, photo, hole(photo.size), preset=p, **fp32),
        "translate": lambda p: synth.translate(model, photo, target=model.class_names[-1], preset=p, **fp32),
        "super_resolve": lambda p: synth.super_resolve(model, small, 4, preset=p, **fp32),
        "sketch_to_image": lambda p: synth.sketch_to_image(model, sketch, label=label, preset=p, **fp32),
        "paint_features": lambda p: synth.paint_features(model, photo, hole(photo.size), 0, preset=p, **fp32),
        "visualize": lambda p: synth.visualize(model, photo, target=label, frames=3, preset=p, **fp32),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--json", default=None, help="write the fingerprints here")
    ap.add_argument("--compare", default=None, help="a JSON of an earlier run: print and fail on differences")
    args = ap.parse_args()
    torch.set_num_threads(1)
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    prints, differ = {}, 0
    for name in args.models:
        model = synth.load_model(name)
        for task, run in runs(model).items():
            for preset in synth.PRESETS:
                key = f"{name} {task} {preset}"
                prints[key] = digest(run(preset))
                if before is None:
                    print(f"{key}: {prints[key]}", flush=True)
                elif before.get(key) != prints[key]:
                    differ += 1
                    print(f"{key}: {before.get(key)} -> {prints[key]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(prints, indent=1))
    if before is not None:
        print(f"{differ} of {len(prints)} outputs differ")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
