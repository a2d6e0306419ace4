import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
torch.set_num_threads(min(2, os.cpu_count() or 1))

from synth.models import CIFAR10_CLASSES, RobustModel  # noqa: E402
from synth.seeds import SeedBank  # noqa: E402


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
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    a = (rng.random((48, 64, 3)) * 255).astype("uint8")
    return Image.fromarray(a, "RGB")


@pytest.fixture
def mask48x64():
    from PIL import Image

    m = Image.new("L", (64, 48), 0)
    m.paste(255, (20, 10, 40, 30))
    return m
