"""The paper's Restricted-ImageNet targets (dog, cat, ..., insect) on ImageNet models, on tiny 1000-class models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import synth
from synth.models import RESTRICTED_IMAGENET, RobustModel, imagenet_classes
from synth.seeds import SeedBank

ROOT = Path(__file__).resolve().parents[1]


def tiny_imagenet_model(seed_classes=None) -> RobustModel:
    """A random 32 px network with ImageNet's 1000 classes (a seed bank over `seed_classes`, if given)."""
    torch.manual_seed(0)
    m = RobustModel("cifar_resnet8", 1000, imagenet_classes(), input_size=32, eps=1.0, dataset="imagenet")
    with torch.no_grad():  # logits that depend on the image (a random network's barely do)
        m.net.fc.weight.mul_(30)
    if seed_classes is not None:
        x = torch.rand(4 * len(seed_classes), 3, 32, 32, generator=torch.Generator().manual_seed(0))
        labels = torch.tensor(seed_classes).repeat(4)
        m.seed_bank = SeedBank.fit(x, labels, 1000, classes=seed_classes, rank=2)
    m.name = "tiny-imagenet-classes"
    return m.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def model():
    return tiny_imagenet_model()


def p_super(model, image, name) -> float:
    """The model's probability of super-class `name` on an image: the sum over its classes."""
    x = synth.images.resize(synth.images.to_tensor(image), model.input_size)
    p = model.logits(x).softmax(1)[0]
    return float(p[model.target_classes(name)].sum())


def test_the_nine_super_classes_hold_the_classes_the_paper_names(model):
    groups = model.superclasses()
    assert list(groups) == ["dog", "cat", "frog", "turtle", "bird", "primate", "fish", "crab", "insect"]
    names = {k: {model.class_names[i] for i in v} for k, v in groups.items()}
    assert {"golden retriever", "Chihuahua"} <= names["dog"] and "tabby" in names["cat"]
    assert "goldfish" not in names["fish"] and "hen" not in names["bird"]  # Table 2's ranges, not every fish or bird
    assert {"Dungeness crab", "king crab"} <= names["crab"] and "ladybug" in names["insect"]
    assert not set().union(*names.values()) & {"tench", "hotdog"}


def test_only_imagenet_class_models_have_them(model):
    cifar = synth.load_model("cifar10-resnet20-l2-eps0.5")
    assert cifar.superclasses() == {} and cifar.target_classes("dog") == [cifar.class_index("dog")]  # CIFAR's dog
    tiny = synth.load_model("tiny-imagenet-resnet18-half-l2-eps1")  # 200 ImageNet classes: the groups it has
    assert set(tiny.superclasses()) == {"dog", "cat", "frog", "bird", "primate", "insect"}
    with pytest.raises(ValueError, match="no class of super-class 'turtle'; its super-classes: dog, cat"):
        tiny.target_classes("turtle")
    assert model.target_classes("Tabby") == [model.class_index("tabby")]  # a class is still one class


def test_the_loss_of_a_super_class_is_minus_the_log_of_its_summed_probability(model):
    x = torch.rand(3, 3, 32, 32)
    mask = torch.zeros(3, 1000, dtype=torch.bool)
    mask[0, model.target_classes("dog")] = True
    mask[1, model.target_classes("crab")] = True
    mask[2, 7] = True  # one class: the cross-entropy
    loss = synth.class_loss(mask)(model, x)
    p = model.logits(x).softmax(1)
    expected = -torch.log(torch.stack([p[k][mask[k]].sum() for k in range(3)]))
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss[2], synth.class_loss(torch.tensor([7]))(model, x[2:])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", ["translate", "visualize"])
def test_translate_and_visualize_toward_a_super_class_raise_its_probability(model, photo, task):
    out = getattr(synth, task)(model, photo, "insect", steps=10, eps=3.0, step_size=0.5)
    out = out[-1] if task == "visualize" else out
    assert p_super(model, out, "insect") > 2 * p_super(model, photo, "insect")


def test_generate_a_super_class_starts_from_its_classes_seeds():
    covered = [151, 200, 281]  # two dog breeds and a cat
    m = tiny_imagenet_model(seed_classes=covered)
    assert synth.tasks.generation_classes(m, "dog", 3) == ["dog"] * 3
    picked = synth.tasks._seed_classes(m, synth.tasks._targets(m, "dog", 50), torch.Generator().manual_seed(0))
    assert set(picked.tolist()) == {151, 200}  # dog classes the seed bank covers, each drawn
    a, seeds = synth.generate(m, "dog", n=2, seed=4, steps=5, return_seeds=True)
    b = synth.generate(m, "dog", n=2, seed=4, steps=5)
    assert [list(im.getdata()) for im in a] == [list(im.getdata()) for im in b]  # a fixed seed: the same samples
    gain = [p_super(m, im, "dog") - p_super(m, s, "dog") for im, s in zip(a, seeds)]
    assert min(gain) > 0


def test_cli_label_dog(tmp_path):
    d = tmp_path / "model"
    tiny_imagenet_model().save_pretrained(d)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "synth", "generate", "--model", str(d), "--label", "dog", "--n", "2", "--steps", "3"]
    r = subprocess.run([*cmd, "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dog_0.png", "dog_1.png"]
    r = subprocess.run([*cmd[:-4], "--label", "dgo", "--n", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "unknown class 'dgo'" in r.stderr and "Traceback" not in r.stderr


def test_the_training_data_uses_the_same_ranges():
    from training import data

    assert data.RESTRICTED_IMAGENET is RESTRICTED_IMAGENET
