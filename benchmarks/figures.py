"""Figures for the README (PNG or JPEG, into docs/): python -m benchmarks.figures [--model M] [--out docs]

- generate.png:   per class: seeds; the robust model's samples from them (ours, paper); the standard twin's (paper)
- superres.png:   x4 super-resolution of CIFAR-10 test images: input / bicubic / paper / ours / original
- inpainting.png: original / masked / mean fill / paper / smooth fill / ours
- tasks.png:      inpainting, super-resolution, translation, sketch and class visualization on the shipped examples
- photos.png:     a real photo (examples/photos/chelsea.jpg, CC0) at full size: inpainting two holes, and x4
                  super-resolution (bicubic / ours / original) - the photo path (crops per region, blended tiles)
Test images come from tests/data/cifar10_samples (committed, so this runs anywhere). --only photos: just that one.

--only imagenet-classes (the 64 px model of 200 ImageNet classes, embedded):
- generate_tiny_imagenet.png: ten classes: seeds; the robust model's samples from them; the standard twin's
- photos_models.png:          the photo figure above with the CIFAR-10 model and with the 64 px model
--only superclasses (the 64 px model; the Restricted-ImageNet super-classes it has a class of):
- superclasses.png:           per super-class: three samples generated toward it, and examples/photos/astronaut.jpg
                              translated toward it
--only horse2zebra --data HORSE2ZEBRA (the testA/testB folders of the horse2zebra set):
- horse2zebra.jpg:            four test horses -> zebra and four zebras -> horse at full size (256 px): photo,
                              robust model, standard twin
"""

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import synth
from benchmarks.evaluate import load_test_set, quantize, square_masks
from synth.images import to_pil
from synth.models import STANDARD_TWIN
from synth.starts import downsample, mean_fill, smooth_fill, upsample
from training.runs import load_any

ROOT = Path(__file__).resolve().parents[1]
CELL = 64  # every 32 px image drawn 2x, nearest, so pixels stay pixels
TINY_IMAGENET = "tiny-imagenet-resnet18-half-l2-eps1"
HORSE2ZEBRA = "horse2zebra-resnet18-half-l2-eps3"


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


def labelled(images: list, labels: list[str], pad: int = 6) -> Image.Image:
    """Images side by side at their own size, each with a label above it."""
    w = sum(im.width for im in images) + pad * (len(images) - 1)
    canvas = Image.new("RGB", (w, max(im.height for im in images) + 16), "white")
    d, x = ImageDraw.Draw(canvas), 0
    for im, text in zip(images, labels):
        d.text((x + 2, 2), text, fill="black")
        canvas.paste(im.convert("RGB"), (x, 16))
        x += im.width + pad
    return canvas


def photos(robust) -> Image.Image:
    """Inpainting and super-resolution on a real photo, at the photo's own size."""
    cat = synth.load_image(ROOT / "examples" / "photos" / "chelsea.jpg")
    mask = Image.new("L", cat.size, 0)
    mask.paste(255, (145, 88, 200, 143))  # an eye
    mask.paste(255, (60, 180, 110, 230))  # fur
    masked = Image.composite(Image.new("RGB", cat.size, (128, 128, 128)), cat, mask)
    small = cat.resize((cat.width // 4, cat.height // 4), Image.Resampling.BOX)
    size = (small.width * 4, small.height * 4)
    rows = [
        labelled([masked, synth.inpaint(robust, cat, mask)], ["masked", "inpainted (ours)"]),
        labelled(
            [
                small.resize(size, Image.Resampling.BICUBIC),
                synth.super_resolve(robust, small, 4),
                cat.crop((0, 0, *size)),
            ],
            [f"x4 from {small.width}x{small.height}: bicubic", "ours", "original"],
        ),
    ]
    canvas = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 8), "white")
    canvas.paste(rows[0], (0, 0))
    canvas.paste(rows[1], (0, rows[0].height + 8))
    return canvas


TEN_CLASSES = ["goldfish", "king penguin", "golden retriever", "tabby", "monarch", "ladybug", "school bus", "orange"]
TEN_CLASSES += ["pizza", "lakeside"]


def imagenet_classes(robust, standard, out: Path, n: int = 3):
    """Generation of ten classes with the 64 px model at 2x (128 px cells), and the photo figure per model."""
    rows = []
    gap = Image.new("RGB", (8, 8), "white")
    for k in TEN_CLASSES:  # (ours is the paper's settings for generation at 224-px-scaled sizes: one set of samples)
        robust_samples, seeds = synth.generate(robust, label=k, n=n, seed=0, return_seeds=True)
        std = synth.generate(standard, label=k, n=n, seed=0)
        rows.append(seeds + [gap] + robust_samples + [gap] + std)
    header = [f"seed {i}" for i in range(n)] + [""] + [f"robust {i}" for i in range(n)] + [""]
    header += [f"standard {i}" for i in range(n)]
    grid(rows, TEN_CLASSES, header, cell=128, left=110).save(out / "generate_tiny_imagenet.png")
    wanted = torch.tensor([standard.class_index(k) for k in TEN_CLASSES]).repeat_interleave(n)
    for what, col in (("seeds", 0), ("robust samples", n + 1)):  # (the standard model's fool itself, not shown)
        images = [im for row in rows for im in row[col : col + n]]
        judged = synth.tasks.predict(standard, torch.cat([synth.images.to_tensor(im) for im in images]))
        print(f"{what}: the standard judge agrees with the class for {(judged == wanted).float().mean():.0%}")
    both = [photos(synth.load_model("cifar10-resnet20-l2-eps0.5")), photos(robust)]
    labels = ["CIFAR-10 model (32 px, 10 classes)", "64 px model (200 ImageNet classes)"]
    labelled(both, labels, pad=16).save(out / "photos_models.png")


def superclasses(robust, standard, out: Path, n: int = 3):
    """Generation and translation toward each super-class of the model (`RobustModel.superclasses`), at 128 px."""
    photo = synth.load_image(ROOT / "examples/photos/astronaut.jpg")
    rows, hits, total = [], 0, 0
    for name, members in robust.superclasses().items():
        samples = synth.generate(robust, label=name, n=n, seed=0)
        rows.append([*samples, photo, synth.translate(robust, photo, name)])
        judged = synth.tasks.predict(standard, torch.cat([synth.images.to_tensor(im) for im in samples]))
        hits, total = hits + sum(int(j) in members for j in judged), total + n
    header = [f"sample {i}" for i in range(n)] + ["photo", "-> super-class"]
    grid(rows, list(robust.superclasses()), header, cell=128, left=70).save(out / "superclasses.png")
    print(f"the standard twin puts {hits} of {total} generated samples in their super-class")


def horse2zebra(robust, standard, data: Path, out: Path, n: int = 4, preset: str = "ours"):
    """The first n test horses -> zebra and n test zebras -> horse at their own size (256 px; the change is pasted
    at that size): photo, robust model, standard twin."""
    rows, labels = [], []
    for folder, target in (("testA", "zebra"), ("testB", "horse")):
        photos_ = [synth.load_image(p) for p in sorted((data / folder).iterdir())[:n]]
        rows.append(photos_)
        rows.append(synth.translate(robust, photos_, target, preset=preset))
        rows.append(synth.translate(standard, photos_, target, preset=preset))
        other = "horse" if target == "zebra" else "zebra"
        labels += [f"{other}s", f"-> {target}: ours", f"-> {target}: twin"]
    grid(rows, labels, cell=photos_[0].width, left=110).save(out / "horse2zebra.jpg", quality=90)


def generation(robust, standard, n: int) -> Image.Image:
    """Per class: n seeds, the robust model's samples from them (ours, paper), the standard twin's (paper)."""
    rows = []
    gap = Image.new("RGB", (8, 8), "white")
    for k in range(len(robust.class_names)):
        ours, seeds = synth.generate(robust, label=k, n=n, seed=k, return_seeds=True)
        paper = synth.generate(robust, label=k, n=n, seed=k, preset="paper")
        std = synth.generate(standard, label=k, n=n, seed=k, preset="paper")
        rows.append(seeds + [gap] + ours + [gap] + paper + [gap] + std)
    header = [f"seed {i}" for i in range(n)] + [""] + [f"ours {i}" for i in range(n)] + [""]
    header += [f"paper {i}" for i in range(n)] + [""] + [f"standard {i}" for i in range(n)]
    return grid(rows, robust.class_names, header)


def test_images(robust) -> tuple[Image.Image, Image.Image]:
    """Super-resolution x4 and inpainting (paper vs ours, with their starts) of one test image per class."""
    x, _ = load_test_set(ROOT / "tests" / "data" / "cifar10_samples", robust, per_class=1)
    small = quantize(downsample(x, 4))
    smalls = [to_pil(t) for t in small]
    paper = synth.super_resolve(robust, smalls, 4, preset="paper")
    ours = synth.super_resolve(robust, smalls, 4)
    rows = [
        [to_pil(n), to_pil(b), p, o, to_pil(t)]
        for n, b, p, o, t in zip(upsample(small, 4, "nearest"), upsample(small, 4, "bicubic"), paper, ours, x)
    ]
    superres = grid(rows, robust.class_names, ["input (8px)", "bicubic", "paper", "ours", "original"])

    m = square_masks(len(x), robust.input_size, 0.1, seed=0)
    masks = [to_pil(mi.expand(3, -1, -1)) for mi in m]
    xs = [to_pil(t) for t in x]
    paper = synth.inpaint(robust, xs, masks, preset="paper")
    ours = synth.inpaint(robust, xs, masks)
    masked = x * (1 - m) + torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1) * m
    rows = [
        [to_pil(t), to_pil(mk), to_pil(mf), p, to_pil(sf), o]
        for t, mk, mf, p, sf, o in zip(x, masked, mean_fill(x, m), paper, smooth_fill(x, m), ours)
    ]
    header = ["original", "masked", "mean fill", "paper", "smooth fill", "ours"]
    return superres, grid(rows, robust.class_names, header)


def tasks(robust, standard) -> Image.Image:
    """Every task on the shipped examples: robust model, and the standard twin beside it."""
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
            synth.super_resolve(robust, small, 4),
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
    return grid(rows, ["inpaint", "super-res x4", "cat -> dog", "sketch: car", "cat -> frog"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--only", choices=["photos", "imagenet-classes", "superclasses", "horse2zebra"], default=None)
    ap.add_argument("--data", default=None, help="--only horse2zebra: the horse2zebra folder (testA/, testB/)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default = {"imagenet-classes": TINY_IMAGENET, "superclasses": TINY_IMAGENET, "horse2zebra": HORSE2ZEBRA}
    spec = args.model or default.get(args.only)
    robust = load_any(spec) if spec else synth.load_model()  # a model name or folder, or a training run
    if args.only in default:
        # a run folder has no registered twin: the family's
        standard = synth.load_model(synth.standard_twin(robust) or STANDARD_TWIN[default[args.only]])
        if args.only == "horse2zebra":
            return horse2zebra(robust, standard, Path(args.data), out)
        if args.only == "superclasses":
            return superclasses(robust, standard, out)
        return imagenet_classes(robust, standard, out)
    photos(robust).save(out / "photos.png")
    if args.only:
        return
    standard = synth.load_model(synth.standard_twin(robust))
    # the standard model has no seed bank of its own: give it the robust model's, so only the gradients differ
    standard.seed_bank = robust.seed_bank
    generation(robust, standard, args.n).save(out / "generate.png")
    superres, inpainting = test_images(robust)
    superres.save(out / "superres.png")
    inpainting.save(out / "inpainting.png")
    tasks(robust, standard).save(out / "tasks.png")
    print(
        "\n".join(str(out / f) for f in ("generate.png", "superres.png", "inpainting.png", "tasks.png", "photos.png"))
    )


if __name__ == "__main__":
    main()
