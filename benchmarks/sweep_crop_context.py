"""How much context a masked region's crop should have: inpainting PSNR inside the hole, per crop size.

    python -m benchmarks.sweep_crop_context --images PATH [--side 384] [--holes 24 48] [--per-image 3]
        [--context 1.5 2 3 4] [--presets ours paper] [--model M]

Every photo under PATH (any depth) is resized so that its shorter side is `--side` px, far larger than the
embedded model's 32 px input, so that masked tasks take the crop path (`synth.photos.crop_boxes`). Square holes
of each `--holes` side are cut at seeded random places (`--per-image` per photo) and inpainted (label: the model's
prediction) with `synth.photos.CROP_CONTEXT` set to each `--context` (crop side / hole side; at least the model's
input), and with the photo worked whole as before ('whole'). Printed per hole size and context: the mean crop
side; the PSNR inside the hole against the photo before the hole was cut, of the smooth fill alone (the 'ours'
start, at crop resolution, pasted back) and of each preset's result; and how often the model's standard (non-robust)
twin, shown the same view of each (a square 4 times the hole's side around it: the authors' hole-to-image ratio),
gives the result the class it gives the photo before the hole was cut. All holes of one setting are one batch.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import synth
import synth.photos
from synth.images import IMAGE_EXTENSIONS, load_image, resize, to_tensor
from synth.models import standard_twin
from synth.photos import Crops
from synth.starts import smooth_fill


def photos(folder: str, side: int) -> list:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise SystemExit(f"no images under {folder}")
    out = []
    for f in files:
        img = load_image(f)
        scale = side / min(img.size)
        out.append(img.resize((round(img.width * scale), round(img.height * scale)), 3))  # 3: bicubic
    return out


def holes(imgs: list, hole: int, per_image: int, seed: int = 0):
    """(photos, masks as bool arrays): each photo repeated per hole, one square hole each."""
    g = np.random.default_rng(seed)
    pics, masks = [], []
    for img in imgs:
        for _ in range(per_image):
            m = np.zeros((img.height, img.width), bool)
            t, lf = g.integers(0, img.height - hole + 1), g.integers(0, img.width - hole + 1)
            m[t : t + hole, lf : lf + hole] = True
            pics.append(img)
            masks.append(m)
    return pics, masks


def psnr_inside(outs: list, pics: list, masks: list) -> float:
    """Mean over holes of the PSNR (dB, [0,1] pixels) inside each hole."""
    vals = []
    for o, p, m in zip(outs, pics, masks):
        d = (np.asarray(o, np.float64)[m] - np.asarray(p, np.float64)[m]) / 255
        vals.append(10 * np.log10(1 / max(np.mean(d**2), 1e-10)))
    return float(np.mean(vals))


@torch.no_grad()
def judged(judge, outs: list, masks: list) -> torch.Tensor:
    """The judge's class for the view of each output around its hole: a square 4x the hole's side, in the photo."""
    views = []
    for o, m in zip(outs, masks):
        rows, cols = np.nonzero(m)
        side = min(4 * (rows.max() + 1 - rows.min()), *m.shape)
        t = int(np.clip((rows.min() + rows.max() + 1 - side) // 2, 0, m.shape[0] - side))
        lf = int(np.clip((cols.min() + cols.max() + 1 - side) // 2, 0, m.shape[1] - side))
        views.append(resize(to_tensor(np.asarray(o)[t : t + side, lf : lf + side]), judge.input_size))
    return judge.logits(torch.cat(views)).argmax(1)


def with_context(context):
    """Set the crop context (None: work every photo whole) for the calls that follow."""
    synth.photos.CROP_CONTEXT = context or 1.0
    synth.photos.WHOLE_UP_TO = 10**9 if context is None else 2


def row(model, judge, pics, masks, presets) -> list:
    crops = Crops(pics, masks, model.input_size)
    side = np.mean([b[3] for b in crops.boxes])
    truth = judged(judge, pics, masks)
    agree = lambda outs: f"{100 * (judged(judge, outs, masks) == truth).float().mean():.0f}%"
    start = crops.paste_inside(smooth_fill(crops.batch, crops.batch_masks))
    cells = [f"{side:.0f}", f"{psnr_inside(start, pics, masks):.2f}", agree(start)]
    for p in presets:
        t = time.perf_counter()
        outs = synth.inpaint(model, pics, masks, preset=p)
        cells += [f"{psnr_inside(outs, pics, masks):.2f}", agree(outs), f"{time.perf_counter() - t:.1f}"]
    return cells


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="a folder of photos (searched at any depth)")
    ap.add_argument("--side", type=int, default=384, help="shorter side the photos are resized to (px)")
    ap.add_argument("--holes", type=int, nargs="+", default=[24, 48], help="hole sides (px)")
    ap.add_argument("--per-image", type=int, default=3)
    ap.add_argument("--context", type=float, nargs="+", default=[1.5, 2, 3, 4])
    ap.add_argument("--presets", nargs="+", default=["ours", "paper"])
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = synth.load_model(args.model)
    judge = synth.load_model(standard_twin(model))
    imgs = photos(args.images, args.side)
    print(f"{model.name} ({model.input_size} px): {len(imgs)} photos, shorter side {args.side} px\n")
    head = "| hole (px) | context | crop side (px) | PSNR smooth fill | judge agrees: smooth fill |"
    head += "".join(f" PSNR {p} | judge agrees: {p} | time {p} (s) |" for p in args.presets)
    print(head + "\n" + "|---" * (5 + 3 * len(args.presets)) + "|")
    for hole in args.holes:
        pics, masks = holes(imgs, hole, args.per_image)
        for context in [*args.context, None]:
            with_context(context)
            cells = [
                str(hole),
                "whole" if context is None else f"{context:g}",
                *row(model, judge, pics, masks, args.presets),
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
