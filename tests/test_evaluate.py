"""The harness's metrics on cases with known answers, and the harness end to end on a handful of images."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import evaluate as E
from synth.models import CIFAR10_CLASSES


def test_psnr_known_values():
    x = torch.rand(3, 3, 16, 16)
    assert torch.all(E.psnr(x, x) == E.PSNR_CAP)  # identical: capped, not inf
    y = x + 0.1  # uniform error 0.1 -> MSE 0.01 -> 20 dB
    assert torch.allclose(E.psnr(y, x), torch.full((3,), 20.0), atol=1e-4)
    noise = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 0.05  # sigma 0.05 -> 26.02 dB
    assert abs(float(E.psnr(x[:1].repeat(1, 1, 16, 16) + noise, x[:1].repeat(1, 1, 16, 16))) - 26.02) < 0.05
    m = torch.zeros(1, 1, 16, 16)
    m[..., :4, :4] = 1
    z = x[:1].clone()
    z[..., :4, :4] += 0.1  # error only inside the mask: 20 dB there
    assert abs(float(E.psnr(z, x[:1], m)) - 20.0) < 1e-3


def test_frechet_distance_known_values():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g)
    assert abs(E.frechet_distance(a, a)) < 1e-6  # a set with itself
    shifted = a + torch.tensor([3.0] + [0.0] * 7)  # mean shift 3 -> 9, same covariance
    assert abs(E.frechet_distance(shifted, a) - 9.0) < 1e-4
    wider = a * 2  # N(0,I) vs N(0,4I) in 8-d: tr(I + 4I - 2*2I) = 8
    assert abs(E.frechet_distance(wider, a) - 8.0) < 0.5
    assert E.frechet_distance(torch.randn(4000, 8, generator=g), a) < 0.05  # two samples of one Gaussian


def test_inception_score_known_values():
    assert abs(E.inception_score(torch.full((10, 5), 0.2)) - 1.0) < 1e-6  # uninformative
    assert abs(E.inception_score(torch.eye(5).repeat(4, 1)) - 5.0) < 1e-3  # confident, evenly spread
    assert abs(E.inception_score(torch.eye(5)[[0] * 10]) - 1.0) < 1e-3  # confident but all one class


def test_square_masks_cover_a_tenth():
    m = E.square_masks(50, 32, 0.1, seed=0)
    assert m.shape == (50, 1, 32, 32) and torch.all(m.flatten(1).sum(1) == 100)
    assert not torch.equal(m[0], m[1])  # placed at random
    assert torch.equal(m, E.square_masks(50, 32, 0.1, seed=0))


def test_inception_metrics_code_path_with_random_weights():
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=False, init_weights=False)
    x = torch.rand(3, 3, 32, 32)
    r = E.inception_metrics(x, x, net)
    assert abs(r["fid"]) < 1e-3  # same images
    assert 1.0 <= r["inception_score"] <= 1000
    r2 = E.inception_metrics(x, torch.rand(3, 3, 32, 32), net)
    assert r2["fid"] > r["fid"]


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for c in CIFAR10_CLASSES:
        d = tmp_path / "test" / c
        d.mkdir(parents=True)
        for k in range(3):
            Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8")).save(d / f"{k}.png")
    return tmp_path


def test_load_test_set(image_folder, tiny):
    x, y = E.load_test_set(image_folder, tiny, per_class=2)
    assert x.shape == (20, 3, 32, 32) and sorted(y.tolist()) == sorted(list(range(10)) * 2)
    with pytest.raises(FileNotFoundError):
        E.load_test_set(image_folder / "nope", tiny)


def test_harness_end_to_end(image_folder, tiny_dir, tmp_path, capsys):
    out = tmp_path / "e.json"
    args = ["all", "--data", str(image_folder), "--model", str(tiny_dir), "--judge", str(tiny_dir)]
    args += ["--n", "1", "--gen-n", "1", "--factors", "4", "--presets", "paper", "ours", "--json", str(out)]
    res = E.main(args)
    printed = capsys.readouterr().out
    assert "### Super-resolution x4" in printed and "preset=ours" in printed and "preset=paper" in printed
    saved = json.loads(out.read_text())
    assert set(saved) >= {"generation", "superres", "inpainting", "robustness", "command"}
    inp = saved["inpainting"]["rows"]
    assert inp["synth.inpaint, preset=ours"]["change_outside_8bit"] == 0  # pixels outside the patch untouched
    assert all(math.isfinite(r["psnr"]) for r in saved["superres"]["x4"].values() if r["psnr"] is not None)
    assert res["generation"]["real test images"]["n"] == 10


def two_class_model(names):
    from synth.models import RobustModel

    torch.manual_seed(0)
    return RobustModel("cifar_resnet8", 2, names, input_size=32, eps=0.5).eval().requires_grad_(False)


def test_load_test_set_reads_wnid_folders_by_their_names(tmp_path):
    from conftest import tiny_imagenet

    tiny_imagenet(tmp_path, "test", per_class=2)  # 8 wnid folders, classes.tsv above test/
    model = two_class_model(["tabby", "goldfish"])  # 'tabby, tabby cat' and 'goldfish, Carassius auratus'
    for wnid in ("n01629819", "n09428293", "n01984695", "n02808440", "n02963159", "n04008634"):
        for f in (tmp_path / "test" / wnid).iterdir():
            f.unlink()
        (tmp_path / "test" / wnid).rmdir()
    x, y = E.load_test_set(tmp_path, model)
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [1, 1, 0, 0]  # sorted wnids: goldfish first


def test_translation_rows_per_direction_on_a_two_domain_folder(tmp_path):
    for d in "AB":
        (tmp_path / f"test{d}").mkdir()
        for i in range(2):
            Image.new("RGB", (48, 48), (200 * (d == "A"), 90, i)).save(tmp_path / f"test{d}" / f"{i}.jpg")
    model = two_class_model(["horse", "zebra"])
    data = E.load_test_set(tmp_path, model)
    assert data[1].tolist() == [0, 0, 1, 1] and data[0].shape[-1] == 32
    rows = E.eval_translation(model, model, data, presets=("fast",))
    assert set(rows) == {
        f"{a} -> {b}, {m}"
        for a, b in (("horse", "zebra"), ("zebra", "horse"))
        for m in ("unchanged", "synth.translate, preset=fast")
    }
    assert rows["horse -> zebra, unchanged"]["change_8bit"] == 0
    moved = rows["horse -> zebra, synth.translate, preset=fast"]
    assert moved["change_8bit"] > 1 and 0 <= moved["success"] <= 1 and moved["seconds_per_image"] >= 0



def test_superres_lattice_measure_finds_a_faint_regular_pattern_and_not_noise():
    """benchmarks.bench_superres_photos' lattice, on 8-bit results of a photo-like image (a grainy gradient, busy on
    the right): a 4 px lattice a quarter of a level high stands out of its ring of frequencies, and a 2 px one more;
    noise and smooth corrections of up to 5 levels (what back-projection adds) do not."""
    from benchmarks.bench_superres_photos import flat_spectra, lattice

    g = torch.Generator().manual_seed(0)
    n = 256
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    level = 1 / 255
    grain = level * torch.randn(1, 3, n, n, generator=g)
    busy = 0.2 * torch.rand(1, 3, n, n, generator=g) * (x > n // 2)
    original = (0.3 + 0.4 * y / n + grain + busy).clamp(0, 1)
    eight_bit = lambda t: (t * 255).round() / 255  # noqa: E731

    def peak(change):
        return lattice(flat_spectra(eight_bit(original + change), original, original))

    ratio, freq, _ = peak(0.25 * level * torch.cos(torch.pi * x / 2) * torch.cos(torch.pi * y / 2))
    assert ratio > 5 and set(map(abs, freq)) == {8}  # 8 cycles per 32 px patch: a 4 px period
    assert peak(0.25 * level * torch.cos(torch.pi * x))[0] > 20
    assert peak(torch.zeros(1))[0] < 2 and peak(0.5 * level * torch.randn(1, 3, n, n, generator=g))[0] < 2
    for period in (64, 256):
        assert peak(5 * level * torch.sin(2 * torch.pi * x / period) * torch.sin(2 * torch.pi * y / period))[0] < 2.5
