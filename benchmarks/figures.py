"""Figures for the README (PNG, into docs/): python benchmarks/figures.py [--model M] [--out docs]

- generate.png: samples per class from the robust model and from its standard twin (same seeds, same settings)
- tasks.png:    inpainting, super-resolution, translation, sketch and class visualization on the shipped examples
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw  # noqa: E402

import synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CELL = 64  # every 32 px image drawn 2x, nearest, so pixels stay pixels


def up(img, size=CELL):
    return img.convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def grid(rows, labels, header=None, cell=CELL, pad=2, left=90, top=0):
    top = 18 if header else 0
    w = left + max(len(r) for r in rows) * (cell + pad)
    h = top + len(rows) * (cell + pad)
    canvas = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(canvas)
    if header:
        for j, text in enumerate(header):
            d.text((left + j * (cell + pad) + 2, 3), text, fill="black")
    for i, (row, lab) in enumerate(zip(rows, labels)):
        d.text((4, top + i * (cell + pad) + cell // 2 - 6), lab, fill="black")
        for j, img in enumerate(row):
            canvas.paste(up(img, cell), (left + j * (cell + pad), top + i * (cell + pad)))
    return canvas


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--n", type=int, default=5)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    robust = synth.load_model(args.model)
    standard = synth.load_model(synth.standard_twin(robust))
    # the standard model has no seed bank of its own: give it the robust model's, so only the gradients differ
    standard.seed_bank = robust.seed_bank

    rows, labels = [], []
    for k, name in enumerate(robust.class_names):
        r, seeds = synth.generate(robust, label=k, n=args.n, seed=k, return_seeds=True)
        s = synth.generate(standard, label=k, n=args.n, seed=k)
        rows.append([seeds[0]] + r + [Image.new("RGB", (8, 8), "white")] + s)
        labels.append(name)
    header = ["seed"] + [f"robust {i}" for i in range(args.n)] + [""] + [f"standard {i}" for i in range(args.n)]
    grid(rows, labels, header).save(out / "generate.png")

    ex = ROOT / "examples"
    cat = Image.open(ex / "cat.png").convert("RGB")
    mask = Image.new("L", cat.size, 0)
    mask.paste(255, (32, 20, 96, 70))
    masked = Image.composite(Image.new("RGB", cat.size, (128, 128, 128)), cat, mask)
    ship, small = Image.open(ex / "ship.png").convert("RGB"), Image.open(ex / "ship_8px.png").convert("RGB")
    sketch = Image.open(ex / "sketch_car.png").convert("RGB")
    rows = [
        [cat, masked, synth.inpaint(robust, cat, mask), synth.inpaint(standard, cat, mask)],
        [
            small.resize((32, 32), Image.Resampling.NEAREST),
            small.resize((32, 32), Image.Resampling.BICUBIC),
            synth.super_resolve(robust, small, 4, start="bicubic"),
            ship,
        ],
        [cat, synth.translate(robust, cat, target="dog"), synth.translate(standard, cat, target="dog")],
        [
            sketch,
            synth.sketch_to_image(robust, sketch, label="automobile"),
            synth.sketch_to_image(standard, sketch, label="automobile"),
        ],
        synth.visualize(robust, cat, target="frog"),
    ]
    labels = ["inpaint", "super-res x4", "cat -> dog", "sketch: car", "cat -> frog"]
    grid(rows, labels).save(out / "tasks.png")
    print("\n".join(str(p) for p in (out / "generate.png", out / "tasks.png")))


if __name__ == "__main__":
    main()
