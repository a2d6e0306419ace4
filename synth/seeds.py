"""Class-conditional Gaussian seeds for generation, stored compactly.

The authors fit a full-covariance Gaussian per class on (4x-downsampled for ImageNet) images, add 1e-4*I,
sample, clamp to [0,1] and nearest-upsample. A full covariance is 354 MB per ImageNet class, so a `SeedBank`
keeps the mean plus the top-`rank` principal directions (fp16) and one isotropic residual variance:
    Sigma ~= U U^T + s^2 I,    s^2 = (unexplained variance) / d + 1e-4.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


class SeedBank:
    def __init__(self, mean: torch.Tensor, factors: torch.Tensor, sigma: torch.Tensor, grain: int):
        self.mean = mean  # (K, C, h, w)
        self.factors = factors  # (K, r, C*h*w): rows are sqrt(eigenvalue) * eigenvector
        self.sigma = sigma  # (K,)
        self.grain = int(grain)

    @property
    def num_classes(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def fit(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        *,
        grain: int = 1,
        rank: int = 32,
        jitter: float = 1e-4,
    ) -> "SeedBank":
        """Fit from images in [0,1] (N,C,H,W) and integer labels (N,)."""
        x = F.avg_pool2d(images.float(), grain) if grain > 1 else images.float()
        _, c, h, w = x.shape
        means, factors, sigmas = [], [], []
        for k in range(num_classes):
            xk = x[labels == k].flatten(1).double()
            if len(xk) < 2:
                raise ValueError(f"class {k} has {len(xk)} images; need at least 2 to fit a seed")
            mu = xk.mean(0)
            xc = xk - mu
            _, s, vh = torch.linalg.svd(xc, full_matrices=False)
            var = s**2 / len(xk)  # biased estimate, as the authors'
            r = min(rank, len(var))
            resid = (var.sum() - var[:r].sum()) / xc.shape[1]
            means.append(mu.view(c, h, w))
            f = torch.zeros(rank, xc.shape[1], dtype=torch.float64)
            f[:r] = vh[:r] * var[:r].sqrt()[:, None]
            factors.append(f)
            sigmas.append((resid + jitter).sqrt())
        return cls(torch.stack(means).half(), torch.stack(factors).half(), torch.stack(sigmas).float(), grain)

    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One seed per label, in [0,1], at full resolution (nearest-upsampled by `grain`)."""
        labels = torch.as_tensor(labels).long()
        mean = self.mean[labels].float()
        f = self.factors[labels].float()
        n, r = len(labels), f.shape[1]
        z = torch.randn(n, 1, r, generator=generator)
        e = torch.randn(mean.shape, generator=generator)
        x = mean + (z @ f).view(mean.shape) + self.sigma[labels].view(-1, 1, 1, 1) * e
        x = x.clamp(0, 1)
        return F.interpolate(x, scale_factor=self.grain, mode="nearest") if self.grain > 1 else x

    def save(self, path: str | Path) -> None:
        save_file(
            {
                "mean": self.mean.contiguous(),
                "factors": self.factors.contiguous(),
                "sigma": self.sigma.contiguous(),
                "grain": torch.tensor([self.grain]),
            },
            str(path),
        )

    @classmethod
    def load(cls, path: str | Path) -> SeedBank:
        """A bank written by `save`; ValueError naming the file when it is damaged or not a seed bank."""
        try:
            tensors = load_file(str(path))
        except SafetensorError as e:
            raise ValueError(f"{path} is not a readable safetensors file (corrupt or truncated?): {e}") from None
        return cls.from_tensors(tensors, str(path))

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], where: str = "seed bank") -> SeedBank:
        """A bank from the tensors `save` writes, checked against each other first: a seeds.safetensors file from
        a Hub repo is untrusted, and a bad one would otherwise fail only mid-generation. ValueError naming `where`."""
        missing = [k for k in ("mean", "factors", "sigma", "grain") if k not in t]
        if missing:
            raise ValueError(f"{where} is not a seed bank: it has no {', '.join(missing)}")
        mean, factors, sigma, grain = t["mean"], t["factors"], t["sigma"], t["grain"]
        k = mean.shape[0] if mean.dim() == 4 else 0
        fits = k > 0 and factors.dim() == 3 and factors.shape[0] == k and factors.shape[2] == mean[0].numel()
        fits = fits and sigma.shape == (k,) and grain.numel() == 1 and 1 <= int(grain.flatten()[0]) <= 64
        if not fits or not all(x.is_floating_point() for x in (mean, factors, sigma)):
            shapes = ", ".join(
                f"{n} {tuple(x.shape)} {x.dtype}"
                for n, x in zip(("mean", "factors", "sigma", "grain"), (mean, factors, sigma, grain))
            )
            raise ValueError(f"{where} is not a consistent seed bank ({shapes})")
        return cls(mean, factors, sigma, int(grain.flatten()[0]))


def fit_seed_bank(
    folder: str | Path,
    size: int,
    *,
    grain: int | None = None,
    rank: int = 32,
    per_class: int = 1000,
    classes: list[str] | None = None,
) -> SeedBank:
    """Fit a SeedBank from an image folder with one sub-folder per class (ImageFolder layout, sorted names,
    or `classes` to fix the order). Images are resized and centre-cropped to `size`; `grain` defaults to the
    authors' 1 (<= 64 px) or 4 (larger)."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor

    ds = ImageFolder(
        str(folder),
        transform=Compose([Resize(size), CenterCrop(size), ToTensor()]),
        loader=lambda p: __import__("synth.images", fromlist=["load_image"]).load_image(p),
    )
    names = classes or ds.classes
    missing = [c for c in names if c not in ds.class_to_idx]
    if missing:
        raise ValueError(f"{folder}: no folder for classes {', '.join(missing)}")
    xs, ys = [], []
    for k, name in enumerate(names):
        idx = [i for i, t in enumerate(ds.targets) if t == ds.class_to_idx[name]][:per_class]
        xs += [ds[i][0] for i in idx]
        ys += [k] * len(idx)
    grain = grain or (1 if size <= 64 else 4)
    return SeedBank.fit(torch.stack(xs), torch.tensor(ys), len(names), grain=grain, rank=rank)


def generic_seed(n: int, size: int, generator: torch.Generator | None = None, grain: int = 8) -> torch.Tensor:
    """The documented fallback when a model has no seed bank: grey (0.5) plus N(0, 0.2^2) noise drawn at
    1/`grain` resolution, nearest-upsampled, clamped to [0,1]."""
    small = max(1, size // grain)
    x = 0.5 + 0.2 * torch.randn(n, 3, small, small, generator=generator)
    return F.interpolate(x.clamp(0, 1), size=(size, size), mode="nearest")


def seeds_for(model, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    bank = getattr(model, "seed_bank", None)
    if bank is None:
        warnings.warn(
            f"model {getattr(model, 'name', '?')!r} has no seed bank: using the generic seed "
            "(grey + low-resolution Gaussian noise, synth.seeds.generic_seed)",
            stacklevel=3,
        )
        return generic_seed(len(labels), model.input_size, generator)
    return bank.sample(labels, generator)
