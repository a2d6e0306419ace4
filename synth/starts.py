"""Start images for PGD: where a task begins matters as much as its objective.

The paper starts inpainting from a mean fill and super-resolution from nearest-neighbour upsampling, and says
itself that "a more sophisticated initialization (e.g. bicubic) is likely to yield better results". These are
the classical starts `synth`'s default preset uses instead; each is a few lines of torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mean_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The authors' corruption: masked pixels (mask == 1) set to the image's per-channel mean."""
    return x * (1 - mask) + x.mean(dim=(2, 3), keepdim=True) * mask


_CROSS = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).view(1, 1, 3, 3)


def smooth_fill(x: torch.Tensor, mask: torch.Tensor, iters: int = 40) -> torch.Tensor:
    """Harmonic (membrane) fill: masked pixels solve Laplace's equation with the unmasked pixels as the boundary.

    Solved coarse-to-fine: the fill of the half-resolution problem, bilinearly upsampled, starts `iters` Jacobi
    sweeps at each level, so large holes converge in a few hundred cheap convolutions. Pixels outside the mask
    are returned unchanged; a constant image stays constant. x: (B,C,H,W), mask: (B,1,H,W) in {0,1}.
    """
    known = 1 - mask
    if min(x.shape[-2:]) > 8:
        w = F.avg_pool2d(known, 2, ceil_mode=True)
        coarse = F.avg_pool2d(x * known, 2, ceil_mode=True) / w.clamp_min(1e-6)
        init = F.interpolate(smooth_fill(coarse, (w == 0).float(), iters), size=x.shape[-2:], mode="bilinear")
    else:  # coarsest level: the mean of the known pixels
        init = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
        init = init.expand_as(x)
    z = x * known + init * mask
    kernel = _CROSS.to(x).repeat(x.shape[1], 1, 1, 1)
    for _ in range(iters):
        z = x * known + F.conv2d(F.pad(z, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1]) * mask
    return z


# inpainting's starts made at the model's size; its 'texture' start is made at the photo's (synth.exemplar)
FILLS = {"smooth": smooth_fill, "mean": mean_fill}
INPAINT_FILLS = ("texture", *FILLS)  # every `inpaint(fill=...)`


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Area (block-average) downsampling: the image formation model super-resolution inverts."""
    return F.avg_pool2d(x, factor)


def consistent_with(small: torch.Tensor, factor: int, iters: int = 24):
    """Projection onto {x in [0,1] : downsample(x, factor) == small}, a `synth.pgd` constraint: PGD's class push
    then only adds detail the low-resolution input cannot see.

    Exact: the nearest point shifts every pixel of a block by the same t and clamps, clamp(x + t); t is found per
    block by bisection (`iters` halvings of [-1, 1], so within 1e-7 after 24)."""

    def project(x):
        target = small.to(x)
        lo, hi = torch.full_like(target, -1.0), torch.full_like(target, 1.0)
        up = lambda t: F.interpolate(t, scale_factor=factor, mode="nearest")  # noqa: E731
        for _ in range(iters):
            t = (lo + hi) / 2
            over = downsample((x + up(t)).clamp(0, 1), factor) > target
            hi, lo = torch.where(over, t, hi), torch.where(over, lo, t)
        return (x + up((lo + hi) / 2)).clamp(0, 1)

    return project


def held_to_detail(x0: torch.Tensor, ref: float, k: int = 5):
    """A `synth.pgd` constraint that scales each pixel's change from x0 by the detail around it in x0: the local
    standard deviation (grey, over k x k pixels) over `ref`, capped at 1. Where the start is flat the class push is
    held back - a flat sky stays flat - and where it has edges and texture the push adds detail. (x0 + w (x - x0)
    lies between x0 and x: still in the ball and the box.)"""
    g = x0.mean(1, keepdim=True)
    pad = lambda t: F.pad(t, (k // 2,) * 4, mode="replicate")  # noqa: E731
    mean = F.avg_pool2d(pad(g), k, 1)
    spread = (F.avg_pool2d(pad(g * g), k, 1) - mean * mean).clamp_min(0).sqrt()
    w = (spread / ref).clamp(max=1)
    return lambda x: x0 + w * (x - x0)


UPSAMPLING = ("nearest", "bicubic", "backprojected")  # super-resolution's start images


def upsample(small: torch.Tensor, factor: int, mode: str = "backprojected", iters: int = 10) -> torch.Tensor:
    """Upsample (B,C,h,w) by an integer factor: 'nearest' (the paper's start), 'bicubic', or 'backprojected'
    (bicubic refined by iterative back-projection until it downsamples to the input; Irani & Peleg 1991)."""
    if mode not in UPSAMPLING:
        raise ValueError(f"start (upsampling) must be one of {', '.join(UPSAMPLING)}; got {mode!r}")
    if mode == "nearest":
        return F.interpolate(small, scale_factor=factor, mode="nearest")
    x = F.interpolate(small, scale_factor=factor, mode="bicubic", align_corners=False).clamp(0, 1)
    if mode == "backprojected":
        for _ in range(iters):
            residual = small - downsample(x, factor)
            x = (x + F.interpolate(residual, scale_factor=factor, mode="bicubic", align_corners=False)).clamp(0, 1)
    return x
