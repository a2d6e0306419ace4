"""Inpainting that keeps the photo's texture: the fills and `synth.inpaint` on real photos at their own size.

    python -m benchmarks.bench_texture_fill [--photos DIR] [--model NAME] [--speed] [--figure docs/texture_fill.png]

Photos: examples/photos/ (the CC0 / public-domain samples), plus every .jpg/.png in --photos DIR at its own size.
The README's figures use the 12 photos of Debian's mate-backgrounds package (GPL-2+, 1.3-4.9 MP), unpacked with
`apt-get download mate-backgrounds && dpkg-deb -x mate-backgrounds_*.deb mate` -> --photos
mate/usr/share/backgrounds/mate/nature. Each photo gets a square hole over its centre, a tenth, a fifth and a
quarter of its short side, filled by:
- harmonic: the membrane fill (`synth.starts.smooth_fill`) at the photo's size, the plain baseline;
- exemplar: the textured start alone (`synth.exemplar`, no PGD);
- inpaint fill=smooth: the previous default (fill at the model's size, resampled into the hole);
- inpaint fill=texture: the new default (PGD's change added to the textured start).

Columns, over the hole:
- texture: std of the Laplacian of the fill / of the original there (1 = as much fine detail as the photo);
- judge: an LPIPS-style distance to the original, from the early layers (stem, stages 1-2) of a standard
  CIFAR-style ResNet-20 trained from scratch on 64 px Tiny ImageNet here (benchmarks/judges/, never used to
  synthesise): channel-normalised features, squared differences, averaged over the hole; x harmonic: the mean
  ratio to the harmonic fill's distance on the same hole;
- judge texture: a DISTS-style texture term from the same layers (Ding et al. 2020): each channel's mean and
  std over the hole compared, so a texture in the wrong place is not counted as wrong at every pixel;
- PSNR (dB).
--speed: one centred hole (each size) on a 1 MP and a 12 MP photo, the median of 5 runs each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import synth
from synth.metrics import psnr
from synth.exemplar import exemplar_fill
from synth.images import to_tensor
from synth.photos import Crops
from synth.starts import smooth_fill

JUDGE = ROOT / "benchmarks" / "judges" / "tiny-imagenet-cifar-resnet20-standard"
FRACTIONS = (0.1, 0.2, 0.25)
LAPLACE = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)


def photos(folder: str | None) -> list[tuple[str, Image.Image]]:
    files = sorted((ROOT / "examples" / "photos").glob("*.jpg"))
    if folder:
        files += sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [(p.stem, Image.open(p).convert("RGB")) for p in files]


def centre_hole(im: Image.Image, frac: float) -> tuple[Image.Image, tuple[int, int, int, int]]:
    side = int(frac * min(im.size))
    left, top = (im.width - side) // 2, (im.height - side) // 2
    mask = Image.new("L", im.size, 0)
    mask.paste(255, (left, top, left + side, top + side))
    return mask, (top, left, top + side, left + side)


def fills(model, im: Image.Image, mask: Image.Image) -> dict[str, Image.Image]:
    """Each method's result on the photo (outside the hole the photo's own)."""
    harmonic = Crops([im], [mask], model.input_size)
    harmonic.fill(smooth_fill)
    exemplar = Crops([im], [mask], model.input_size)
    exemplar.fill(exemplar_fill)
    return {
        "harmonic": harmonic.paste_residual(harmonic.batch)[0],
        "exemplar": exemplar.paste_residual(exemplar.batch)[0],
        "inpaint fill=smooth": synth.inpaint(model, im, mask, fill="smooth"),
        "inpaint fill=texture": synth.inpaint(model, im, mask, fill="texture"),
    }


class Judge:
    """LPIPS-style distance (Zhang et al. 2018, without the learned weights) from a standard network's early
    layers."""

    def __init__(self, spec: str | Path = JUDGE):
        from training.runs import load_any  # a model folder, or a training run of one

        self.model = load_any(str(spec)).eval()

    @torch.no_grad()
    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.model.net
        z = F.relu(net.bn1(net.conv1(self.model.normalize(x))))
        out = [z]
        for stage in (net.blocks[:3], net.blocks[3:6]):
            z = stage(z)
            out.append(z)
        return out

    def distances(self, a: torch.Tensor, b: torch.Tensor, hole: torch.Tensor) -> tuple[float, float]:
        """(aligned, texture): the LPIPS-style distance, pixel by pixel; and a DISTS-style texture term (Ding et
        al. 2020): the same features' mean and std per channel over the hole compared, blind to where a texture is."""
        aligned = texture = 0.0
        for fa, fb in zip(self.layers(a), self.layers(b)):
            na, nb = F.normalize(fa, dim=1), F.normalize(fb, dim=1)
            w = F.interpolate(hole, size=fa.shape[-2:], mode="area")
            aligned += float(((na - nb) ** 2).sum(1, keepdim=True).mul(w).sum() / w.sum())
            ma, mb = (na * w).sum((2, 3)) / w.sum(), (nb * w).sum((2, 3)) / w.sum()
            sa = ((na - ma[..., None, None]) ** 2 * w).sum((2, 3)).div(w.sum()).sqrt()
            sb = ((nb - mb[..., None, None]) ** 2 * w).sum((2, 3)).div(w.sum()).sqrt()
            texture += float(((ma - mb) ** 2 + (sa - sb) ** 2).sum())
        return aligned, texture


def scores(judge: Judge, original: Image.Image, filled: Image.Image, box) -> dict[str, float]:
    """The metrics over the hole, computed on the hole's box grown by 16 px (the judge's context)."""
    top, left, bottom, right = box
    pad = 16
    crop = (max(0, left - pad), max(0, top - pad), min(original.width, right + pad), min(original.height, bottom + pad))
    o, f = to_tensor(original.crop(crop)), to_tensor(filled.crop(crop))
    hole = torch.zeros(1, 1, *o.shape[-2:])
    hole[..., top - crop[1] : bottom - crop[1], left - crop[0] : right - crop[0]] = 1
    inner = hole[..., 1:-1, 1:-1] > 0

    def laplacian_std(t):
        return float(F.conv2d(t.mean(1, keepdim=True), LAPLACE)[inner].std())

    aligned, texture = judge.distances(o, f, hole)
    return {
        "texture": laplacian_std(f) / max(laplacian_std(o), 1e-8),
        "judge": aligned,
        "judge texture": texture,
        "psnr": float(psnr(f, o, hole)),
    }


def quality(model, judge: Judge, pics) -> None:
    rows: dict[tuple[float, str], list[dict]] = {}
    for name, im in pics:
        for frac in FRACTIONS:
            mask, box = centre_hole(im, frac)
            results = fills(model, im, mask)
            base = scores(judge, im, results["harmonic"], box)
            for method, filled in results.items():
                s = scores(judge, im, filled, box)
                s["x harmonic"] = s["judge"] / base["judge"]
                s["texture x harmonic"] = s["judge texture"] / base["judge texture"]
                rows.setdefault((frac, method), []).append(s)
            print(f"  {name} {im.width}x{im.height} hole {frac}: done", file=sys.stderr, flush=True)
    print(f"\n{len(pics)} photos, model {model.name}\n")
    print("| hole | method | texture | judge | x harmonic | judge texture | x harmonic | PSNR (dB) |")
    print("|---|---|---|---|---|---|---|---|")
    for frac in (*FRACTIONS, None):
        for method in ("harmonic", "exemplar", "inpaint fill=smooth", "inpaint fill=texture"):
            got = [s for (f, m), ss in rows.items() if m == method and frac in (None, f) for s in ss]
            mean = {k: statistics.fmean(s[k] for s in got) for k in got[0]}
            hole = "all" if frac is None else f"1/{round(1 / frac)}"
            print(
                f"| {hole} | {method} | {mean['texture']:.2f} | {mean['judge']:.3f} | {mean['x harmonic']:.2f} "
                f"| {mean['judge texture']:.3f} | {mean['texture x harmonic']:.2f} | {mean['psnr']:.1f} |"
            )


def speed(model) -> None:
    from benchmarks.bench_photos import photo_of  # the upscaled CC0 cat the other photo benchmarks time

    print("\n| hole | fill | 1 MP (s) | 12 MP (s) | 12 MP / 1 MP |\n|---|---|---|---|---|")
    ims = {mp: photo_of(mp) for mp in (1, 12)}
    for frac in FRACTIONS:
        for fill in ("smooth", "texture"):
            t = {}
            for mp, im in ims.items():
                mask, _ = centre_hole(im, frac)
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    synth.inpaint(model, im, mask, fill=fill)
                    times.append(time.perf_counter() - start)
                t[mp] = statistics.median(times)
            print(f"| 1/{round(1 / frac)} | {fill} | {t[1]:.2f} | {t[12]:.2f} | {t[12] / t[1]:.2f} |", flush=True)


def figure(model, pics, out: Path, names: list[str], frac: float = 0.2) -> None:
    """Per photo: the hole's surroundings at full size (1:1 pixels): original, harmonic, inpaint fill=smooth, the
    exemplar start alone, inpaint fill=texture."""
    rows = []
    for name, im in pics:
        if name not in names:
            continue
        mask, (top, left, bottom, right) = centre_hole(im, frac)
        results = fills(model, im, mask)
        pad = (bottom - top) // 4
        box = (left - pad, top - pad, right + pad, bottom + pad)
        methods = ("harmonic", "inpaint fill=smooth", "exemplar", "inpaint fill=texture")
        cells = [im.crop(box)] + [results[m].crop(box) for m in methods]
        rows.append(np.concatenate([np.asarray(c) for c in cells], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(out, quality=90)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=None, help="a folder of more photos, used at their own size")
    ap.add_argument("--model", default=None, help="default: the embedded default model")
    ap.add_argument("--judge", default=str(JUDGE), help="the judge: a model folder or training run")
    ap.add_argument("--speed", action="store_true", help="only the timing table")
    ap.add_argument("--figure", default=None, help="write the README figure here instead of the tables")
    ap.add_argument("--figure-photos", default="Dune,GreenMeadow,Wood", help="photo names for --figure")
    args = ap.parse_args()
    model = synth.load_model(args.model)
    if args.speed:
        return speed(model)
    pics = photos(args.photos)
    if args.figure:
        return figure(model, pics, Path(args.figure), args.figure_photos.split(","))
    quality(model, Judge(args.judge), pics)


if __name__ == "__main__":
    main()
