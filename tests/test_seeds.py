"""Class seeds: sparse banks (some classes seeded, the rest generic), the wnid -> ImageNet index mapping, the bank
shipped for the Hub's ImageNet models and its use in generation (offline, a random network)."""

import types

import pytest
import torch
from conftest import KNOWN, tiny_imagenet
from hub_cache import put
from safetensors.torch import save_file
from test_models import run_offline

import synth
from synth.models import IMAGENET_SEEDS, MADRYLAB_REPO, ModelLoadError
from synth.seeds import SeedBank, generic_seed, seeds_for
from training.fit_seeds import imagenet_indices, load_wnid_images, read_wnid_names


def colour_bank(size: int = 8, **fit) -> SeedBank:
    """A sparse bank for classes 5 (red images) and 7 (blue), 8 px."""
    x = torch.full((20, 3, size, size), 0.05) + 0.05 * torch.rand(20, 3, size, size, generator=torch.Generator())
    x[:10, 0] += 0.85
    x[10:, 2] += 0.85
    return SeedBank.fit(x, torch.tensor([5] * 10 + [7] * 10), classes=[7, 5], rank=2, **fit)


def stub(bank, size: int = 32):
    """What seeds_for reads from a model."""
    return types.SimpleNamespace(seed_bank=bank, input_size=size, name="stub", class_names=[f"c{i}" for i in range(10)])


def test_wnid_mapping_on_known_classes(tmp_path):
    index = imagenet_indices(read_wnid_names(tiny_imagenet(tmp_path)))
    assert index == {w: i for w, (_, i) in KNOWN.items()}
    images, labels = load_wnid_images(str(tmp_path), "train")
    assert images.shape == (16, 3, 56, 56) and images.dtype == torch.uint8  # the models' centre view, 1/4 scale
    assert sorted(set(labels.tolist())) == sorted(i for _, i in KNOWN.values())


def test_wnid_mapping_refuses_what_it_cannot_pin_down():
    with pytest.raises(ValueError, match="no ImageNet classes match"):
        imagenet_indices({"n01443537": "goldfish", "n99999999": "flying saucer"})
    with pytest.raises(ValueError, match="sorted-wnid order"):  # names swapped between wnids: caught by the order
        imagenet_indices({"n01443537": "seashore", "n09428293": "goldfish"})


def test_sparse_bank_gives_each_covered_class_its_seed():
    bank = colour_bank()
    assert bank.classes.tolist() == [5, 7] and bank.num_classes == 2
    assert bank.covers(torch.tensor([5, 6, 7, 0])).tolist() == [True, False, True, False]
    x = bank.sample(torch.tensor([5, 7, 5]), torch.Generator().manual_seed(0), size=32)
    assert x.shape == (3, 3, 32, 32)  # nearest-upsampled to the size asked
    assert x[0, 0].mean() > 0.7 and x[0, 2].mean() < 0.3 and x[1, 2].mean() > 0.7 and x[1, 0].mean() < 0.3
    with pytest.raises(ValueError, match=r"no seed for class\(es\) \[6\]"):
        bank.sample(torch.tensor([6]))


def test_uncovered_class_falls_back_with_the_warning():
    with pytest.warns(UserWarning, match=r"no class seed for 2 of the requested examples \('c6';.*generic seed"):
        x = seeds_for(stub(colour_bank()), torch.tensor([6, 6]), torch.Generator().manual_seed(3))
    assert torch.equal(x, generic_seed(2, 32, torch.Generator().manual_seed(3)))


def test_mixed_batch_gets_both_and_stays_reproducible():
    bank, labels = colour_bank(), torch.tensor([5, 6, 7])
    with pytest.warns(UserWarning, match="c6"):
        x = seeds_for(stub(bank), labels, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    seeded = bank.sample(torch.tensor([5, 5, 7]), g, 32)  # the bank's noise comes first, for the whole batch
    assert torch.equal(x[[0, 2]], seeded[[0, 2]])
    assert torch.equal(x[1], generic_seed(3, 32, g)[1])
    assert x.shape == (3, 3, 32, 32)


def test_round_trip_with_classes_and_basis(tmp_path):
    for bank in (colour_bank(), colour_bank(basis=4)):
        bank.save(tmp_path / "s.safetensors")
        back = SeedBank.load(tmp_path / "s.safetensors")
        assert torch.equal(back.classes, bank.classes) and torch.equal(back.factors, bank.factors)
        assert (back.basis is None) == (bank.basis is None)
        g = lambda: torch.Generator().manual_seed(1)
        assert torch.equal(back.sample(torch.tensor([7]), g()), bank.sample(torch.tensor([7]), g()))
    assert bank.factors.shape == (2, 2, 4) and bank.basis.shape == (4, 3 * 8 * 8)


def test_files_without_classes_still_load_and_bad_ones_are_refused(tmp_path):
    bank = colour_bank()
    old = {"mean": bank.mean, "factors": bank.factors, "sigma": bank.sigma, "grain": torch.tensor([1])}
    save_file(old, str(tmp_path / "old.safetensors"))
    dense = SeedBank.load(tmp_path / "old.safetensors")
    assert dense.classes is None and dense.covers(torch.tensor([0, 1, 2])).tolist() == [True, True, False]
    for classes in (torch.tensor([7, 5]), torch.tensor([5]), torch.tensor([5.0, 7.0])):
        save_file({**old, "classes": classes}, str(tmp_path / "bad.safetensors"))
        with pytest.raises(ValueError, match="increasing non-negative class indices"):
            SeedBank.load(tmp_path / "bad.safetensors")
    save_file({**old, "basis": torch.zeros(3, 7)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="not a consistent seed bank"):
        SeedBank.load(tmp_path / "bad.safetensors")


def test_sparse_bank_in_a_model_folder(tmp_path, tiny):
    bank = SeedBank.fit(torch.rand(8, 3, 32, 32), torch.tensor([3] * 4 + [5] * 4), classes=[3, 5], rank=2)
    tiny.seed_bank, dense = bank, tiny.seed_bank
    try:
        tiny.save_pretrained(tmp_path / "m")
        bank.classes = torch.tensor([3, 12])  # past the model's 10 classes
        tiny.save_pretrained(tmp_path / "bad")
    finally:
        tiny.seed_bank = dense
    assert synth.load_model(str(tmp_path / "m")).seed_bank.classes.tolist() == [3, 5]
    with pytest.raises(ModelLoadError, match="up to class 12"):
        synth.load_model(str(tmp_path / "bad"))


def test_shipped_imagenet_bank():
    assert IMAGENET_SEEDS.stat().st_size < 8e6
    bank = SeedBank.load(IMAGENET_SEEDS)
    assert bank.num_classes == 200 and int(bank.classes[-1]) < 1000
    assert bank.covers(torch.tensor([1, 25, 281, 978, 0])).tolist() == [True] * 4 + [False]  # tench: not there
    mean = bank.mean[bank.rows(torch.tensor([1, 951]))].float()  # goldfish, lemon: class-typical colours
    centre = mean[:, :, 10:18, 10:18].mean((2, 3))
    assert centre[0, 0] > centre[0, 2] + 0.1 and centre[1, 1] > centre[1, 2] + 0.1
    assert bank.sample(torch.tensor([1, 1]), torch.Generator().manual_seed(0), 224).shape == (2, 3, 224, 224)


def madrylab_imagenet_resnet18(path):
    """A random 1000-class resnet18 in the robustness library's layout (model weights only: half the file)."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    sd = {"module.model." + k: v for k, v in resnet18(num_classes=1000).state_dict().items()}
    sd["module.normalizer.new_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    sd["module.normalizer.new_std"] = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.save({"model": sd}, path)
    return path


def test_generate_with_an_imagenet_preset_starts_from_the_class_seed(tmp_path):
    f = madrylab_imagenet_resnet18(tmp_path / "resnet18.ckpt")
    cache = tmp_path / "hub"
    put(cache, MADRYLAB_REPO, {"resnet18_l2_eps3.ckpt": f, "resnet18_l2_eps0.ckpt": f})
    code = """
import warnings, torch, synth
from synth.images import to_tensor
from synth.seeds import seeds_for
twin = synth.load_model("imagenet-resnet18-standard")
m = synth.load_model("imagenet-resnet18-l2-eps3")
assert m.seed_bank is twin.seed_bank and m.seed_bank.num_classes == 200
with warnings.catch_warnings():
    warnings.simplefilter("error")  # goldfish is covered: no fallback warning
    imgs, seeds = synth.generate(m, "goldfish", n=2, seed=0, steps=1, return_seeds=True)
expected = seeds_for(m, torch.tensor([1, 1]), torch.Generator().manual_seed(0))
got = torch.cat([to_tensor(s) for s in seeds])
assert got.shape == (2, 3, 224, 224) and (got - expected).abs().max() <= 1 / 255 + 1e-6
assert imgs[0].size == (224, 224)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    synth.generate(m, "tench", n=1, seed=0, steps=1)
print("OK", [str(w.message) for w in caught])
"""
    r = run_offline(code, cache)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "no class seed" in r.stdout and "'tench'" in r.stdout and "generic seed" in r.stdout
