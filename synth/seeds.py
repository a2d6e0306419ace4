"""Class-conditional Gaussian seeds for generation, stored compactly.

The authors fit a full-covariance Gaussian per class on (4x-downsampled for ImageNet) images, add 1e-4*I,
sample, clamp to [0,1] and nearest-upsample. A full covariance is 354 MB per ImageNet class, so a `SeedBank`
keeps the mean plus the top-`rank` principal directions (fp16) and one isotropic residual variance:
    Sigma ~= U U^T + s^2 I,    s^2 = (unexplained variance) / d + 1e-4.
Optionally the directions are combinations of a `basis` shared by all classes (the top-b directions of the pooled
within-class covariance): U = A B with A r x b per class, so a bank of many classes affords a higher rank in the
same bytes. A bank may cover only some of a model's classes (`classes`); the others use the generic seed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


class SeedBank:
    def __init__(
        self,
        mean: torch.Tensor,
        factors: torch.Tensor,
        sigma: torch.Tensor,
        grain: int,
        classes: torch.Tensor | None = None,
        basis: torch.Tensor | None = None,
    ):
        self.mean = mean  # (K, C, h, w)
        self.factors = factors  # (K, r, C*h*w), or (K, r, b) with a basis: rows are sqrt(eigenvalue) * eigenvector
        self.sigma = sigma  # (K,)
        self.grain = int(grain)
        # The class index of each row, increasing; None: rows are classes 0..K-1.
        self.classes = None if classes is None else torch.as_tensor(classes).long()
        self.basis = basis  # (b, C*h*w) orthonormal rows, or None: factors are in pixel space

    @property
    def num_classes(self) -> int:
        """How many classes have a seed (the rows; see `classes` for which)."""
        return self.mean.shape[0]

    def covers(self, labels: torch.Tensor) -> torch.Tensor:
        """Bool mask: which labels have a seed here."""
        labels = torch.as_tensor(labels).long()
        if self.classes is None:
            return (labels >= 0) & (labels < self.num_classes)
        return torch.isin(labels, self.classes)

    def rows(self, labels: torch.Tensor) -> torch.Tensor:
        """The bank's row of each label; ValueError for a label it does not cover."""
        labels = torch.as_tensor(labels).long()
        missing = labels[~self.covers(labels)]
        if len(missing):
            raise ValueError(f"no seed for class(es) {sorted(set(missing.tolist()))} in this seed bank")
        return labels if self.classes is None else torch.searchsorted(self.classes, labels)

    def directions(self, rows: torch.Tensor) -> torch.Tensor:
        """The scaled principal directions of these rows in pixel space, float (len(rows), r, C*h*w)."""
        f = self.factors[rows].float()
        return f if self.basis is None else f @ self.basis.float()

    @classmethod
    def fit(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int | None = None,
        *,
        classes: list[int] | None = None,
        grain: int = 1,
        rank: int = 32,
        basis: int = 0,
        jitter: float = 1e-4,
    ) -> SeedBank:
        """Fit from images in [0,1] (or uint8) (N,C,H,W) and integer labels (N,): one seed for each of the classes
        0..num_classes-1, or for each of `classes` (class indices, a sparse bank), block-averaged by `grain`.
        basis > 0: directions within a shared basis of that many (d x d memory for the pooled covariance)."""
        rows = sorted(set(classes)) if classes is not None else range(num_classes)
        shared = _shared_basis(images, labels, rows, grain, basis) if basis else None
        means, factors, sigmas = [], [], []
        for k in rows:
            xk = _class_data(images, labels, k, grain)
            mu = xk.mean(0)
            xc = (xk - mu).flatten(1)
            f = _principal(xc if shared is None else xc @ shared.T, rank)
            resid = (xc.pow(2).sum() / len(xc) - f.pow(2).sum()) / xc.shape[1]  # |row|^2 is its variance
            means.append(mu)
            factors.append(f)
            sigmas.append((resid.clamp(min=0) + jitter).sqrt())
        mean, factors, sigma = torch.stack(means).half(), torch.stack(factors).half(), torch.stack(sigmas).float()
        dense = classes is None
        classes = None if dense else torch.tensor(list(rows))
        return cls(mean, factors, sigma, grain, classes, None if shared is None else shared.half())

    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, size: int | None = None
    ) -> torch.Tensor:
        """One seed per label, in [0,1], nearest-upsampled to `size` x `size` (default: by `grain`). ValueError for
        a label the bank does not cover. The noise drawn does not depend on the labels, only on how many."""
        rows = self.rows(labels)
        mean = self.mean[rows].float()
        f = self.factors[rows].float()
        n, r = len(rows), f.shape[1]
        z = torch.randn(n, 1, r, generator=generator)
        e = torch.randn(mean.shape, generator=generator)
        zf = z @ f if self.basis is None else (z @ f) @ self.basis.float()  # (the small product first)
        x = mean + zf.view(mean.shape) + self.sigma[rows].view(-1, 1, 1, 1) * e
        x = x.clamp(0, 1)
        size = size or x.shape[-1] * self.grain
        return F.interpolate(x, size=(size, size), mode="nearest") if size != x.shape[-1] else x

    def save(self, path: str | Path) -> None:
        tensors = {
            "mean": self.mean.contiguous(),
            "factors": self.factors.contiguous(),
            "sigma": self.sigma.contiguous(),
            "grain": torch.tensor([self.grain]),
        }
        # optional parts only when present: a dense, pixel-space bank's file stays as it always was
        tensors.update(
            {k: v.contiguous() for k, v in (("classes", self.classes), ("basis", self.basis)) if v is not None}
        )
        save_file(tensors, str(path))

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
        names = [n for n in ("mean", "factors", "sigma", "grain", "basis") if n in t]
        if not _consistent(t):
            shapes = ", ".join(f"{n} {tuple(t[n].shape)} {t[n].dtype}" for n in names)
            raise ValueError(f"{where} is not a consistent seed bank ({shapes})")
        k, classes = t["mean"].shape[0], t.get("classes")
        if classes is not None and not _increasing_indices(classes, k):
            raise ValueError(
                f"{where}: 'classes' must be {k} increasing non-negative class indices, "
                f"got {tuple(classes.shape)} {classes.dtype}"
            )
        return cls(t["mean"], t["factors"], t["sigma"], int(t["grain"].flatten()[0]), classes, t.get("basis"))


def _consistent(t: dict[str, torch.Tensor]) -> bool:
    """Shapes and dtypes that fit each other (sample() indexes and multiplies them without further checks)."""
    mean, factors, sigma, grain, basis = (t.get(n) for n in ("mean", "factors", "sigma", "grain", "basis"))
    k = mean.shape[0] if mean.dim() == 4 else 0
    d = mean[0].numel() if k else 0
    width = d if basis is None else basis.shape[0]
    fits = k > 0 and factors.dim() == 3 and factors.shape[0] == k and factors.shape[2] == width
    fits = fits and (basis is None or basis.dim() == 2 and basis.shape[1] == d)
    fits = fits and sigma.shape == (k,) and grain.numel() == 1 and 1 <= int(grain.flatten()[0]) <= 64
    return fits and all(x.is_floating_point() for x in (mean, factors, sigma, *([basis] if basis is not None else [])))


def _class_data(images: torch.Tensor, labels: torch.Tensor, k: int, grain: int) -> torch.Tensor:
    """Class k's images as float64 in [0,1], block-averaged by `grain`: one class at a time, as the whole set in
    float may not fit in memory."""
    xk = images[labels == k]
    if len(xk) < 2:
        raise ValueError(f"class {k} has {len(xk)} images; need at least 2 to fit a seed")
    xk = xk.float() / 255 if xk.dtype == torch.uint8 else xk.float()
    return (F.avg_pool2d(xk, grain) if grain > 1 else xk).double()


def _shared_basis(images: torch.Tensor, labels: torch.Tensor, rows, grain: int, size: int) -> torch.Tensor:
    """Orthonormal rows (size, d): the top directions of the within-class covariance pooled over the classes."""
    scatter, n = 0, 0
    for k in rows:
        xk = _class_data(images, labels, k, grain).flatten(1)
        xc = xk - xk.mean(0)
        scatter, n = scatter + xc.T @ xc, n + len(xc)
    _, vec = torch.linalg.eigh(scatter / n)  # ascending
    return vec.flip(1)[:, : min(size, vec.shape[1])].T.contiguous()


def _principal(xc: torch.Tensor, rank: int) -> torch.Tensor:
    """Top-`rank` principal directions of centred rows xc (n, d), each scaled by the square root of its variance
    (biased estimate, as the authors'), zero rows past the data's rank. From the smaller of the n x n Gram and the
    d x d covariance matrix: a symmetric eigenproblem is several times cheaper than an SVD of xc, and LAPACK's SVD
    slows down badly on a CPU shared with others."""
    n, d = xc.shape
    gram = n < d
    var, vec = torch.linalg.eigh(xc @ xc.T if gram else xc.T @ xc)  # ascending
    r = min(rank, n - 1 if gram else d, len(var))
    var, vec = var.flip(0)[:r].clamp(min=0) / n, vec.flip(1)[:, :r]
    f = torch.zeros(rank, d, dtype=torch.float64)
    # Gram: direction_i = xc^T u_i / sqrt(n var_i), so sqrt(var_i) * direction_i = xc^T u_i / sqrt(n)
    f[:r] = (vec.T @ xc) / n**0.5 if gram else vec.T * var.sqrt()[:, None]
    return f


def _increasing_indices(classes: torch.Tensor, k: int) -> bool:
    """Row lookup (searchsorted) needs the class indices sorted and distinct."""
    if classes.shape != (k,) or classes.is_floating_point() or classes.dtype == torch.bool:
        return False
    c = classes.long()
    return bool(c[0] >= 0 and (c[1:] > c[:-1]).all())


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
    """One seed per label at the model's input size: the class seed where the model's bank has one, the generic
    seed (with a warning naming the classes) elsewhere. The bank's noise is drawn for the whole batch before the
    generic noise, so an example's seed depends on the generator, its label and the batch size only."""
    labels = torch.as_tensor(labels).long()
    bank = getattr(model, "seed_bank", None)
    covered = bank.covers(labels) if bank is not None else torch.zeros(len(labels), dtype=torch.bool)
    if covered.all():
        return bank.sample(labels, generator, model.input_size)
    _warn_generic(model, labels[~covered], bank)
    if not covered.any():
        return generic_seed(len(labels), model.input_size, generator)
    stand_in = labels[covered][0]  # (uncovered rows draw the same noise, then take the generic seed)
    x = bank.sample(torch.where(covered, labels, stand_in), generator, model.input_size)
    x[~covered] = generic_seed(len(labels), model.input_size, generator)[~covered]
    return x


def _warn_generic(model, missing: torch.Tensor, bank) -> None:
    what = "(grey + low-resolution Gaussian noise, synth.seeds.generic_seed)"
    if bank is None:
        message = f"model {getattr(model, 'name', '?')!r} has no seed bank: using the generic seed {what}"
    else:
        names = getattr(model, "class_names", None)
        distinct = sorted(set(missing.tolist()))
        shown = [repr(names[i]) if names else str(i) for i in distinct[:5]]
        more = f" and {len(distinct) - 5} more" if len(distinct) > 5 else ""
        message = (
            f"model {getattr(model, 'name', '?')!r} has no class seed for {len(missing)} of the requested "
            f"examples ({', '.join(shown)}{more}; its bank covers {bank.num_classes} classes): using the "
            f"generic seed {what} for those"
        )
    warnings.warn(message, stacklevel=4)
