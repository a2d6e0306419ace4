"""Fit a class-conditional seed bank: python -m training.fit_seeds RUN --data DATA [--split train] [--rank 32]

Per class: mean + top-`rank` principal directions (fp16) + isotropic residual (synth.seeds.SeedBank), fitted
on images at the model's input size, block-averaged by `grain` (1 for <= 64 px, 4 above, as the authors).
Writes RUN/seeds.safetensors (training.export ships it next to the model).

With --imagenet-wnids, DATA is a folder of ImageNet-1k classes named by WordNet id with a classes.tsv (the Tiny
ImageNet layout: <split>/<wnid>/*.JPEG, classes.tsv = wnid TAB names) and RUN any output folder: the bank covers
those classes under their index in the 1000-class ImageNet models (synth/pretrained/imagenet-seeds was made so:
python -m training.fit_seeds synth/pretrained/imagenet-seeds --imagenet-wnids --data tiny-imagenet-200).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from synth.models import SEEDS_FILE
from synth.seeds import SeedBank
from training.data import DataError, InMemory, imagenet_indices, open_split, read_wnid_names
from training.runs import load_any

# ImageNet models see Resize(256) + CenterCrop(224); the authors fit their seeds 4x downsampled (56 px). Images of
# any size are brought to that view at 1/4 scale (64 -> centre 56), then block-averaged to the bank's resolution.
IMAGENET_VIEW = (64, 56)
IMAGENET_INPUT = 224
IMAGENET_RES, IMAGENET_RANK, IMAGENET_BASIS = 28, 64, 64  # chosen with benchmarks/sweep_seed_bank.py


def load_wnid_images(folder: str, split: str, per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N,3,56,56) images of a wnid-folder split in the ImageNet models' view, and their ImageNet indices."""
    from torchvision import transforms
    from torchvision.transforms.functional import pil_to_tensor

    index = imagenet_indices(read_wnid_names(folder))
    view = transforms.Compose([transforms.Resize(IMAGENET_VIEW[0]), transforms.CenterCrop(IMAGENET_VIEW[1])])
    ds = open_split(folder, split, transforms.Compose([view, pil_to_tensor]))
    unknown = [c for c in ds.classes if c not in index]
    if unknown:
        raise DataError(f"{folder!r}: class folders without a classes.tsv line: {', '.join(unknown[:5])}")
    targets = torch.tensor(ds.targets)
    keep = torch.cat([torch.nonzero(targets == k)[:per_class, 0] for k in range(len(ds.classes))])
    images = torch.stack([ds[i][0] for i in keep.tolist()])
    labels = torch.tensor([index[ds.classes[t]] for t in targets[keep].tolist()])
    return images, labels


def fit_imagenet_bank(images: torch.Tensor, labels: torch.Tensor, res: int, rank: int, basis: int = 0) -> SeedBank:
    """A sparse bank for the ImageNet models from 56 px views (`load_wnid_images`), at `res` px (56, 28, 14...),
    its directions in a shared basis of `basis` directions (0: none)."""
    if IMAGENET_VIEW[1] % res:
        raise ValueError(f"resolution {res} must divide {IMAGENET_VIEW[1]}")
    classes, grain = labels.unique().tolist(), IMAGENET_VIEW[1] // res
    bank = SeedBank.fit(images, labels, classes=classes, grain=grain, rank=rank, basis=basis)
    bank.grain = IMAGENET_INPUT // res  # one seed pixel is this many model-input pixels, not view pixels
    return bank


def _fit_for_run(args) -> tuple[SeedBank, Path, str]:
    model = load_any(args.run)
    size = model.input_size
    grain = args.grain or (1 if size <= 64 else 4)
    targets = torch.tensor(open_split(args.data, args.split).targets)
    keep = torch.cat([torch.nonzero(targets == k)[: args.per_class, 0] for k in range(model.num_classes)])
    data = InMemory.load(args.data, args.split, size, indices=keep.tolist())
    basis = args.basis or 0
    bank = SeedBank.fit(data.images, data.labels, model.num_classes, grain=grain, rank=args.rank, basis=basis)
    return bank, Path(args.run), f"{len(data)} {args.split} images (grain {grain}, rank {args.rank}, basis {basis})"


def _fit_for_imagenet(args) -> tuple[SeedBank, Path, str]:
    images, labels = load_wnid_images(args.data, args.split, args.per_class)
    res, rank = args.res or IMAGENET_RES, args.rank or IMAGENET_RANK
    basis = IMAGENET_BASIS if args.basis is None else args.basis
    bank = fit_imagenet_bank(images, labels, res, rank, basis)
    Path(args.run).mkdir(parents=True, exist_ok=True)
    what = f"{len(images)} {args.split} images ({res} px, rank {rank}, basis {basis}, ImageNet indices)"
    return bank, Path(args.run), what


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.fit_seeds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", help="run folder (or exported folder) to write seeds.safetensors into")
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--rank", type=int, default=None, help=f"default 32, {IMAGENET_RANK} with --imagenet-wnids")
    p.add_argument("--grain", type=int, default=None)
    p.add_argument(
        "--basis",
        type=int,
        default=None,
        help=f"directions in a shared basis of N (0: none; {IMAGENET_BASIS} with --imagenet-wnids)",
    )
    p.add_argument("--per-class", type=int, default=1000, help="at most N images per class")
    p.add_argument("--imagenet-wnids", action="store_true", help="DATA has wnid folders + classes.tsv (see above)")
    p.add_argument("--res", type=int, default=None, help=f"with --imagenet-wnids: seed pixels (default {IMAGENET_RES})")
    args = p.parse_args(argv)
    try:
        if args.imagenet_wnids:
            bank, folder, what = _fit_for_imagenet(args)
        else:
            args.rank = args.rank or 32
            bank, folder, what = _fit_for_run(args)
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")
    out = folder / SEEDS_FILE
    bank.save(out)
    print(f"fitted seeds for {bank.num_classes} classes from {what} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
