import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, os.cpu_count() or 1))

from synth.models import CIFAR10_CLASSES, RobustModel
from synth.seeds import SeedBank


def make_tiny(seed: int = 0, with_seeds: bool = True) -> RobustModel:
    torch.manual_seed(seed)
    m = RobustModel(
        "cifar_resnet8",
        10,
        CIFAR10_CLASSES,
        mean=[0.49, 0.48, 0.45],
        std=[0.2, 0.2, 0.2],
        input_size=32,
        eps=0.5,
        dataset="cifar10",
    )
    if with_seeds:
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(200, 3, 32, 32, generator=g)
        m.seed_bank = SeedBank.fit(x, torch.arange(200) % 10, 10, rank=4)
    m.name = "tiny"
    return m.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny():
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny):
    d = tmp_path_factory.mktemp("tiny_model")
    tiny.save_pretrained(d)
    return d


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    a = (rng.random((48, 64, 3)) * 255).astype("uint8")
    return Image.fromarray(a, "RGB")


@pytest.fixture
def mask48x64():
    m = Image.new("L", (64, 48), 0)
    m.paste(255, (20, 10, 40, 30))
    return m


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Two classes a classifier can tell apart (bright red-ish vs dark blue-ish noise), 32x32 JPEGs + a
    grayscale and a palette image to check conversion."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 8)):
        for k, name in enumerate(("red", "blue")):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                a = rng.random((32, 32, 3)) * 0.5
                a[..., 0 if k == 0 else 2] += 0.5
                Image.fromarray((a * 255).astype("uint8")).save(d / f"{i}.jpg")
    Image.new("L", (32, 32), 100).save(root / "train" / "red" / "gray.png")
    Image.new("P", (40, 30)).save(root / "train" / "blue" / "pal.png")
    return root


def blank_png(path, width: int, height: int) -> Path:
    """A valid all-black greyscale PNG of any size, written in chunks (a 13000x13000 one is ~170 KB): a
    decompression bomb for the size checks."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z, row, idat = zlib.compressobj(9), bytes(width + 1), b""
    for _ in range(height):
        idat += z.compress(row)
    idat += z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return Path(path)


KNOWN = {  # wnid: (classes.tsv names, index in the ImageNet models); the last four have names shared by two classes
    "n01443537": ("goldfish, Carassius auratus", 1),
    "n01629819": ("European fire salamander, Salamandra salamandra", 25),
    "n02123045": ("tabby, tabby cat", 281),
    "n09428293": ("seashore, coast, seacoast, sea-coast", 978),
    "n01984695": ("spiny lobster, langouste, rock lobster, crawfish, crayfish, sea crawfish", 123),
    "n02808440": ("bathtub, bathing tub, bath, tub", 435),
    "n02963159": ("cardigan", 474),
    "n04008634": ("projectile, missile", 744),
}


def tiny_imagenet(root, split="train", per_class=2):
    (root / "classes.tsv").write_text("".join(f"{w}\t{names}\n" for w, (names, _) in KNOWN.items()))
    for k, wnid in enumerate(KNOWN):
        (root / split / wnid).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (64, 64), (30 * k, 100, 10 * i)).save(root / split / wnid / f"{wnid}_{i}.JPEG")
    return root
