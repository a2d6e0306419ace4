"""The committed embedded models: they load offline, classify real CIFAR-10 test images far above chance,
and the robust one stays accurate under a small L2 attack where its standard twin does not."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import synth
from synth.images import load_image, to_tensor
from synth.pgd import pgd

SAMPLES = Path(__file__).parent / "data" / "cifar10_samples"  # 10 test images per class, shipped with the tests


@pytest.fixture(scope="module")
def samples():
    files = sorted(SAMPLES.glob("*/*.jpg"))
    classes = sorted({f.parent.name for f in files})
    x = torch.cat([to_tensor(load_image(f)) for f in files])
    y = torch.tensor([classes.index(f.parent.name) for f in files])
    return x, y, classes


def accuracy(model, x, y, eps=0.0):
    if eps > 0:
        x = pgd(
            lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none"),
            x,
            eps=eps,
            step_size=2.5 * eps / 10,
            steps=10,
            maximize=True,
            precision="fp32",
        )
    with torch.no_grad():
        return (model.logits(x).argmax(1) == y).float().mean().item()


def test_default_is_the_robust_model(samples):
    model = synth.load_model()
    x, y, classes = samples
    assert model.name == synth.DEFAULT_MODEL and model.class_names == classes
    assert model.eps == 0.5 and model.input_size == 32 and model.seed_bank is not None
    assert accuracy(model, x, y) >= 0.6  # chance is 0.1
    assert accuracy(model, x, y, eps=0.5) >= 0.4  # robust at the radius it was trained for


def test_standard_twin(samples):
    robust = synth.load_model()
    twin = synth.load_model(synth.standard_twin(robust))
    x, y, _ = samples
    assert twin.eps == 0 and twin.arch == robust.arch
    assert accuracy(twin, x, y) >= 0.7
    assert accuracy(twin, x, y, eps=0.5) < 0.2  # not robust: that is the paper's point


def test_embedded_models_are_small():
    root = Path(synth.models.PRETRAINED_DIR)
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total < 10_000_000
