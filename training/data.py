"""Datasets for training and evaluation: ImageFolder, Restricted ImageNet, A/B domain folders.

Small images (CIFAR-size) are decoded once into a uint8 tensor and augmented in batches (fast on a CPU);
large ones stream through a DataLoader with the authors' ImageNet transforms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets, transforms
from torchvision.transforms.functional import pil_to_tensor

from synth.images import list_images, load_image, resize, to_tensor
from synth.models import RESTRICTED_IMAGENET, imagenet_classes, wordnet_names

SPLIT_NAMES = {"train": ("train",), "test": ("test", "val")}


class DataError(ValueError):
    """The data folder is missing, empty or malformed; the message says what was expected."""


def _rgb_loader(path: str):
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")  # grayscale, CMYK, palette -> RGB


class ABFolder(Dataset):
    """CycleGAN layout: <root>/<split>A and <root>/<split>B -> labels 0 (A) and 1 (B)."""

    def __init__(self, root: str, split: str, transform=None, classes=("A", "B")):
        from torchvision.datasets.folder import IMG_EXTENSIONS

        self.samples, self.transform, self.classes = [], transform, list(classes)
        for label, d in enumerate(("A", "B")):
            folder = os.path.join(root, split + d)
            files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))
            self.samples += [(os.path.join(folder, f), label) for f in files]
        self.targets = [t for _, t in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, y = self.samples[i]
        img = _rgb_loader(path)
        return (self.transform(img) if self.transform else img), y


def open_split(root: str, split: str, transform=None, kind: str = "folder"):
    """The `split` ('train' or 'test') of a dataset folder, as a Dataset with `.classes` and `.targets`."""
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist")
    if kind == "ab" or os.path.isdir(os.path.join(root, "trainA")):
        if not all(os.path.isdir(os.path.join(root, split + d)) for d in "AB"):
            raise DataError(f"{root!r}: expected A/B domain folders {split}A/ and {split}B/")
        ds = ABFolder(root, split, transform)
        if len(ds) == 0:
            raise DataError(f"{root!r}: no images in {split}A/ or {split}B/")
        return ds
    folder = next((os.path.join(root, n) for n in SPLIT_NAMES[split] if os.path.isdir(os.path.join(root, n))), None)
    if folder is None:
        raise DataError(
            f"{root!r}: expected an ImageFolder layout with {' or '.join(SPLIT_NAMES[split])}/<class>/*.jpg"
        )
    try:  # Restricted ImageNet uses 9 ranges of the 1000 folders: the others may be absent or empty
        ds = datasets.ImageFolder(
            folder, transform=transform, loader=_rgb_loader, allow_empty=kind == "restricted_imagenet"
        )
    except (FileNotFoundError, RuntimeError) as e:
        raise DataError(f"{folder!r}: not a usable ImageFolder ({e})") from None
    if kind == "restricted_imagenet":
        if len(ds.classes) != 1000:
            raise DataError(
                f"{folder!r}: Restricted ImageNet needs the 1000 ImageNet class folders, found {len(ds.classes)}"
            )
        remap = {}
        for label, (lo, hi) in enumerate(RESTRICTED_IMAGENET.values()):
            remap.update({i: label for i in range(lo, hi + 1)})
        keep = [i for i, t in enumerate(ds.targets) if t in remap]
        ds.samples = [(ds.samples[i][0], remap[ds.targets[i]]) for i in keep]
        ds.targets = [t for _, t in ds.samples]
        ds.imgs, ds.classes = ds.samples, list(RESTRICTED_IMAGENET)
    return ds


@dataclass
class InMemory:
    """A whole split as uint8 NCHW + labels; batches are augmented on the fly (random crop + flip)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list

    @classmethod
    def load(
        cls,
        root: str,
        split: str,
        size: int,
        kind: str = "folder",
        limit: int | None = None,
        indices: list[int] | None = None,
    ) -> "InMemory":
        """Decode a split once; `limit` keeps N evenly spaced images (all classes), `indices` exactly those."""
        tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), pil_to_tensor])
        ds = open_split(root, split, tf, kind)
        idx = range(len(ds)) if limit is None else torch.linspace(0, len(ds) - 1, min(limit, len(ds))).long().tolist()
        idx = indices if indices is not None else idx
        loader = DataLoader(Subset(ds, list(idx)), batch_size=512, num_workers=0)
        xs, ys = zip(*loader)
        return cls(torch.cat(xs), torch.cat(ys), list(ds.classes))

    def __len__(self):
        return len(self.labels)

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        augment: bool = False,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ):
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        order = order[: n - n % world][rank::world]  # equal shares, or DDP ranks would wait on each other
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for s in range(0, stop, batch_size):
            i = order[s : s + batch_size]
            x = self.images[i].float() / 255
            if augment:
                x = random_crop_flip(x, generator)
            yield x, self.labels[i]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """Per-image random crop (zero padding `pad`) and horizontal flip, batched."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * pad)
    xp = xp.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, x.shape[1], h, w)
    out = xp.gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out


JITTER = 0.1  # ColorJitter's brightness, contrast and saturation range for streamed images


def imagenet_transforms(size: int = 224, hue: float = 0.0, grayscale: float = 0.0):
    """ImageNet's training augmentation; `hue` (ColorJitter's, at most 0.5) and `grayscale` (a probability) take
    colour away as a cue, so that a domain model has to tell its classes apart by shape and texture."""
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(size),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(JITTER, JITTER, JITTER, hue),
            transforms.RandomGrayscale(grayscale),
            transforms.ToTensor(),
        ]
    )
    test = transforms.Compose(
        [transforms.Resize(int(size * 256 / 224)), transforms.CenterCrop(size), transforms.ToTensor()]
    )
    return train, test


def read_wnid_names(folder: str | Path) -> dict[str, str]:
    """wnid -> its WordNet names ('goldfish, Carassius auratus') from the folder's classes.tsv."""
    names = wordnet_names(folder)
    if not names:
        raise DataError(f"{folder!r}: no classes.tsv (wnid TAB names, one class a line)")
    return names


def imagenet_indices(names: dict[str, str]) -> dict[str, int]:
    """wnid -> class index in the 1000-class ImageNet models (torchvision's order, the sorted wnid order), found by
    name: torchvision names its classes but ships no wnids. Each wnid takes the one class named like its first
    WordNet name (exact, then ignoring case), else like any of its names; ValueError when none or several fit, or
    when the indices do not rise with the sorted wnids as that order requires (a wrong match would break it)."""
    categories = imagenet_classes()
    lowered = [c.lower() for c in categories]
    found = {}
    for wnid, synonyms in sorted(names.items()):
        syn = [s.strip() for s in synonyms.split(",") if s.strip()] or [""]
        every = {s.lower() for s in syn}
        tiers = (
            [i for i, c in enumerate(categories) if c == syn[0]],
            [i for i, c in enumerate(lowered) if c == syn[0].lower()],
            [i for i, c in enumerate(lowered) if c in every],
        )
        match = next((t for t in tiers if len(t) == 1), None)
        if match is None:
            seen = sorted(set(tiers[2]))
            raise ValueError(
                f"{wnid} ({synonyms}): {'several' if seen else 'no'} ImageNet classes match by name"
                + (f" ({', '.join(categories[i] for i in seen)})" if seen else "")
            )
        found[wnid] = match[0]
    bad = next((w for (w, a), b in zip(found.items(), list(found.values())[1:]) if b <= a), None)
    if bad:
        raise ValueError(f"name matches out of the sorted-wnid order at {bad}: the mapping would be wrong")
    return found


# ---------------------------------------------------------------------------------------------- labelled photos
# Measuring only: ImageNet dev photos named <wnid>_<name>.jpg, labelled by their wnid's line in a wnid list.


def labelled_photos(
    folder: str | Path, wnids: str | Path, limit: int | None = None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The photos (each (1,3,H,W) in [0,1]) and their class indices, in file-name order (first `limit`)."""
    order = {w: i for i, w in enumerate(Path(wnids).read_text().split())}
    files = list_images(folder)[:limit]
    labels = torch.tensor([order[f.name.split("_", 1)[0]] for f in files])
    return [to_tensor(load_image(f)) for f in files], labels


def centre_crop(photo: torch.Tensor, size: int) -> torch.Tensor:
    """The standard evaluation crop of a (1,3,H,W) photo: short side to size * 256 / 224 (bicubic), the centre."""
    h, w = photo.shape[-2:]
    short = round(size * 256 / 224)
    x = resize(photo, (max(short, round(h * short / w)), max(short, round(w * short / h))), "bicubic")
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top : top + size, left : left + size]
