"""Super-resolution on photos against bicubic: PSNR, a lattice on flat areas, and a deep-feature distance.

    python -m benchmarks.bench_superres_photos PHOTOS [PHOTOS ...] [--n 20] [--factor 4] [--model NAME]
        [--preset ours] [--eps E --steps N]

Each photo (a folder's first --n images, by name) is reduced to at most --side px, cropped to a multiple of the
factor, area-downsampled by it, then upsampled back by bicubic and by `synth.super_resolve`. Per method, the mean
over photos of:

- PSNR (dB) against the original;
- lattice: on flat areas (the 32 px patches of the original with the lowest quarter of luminance spread), the
  magnitude spectrum of (result - bicubic), averaged over patches, DC and its row/column left out: its peak over
  its median. A regular pattern adds up at its frequency; noise does not (a ratio near 2);
- feature distance: 1 - cosine similarity of the original's and the result's activations at four depths of the
  embedded standard ImageNet MobileNetV2 (a judge that never synthesised here), averaged over depths (LPIPS-like:
  channels unit-normalised per pixel first).

Photos are for measuring only (ImageNet dev photos are never committed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import synth
from synth.images import list_images, load_image, resize, to_pil, to_tensor

JUDGE = "imagenet-mobilenetv2-standard"
JUDGE_LAYERS = (3, 6, 13, 17)  # torchvision's features.<i>: strides 4, 8, 16, 32


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a, b)))


def lattice(
    result: torch.Tensor, bicubic: torch.Tensor, original: torch.Tensor, patch: int = 32
) -> tuple[float, float]:
    """(peak over median, peak amplitude in 8-bit levels) of the mean magnitude spectrum of (result - bicubic) on
    the flattest patches: a pattern stands out when the ratio is high, and shows when its amplitude is a level or
    more (the amplitude of a sinusoid: 2 |F| / pixels)."""
    grey = lambda x: x[0].mean(0)  # noqa: E731
    diff, orig = grey(result) - grey(bicubic), grey(original)
    h, w = (s // patch * patch for s in orig.shape)
    tiles = lambda x: x[:h, :w].unfold(0, patch, patch).unfold(1, patch, patch).reshape(-1, patch, patch)  # noqa: E731
    spread = tiles(orig).std(dim=(1, 2))
    flat = spread <= spread.quantile(0.25)
    spectrum = torch.fft.fft2(tiles(diff)[flat]).abs().mean(0)
    spectrum[0, :] = spectrum[:, 0] = float("nan")  # DC and the patch's own row/column means
    values = spectrum[~spectrum.isnan()]
    return float(values.max() / values.median()), float(2 * values.max() / patch**2 * 255)


class Judge:
    """LPIPS-like distance on a standard network's activations (unit-normalised channels, 1 - cosine)."""

    def __init__(self):
        self.model = synth.load_model(JUDGE)
        self.acts: list[torch.Tensor] = []
        for i in JUDGE_LAYERS:
            self.model.net.features[i].register_forward_hook(lambda m, a, out: self.acts.append(out))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.acts = []
        self.model(x)
        return [F.normalize(a, dim=1) for a in self.acts]

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> float:
        return float(np.mean([(1 - (fa * fb).sum(1)).mean() for fa, fb in zip(self.features(a), self.features(b))]))


def photos(folders: list[str], n: int, side: int, factor: int):
    for folder in folders:
        for path in list_images(folder)[:n]:
            img = load_image(path)
            img.thumbnail((side, side))
            w, h = img.width // factor * factor, img.height // factor * factor
            yield path.name, to_tensor(img.crop((0, 0, w, h)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="+", help="folders of photos")
    ap.add_argument("--n", type=int, default=20, help="photos per folder (the first, by name)")
    ap.add_argument("--side", type=int, default=448, help="photos reduced to at most this many px first")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--model", default=None, help="the synthesiser (default: the embedded default model)")
    ap.add_argument("--preset", default="ours")
    ap.add_argument("--eps", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--detail", type=float, default=None, help="super_resolve(detail=): default the preset's")
    ap.add_argument("--no-detail", action="store_true", help="no hold on flat areas (the pre-2026-12 'ours')")
    args = ap.parse_args(argv)
    model, judge = synth.load_model(args.model), Judge()
    rows = {"bicubic": [], "super_resolve": []}
    for name, original in photos(args.photos, args.n, args.side, args.factor):
        small = resize(original, (original.shape[-2] // args.factor, original.shape[-1] // args.factor), "area")
        bicubic = resize(small, original.shape[-2:], "bicubic")
        detail = 0 if args.no_detail else args.detail  # 0: no hold (None: the preset's)
        kw = dict(preset=args.preset, eps=args.eps, steps=args.steps, detail=detail)
        out = synth.super_resolve(model, to_pil(small), args.factor, **kw)
        ours = to_tensor(out)
        for method, x in (("bicubic", bicubic), ("super_resolve", ours)):
            ratio, amplitude = lattice(x, bicubic, original) if method != "bicubic" else (float("nan"),) * 2
            rows[method].append((psnr(x, original), ratio, amplitude, judge.distance(x, original)))
    n = len(rows["bicubic"])
    print(f"{n} photos, x{args.factor}, model {model.name}, {kw}")
    print(
        "| method | PSNR (dB) | better PSNR than bicubic | flat-area peak / median | its amplitude (levels) | feature distance |"
    )
    print("|---|---|---|---|---|---|")
    for method, values in rows.items():
        a = np.array(values)
        if method == "bicubic":
            print(f"| bicubic | {a[:, 0].mean():.2f} | - | - | - | {a[:, 3].mean():.4f} |")
            continue
        better = (a[:, 0] > np.array(rows["bicubic"])[:, 0]).sum()
        print(
            f"| {method} | {a[:, 0].mean():.2f} | {better} of {len(a)} | {a[:, 1].mean():.1f} (max {a[:, 1].max():.1f}) "
            f"| {a[:, 2].mean():.2f} (max {a[:, 2].max():.2f}) | {a[:, 3].mean():.4f} |"
        )


if __name__ == "__main__":
    main()
