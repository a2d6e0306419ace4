"""Choose the ImageNet seed bank's resolution, basis and rank by held-out likelihood and file size.

    python -m benchmarks.sweep_seed_bank --data ../shared/data/tiny-imagenet-200          # the table (~3 min)
    python -m benchmarks.sweep_seed_bank --data ... --figure docs/seeds_imagenet.png      # the figure instead

Each option (seed resolution in px, shared basis size, rank) is fitted on the train split (250 images per class,
the ImageNet models' view: centre 56 of 64 px) and scored by the test images' (50 per class) negative
log-likelihood under their class's Gaussian, in nats per dimension at a common resolution: every Gaussian is
block-averaged down to it exactly (mean and directions averaged, isotropic variance / cells per block), so finer
banks are neither rewarded nor punished for detail the common resolution cannot see; a bank coarser than it has
no density there (-). Lower is better; `generic` is synth.seeds.generic_seed's Gaussian. Size: the bank's tensors
for the 200 classes (what synth/pretrained/imagenet-seeds ships, plus a < 1 kB header). Lower ranks are the
higher-rank fit truncated, which is what a fit at that rank gives.
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from synth.seeds import SeedBank
from training.fit_seeds import IMAGENET_VIEW, fit_imagenet_bank, load_wnid_images

# (resolution, shared basis size or 0, ranks); no basis at 56 px: its d x d covariance alone is 0.7 GB
OPTIONS = [(56, 0, (0, 1, 2, 4, 8, 16, 32)), (28, 0, (0, 1, 2, 4, 8, 16, 32)), (14, 0, (0, 2, 4, 8, 16, 32))]
OPTIONS += [(28, b, tuple(r for r in (16, 32, 64, b) if r <= b)) for b in (32, 64, 96, 128)]
OPTIONS += [(14, b, tuple(r for r in (16, 32, b) if r <= b)) for b in (32, 64)]
EVAL_AT = (28, 14)
FIGURE_CLASSES = (1, 301, 323, 145, 387, 779, 951, 963, 978, 970, 973, 107)  # goldfish ... jellyfish


def truncate(bank: SeedBank, rank: int) -> SeedBank:
    """The bank a fit with a lower rank gives: the dropped directions' variance joins the isotropic residual."""
    dropped = bank.factors[:, rank:].float().pow(2).sum((1, 2)) / bank.mean[0].numel()
    sigma = (bank.sigma.pow(2) + dropped).sqrt()
    return SeedBank(bank.mean, bank.factors[:, :rank].clone(), sigma, bank.grain, bank.classes, bank.basis)


def generic_bank(classes: torch.Tensor) -> SeedBank:
    """synth.seeds.generic_seed as a bank: grey, N(0, 0.2^2) per cell of 28 px (224 / grain 8)."""
    k = len(classes)
    mean, factors = torch.full((k, 3, 28, 28), 0.5).half(), torch.zeros(k, 0, 3 * 28 * 28).half()
    return SeedBank(mean, factors, torch.full((k,), 0.2), 8, classes)


def nll_per_dim(bank: SeedBank, images: torch.Tensor, labels: torch.Tensor, res: int) -> float | None:
    """Mean negative log-likelihood (nats per dimension) of uint8 56 px `images` at `res` px; None when the bank
    is coarser than `res` (its Gaussian has no density there)."""
    p = bank.mean.shape[-1] // res
    if p < 1 or bank.mean.shape[-1] % res:
        return None
    total, count = 0.0, 0
    for row, k in enumerate(bank.classes.tolist()):
        x = F.avg_pool2d(images[labels == k].double() / 255, IMAGENET_VIEW[1] // res).flatten(1)
        mean = F.avg_pool2d(bank.mean[row : row + 1].double(), p).flatten()
        f = bank.directions(torch.tensor([row]))[0].double().view(bank.factors.shape[1], *bank.mean.shape[1:])
        f = F.avg_pool2d(f, p).flatten(1) if len(f) else f.new_zeros(0, x.shape[1])
        s2 = bank.sigma[row].double() ** 2 / p**2
        d, r = x.shape[1], len(f)
        # Woodbury: Sigma = F^T F + s2 I; only an r x r matrix is factored
        chol = torch.linalg.cholesky(s2 * torch.eye(r, dtype=torch.float64) + f @ f.T)
        xc = x - mean
        proj = torch.linalg.solve_triangular(chol, (xc @ f.T).T, upper=False).T
        quad = (xc.pow(2).sum(1) - proj.pow(2).sum(1)) / s2
        logdet = (d - r) * math.log(s2) + 2 * torch.log(torch.diagonal(chol)).sum()
        total += float((0.5 * (d * math.log(2 * math.pi) + logdet + quad)).sum())
        count += x.numel()
    return total / count


def size_mb(bank: SeedBank) -> float:
    tensors = (bank.mean, bank.factors, bank.sigma, bank.classes, bank.basis)
    return sum(t.numel() * t.element_size() for t in tensors if t is not None) / 1e6


def table(data: str) -> None:
    train, test = load_wnid_images(data, "train"), load_wnid_images(data, "test")
    print(f"{len(train[0])} train, {len(test[0])} test images, {len(train[1].unique())} classes")
    head = "".join(f"  NLL@{r}px" for r in EVAL_AT)
    print(f"{'option':>24} {'MB':>7}{head}")
    row = lambda name, b: print(
        f"{name:>24} {size_mb(b):7.2f}"
        + "".join(f"{v:9.4f}" if v is not None else f"{'-':>9}" for v in (nll_per_dim(b, *test, r) for r in EVAL_AT))
    )
    row("generic", generic_bank(train[1].unique()))
    for res, basis, ranks in OPTIONS:
        full = fit_imagenet_bank(*train, res, max(ranks), basis)
        for rank in sorted(set(ranks)):
            row(f"{res}px {f'basis {basis} ' if basis else ''}rank {rank}", truncate(full, rank))


def figure(data: str, bank_path: str, out: str, cell: int = 112) -> None:
    """Per class (columns): a real test image, the seed mean, one seed sample; nearest-upsampled to `cell` px."""
    from PIL import Image, ImageDraw

    from synth.images import to_pil
    from synth.models import imagenet_classes

    bank = SeedBank.load(bank_path)
    images, labels = load_wnid_images(data, "test", per_class=1)
    classes = torch.tensor(FIGURE_CLASSES)
    real = torch.stack([images[labels == k][0] for k in FIGURE_CLASSES]).float() / 255
    sample = bank.sample(classes, torch.Generator().manual_seed(0), cell)
    grid = [F.interpolate(t, size=(cell, cell), mode="nearest") for t in (real, bank.mean[bank.rows(classes)], sample)]
    pad, top, left = 4, 16, 52
    canvas = Image.new("RGB", (left + len(classes) * (cell + pad), top + 3 * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(("test\nimage", "seed\nmean", "seed\nsample")):
        draw.multiline_text((4, top + pad + i * (cell + pad) + cell // 2 - 12), name, fill="black")
    for j, k in enumerate(FIGURE_CLASSES):
        x = left + j * (cell + pad)
        draw.text((x, 2), imagenet_classes()[k][:18], fill="black")
        for i, t in enumerate(grid):
            canvas.paste(to_pil(t[j].float()), (x, top + pad + i * (cell + pad)))
    canvas.save(out)
    print(f"wrote {out}")


def main(argv=None):
    # Many small matrix products: threads gain little here and, on a CPU others share, slow them 10-40x.
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="tiny-imagenet-200 folder (train/, test/, classes.tsv)")
    p.add_argument("--figure", metavar="PNG", help="draw this figure instead of the table")
    p.add_argument("--bank", default="synth/pretrained/imagenet-seeds/seeds.safetensors")
    args = p.parse_args(argv)
    if args.figure:
        figure(args.data, args.bank, args.figure)
    else:
        table(args.data)


if __name__ == "__main__":
    main()
