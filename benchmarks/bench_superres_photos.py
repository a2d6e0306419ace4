"""Super-resolution on photos against bicubic: PSNR, a lattice on flat areas, and a deep-feature distance.

    python -m benchmarks.bench_superres_photos PHOTOS [PHOTOS ...] [--n 20] [--factor 4] [--model NAME]
        [--preset ours] [--eps E --steps N]

Each photo (a folder's first --n images, by name) is reduced to at most --side px, cropped to a multiple of the
factor, area-downsampled by it, then upsampled back by bicubic and by `synth.super_resolve`. Per method, the mean
over photos of:

- PSNR (dB) against the original;
- lattice: on flat areas (the 32 px patches of the original with the lowest quarter of luminance spread), the
  magnitude spectrum of (result - bicubic), each patch Hann-windowed (no edge leakage), averaged over patches; each
  frequency over the median of its ring (same radius; from 2 cycles per patch: slower changes are the smooth
  correction that makes the result downsample to the input, not a pattern). A regular pattern stands out of its
  ring; a smooth correction or noise does not (a ratio near 1.5). Printed per photo (mean, max) and pooled over
  all photos' flat patches (a pattern the method adds everywhere adds up there), with the peak's frequency
  (cycles per patch: 8 is a 4 px period) and amplitude in 8-bit levels. Results are 8-bit, as the user gets them;
- feature distance: 1 - cosine similarity of the original's and the result's activations at four depths of the
  embedded standard ImageNet MobileNetV2 (a judge that never synthesised here), averaged over depths (LPIPS-like:
  channels unit-normalised per pixel first).

Photos are for measuring only (ImageNet dev photos are never committed).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

import synth
from synth.images import list_images, load_image, resize, to_pil, to_tensor
from synth.starts import upsample

JUDGE = "imagenet-mobilenetv2-standard"
JUDGE_LAYERS = (3, 6, 13, 17)  # torchvision's features.<i>: strides 4, 8, 16, 32


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a, b)))


def flat_spectra(result: torch.Tensor, bicubic: torch.Tensor, original: torch.Tensor, patch: int = 32) -> torch.Tensor:
    """The Hann-windowed magnitude spectra of (result - bicubic), grey, on the flattest quarter of the original's
    patch x patch tiles: (n, patch, patch)."""
    grey = lambda x: x[0].mean(0)  # noqa: E731
    diff, orig = grey(result) - grey(bicubic), grey(original)
    h, w = (s // patch * patch for s in orig.shape)
    tiles = lambda x: x[:h, :w].unfold(0, patch, patch).unfold(1, patch, patch).reshape(-1, patch, patch)  # noqa: E731
    spread = tiles(orig).std(dim=(1, 2))
    d = tiles(diff)[spread <= spread.quantile(0.25)]
    hann = torch.hann_window(patch, periodic=False)
    return torch.fft.fft2((d - d.mean(dim=(1, 2), keepdim=True)) * hann[:, None] * hann[None, :]).abs()


def lattice(spectra: torch.Tensor) -> tuple[float, tuple[int, int], float]:
    """(peak over its ring's median, the peak's frequency in cycles per patch, its amplitude in 8-bit levels) of the
    mean of `flat_spectra`: a pattern shows when the ratio is high and its amplitude a level or more."""
    patch = spectra.shape[-1]
    mean = spectra.mean(0)
    f = torch.fft.fftfreq(patch) * patch
    ring = (f[:, None] ** 2 + f[None, :] ** 2).sqrt().round().long()
    ratio = torch.zeros_like(mean)
    for k in range(2, int(ring.max()) + 1):
        ratio[ring == k] = mean[ring == k] / mean[ring == k].median()
    u, v = divmod(int(ratio.argmax()), patch)
    window_gain = torch.hann_window(patch, periodic=False).sum() ** 2
    return float(ratio.max()), (int(f[u]), int(f[v])), float(2 * mean[u, v] / window_gain * 255)


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
    detail = 0 if args.no_detail else args.detail  # 0: no hold (None: the preset's)
    kw = dict(preset=args.preset, eps=args.eps, steps=args.steps, detail=detail)
    eight_bit = lambda x: to_tensor(to_pil(x))  # noqa: E731 - what the user gets
    rows, spectra = {}, {}
    for name, original in photos(args.photos, args.n, args.side, args.factor):
        small = resize(original, (original.shape[-2] // args.factor, original.shape[-1] // args.factor), "area")
        bicubic = resize(small, original.shape[-2:], "bicubic")
        results = {
            "bicubic": eight_bit(bicubic),
            "back-projected start": eight_bit(upsample(small, args.factor)),
            "super_resolve": to_tensor(synth.super_resolve(model, to_pil(small), args.factor, **kw)),
        }
        for method, x in results.items():
            s = flat_spectra(x, bicubic, original)
            spectra.setdefault(method, []).append(s)
            rows.setdefault(method, []).append((psnr(x, original), lattice(s)[0], judge.distance(x, original)))
    print(f"{len(rows['bicubic'])} photos, x{args.factor}, model {model.name}, {kw}; results in 8 bits")
    print(
        "| method | PSNR (dB) | better PSNR than bicubic | flat-area peak / ring median: per photo (max; photos over 3) "
        "| pooled (frequency, amplitude in levels) | feature distance |"
    )
    print("|---|---|---|---|---|---|")
    base = np.array(rows["bicubic"])[:, 0]
    for method, values in rows.items():
        a = np.array(values)
        better = "-" if method == "bicubic" else f"{(a[:, 0] > base).sum()} of {len(a)}"
        ratio, freq, amplitude = lattice(torch.cat(spectra[method]))
        print(
            f"| {method} | {a[:, 0].mean():.2f} | {better} | {a[:, 1].mean():.1f} ({a[:, 1].max():.1f}; "
            f"{(a[:, 1] > 3).sum()} over 3) "
            f"| {ratio:.1f} ({freq}, {amplitude:.2f}) | {a[:, 2].mean():.4f} |"
        )


if __name__ == "__main__":
    main()
