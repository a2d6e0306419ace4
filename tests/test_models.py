"""Loading: madrylab checkpoints from an offline Hub cache, our own format, refusals with clear messages."""

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_cache import put
from torchvision.models import mobilenet_v2, resnet18

import synth
from synth.models import ModelLoadError, from_madrylab, read_torch_checkpoint

ROOT = Path(__file__).resolve().parents[1]
needs_prepack = pytest.mark.skipif(
    not synth.archs.can_prepack(),
    reason="no oneDNN bf16 prepacked convolutions here (the torch lacks the ops, or the CPU bf16)",
)


def madrylab_file(path: Path, num_classes=10, seed=0, build=resnet18) -> torch.nn.Module:
    """A random torchvision network (resnet18 unless `build` says) saved exactly like the robustness library:
    module.{normalizer,model,attacker}.*"""
    torch.manual_seed(seed)
    net = build(num_classes=num_classes).eval()
    sd = {
        "module.normalizer.new_mean": torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
        "module.normalizer.new_std": torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1),
        "module.attacker.normalize.new_mean": torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
        "module.attacker.normalize.new_std": torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1),
    }
    for k, v in net.state_dict().items():
        sd["module.model." + k] = v
        sd["module.attacker.model." + k] = v
    torch.save({"model": sd, "epoch": 90, "optimizer": None}, path)
    return net


def run_offline(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(cache.parent / "hfhome"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_madrylab_from_offline_hub_cache(tmp_path):
    f = tmp_path / "resnet18_l2_eps3.ckpt"
    net = madrylab_file(f)
    cache = tmp_path / "hub"
    put(cache, "madrylab/robust-imagenet-models", {"resnet18_l2_eps3.ckpt": f})
    x = torch.rand(2, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        mean, std = (
            torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
            torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
        )
        expected = net((x - mean) / std)
    torch.save(expected, tmp_path / "y.pt")
    code = f"""
import torch, synth
m = synth.load_model("madrylab/robust-imagenet-models:resnet18_l2_eps3.ckpt")
x = torch.load(r"{tmp_path / "x.pt"}", weights_only=True); y = torch.load(r"{tmp_path / "y.pt"}", weights_only=True)
with torch.no_grad(): out = m.logits(x)
assert torch.allclose(out, y, atol=1e-4), (out - y).abs().max()
assert m.arch == "resnet18" and m.eps == 3.0 and m.dataset == "cifar10" and m.class_names[3] == "cat"
print("OK", m.features(x).shape[1])
"""
    r = run_offline(code, cache)
    assert r.returncode == 0, r.stderr
    assert "OK 512" in r.stdout


def test_madrylab_mobilenet_v2_entries_from_offline_hub_cache(tmp_path):
    """Both registered madrylab MobileNetV2s (eps 3 and its standard twin) load from a Hub cache made here: a random
    torchvision MobileNetV2 in the robustness library's layout (features.* / classifier.1.* keys), at the pinned
    revision, under the file names the registry asks for."""
    f = tmp_path / "mobilenet.ckpt"
    net = madrylab_file(f, num_classes=1000, build=mobilenet_v2)
    cache = tmp_path / "hub"
    put(cache, "madrylab/robust-imagenet-models", {"mobilenet_l2_eps3.ckpt": f, "mobilenet_l2_eps0.ckpt": f})
    x = torch.rand(2, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in synth.models.DATASET_STATS["imagenet"])
    with torch.no_grad():
        torch.save(net((x - mean) / std), tmp_path / "y.pt")
    code = f"""
import torch, synth
x = torch.load(r"{tmp_path / "x.pt"}", weights_only=True); y = torch.load(r"{tmp_path / "y.pt"}", weights_only=True)
robust = synth.load_model("imagenet-mobilenetv2-l2-eps3")
twin = synth.load_model(synth.standard_twin(robust))
for m in (robust, twin):
    with torch.no_grad(): out = m.logits(x)
    assert torch.allclose(out, y, atol=1e-4), (out - y).abs().max()
    assert m.arch == "mobilenet_v2" and m.dataset == "imagenet" and m.class_names[1] == "goldfish"
assert (robust.eps, twin.eps, twin.name) == (3.0, 0.0, "imagenet-mobilenetv2-standard-madrylab")
assert len(robust.superclasses()) == 9 and robust.seed_bank is not None
print("OK", robust.num_features)
"""
    r = run_offline(code, cache)
    assert r.returncode == 0, r.stderr
    assert "OK 1280" in r.stdout


def test_mobilenet_v2_is_torchvisions_with_the_last_relu6_made_fake():
    """Same parameter names and function as torchvision's; features() stops after the last ReLU6, whose fake
    version keeps the value and passes the gradient where the real one is flat (below 0, above 6)."""
    torch.manual_seed(0)
    m = synth.RobustModel("mobilenet_v2", 10, input_size=64).eval()
    ref = mobilenet_v2(num_classes=10).eval()
    ref.load_state_dict(m.net.state_dict())
    assert list(ref.state_dict()) == list(m.net.state_dict())
    with torch.no_grad():  # features 18's BatchNorm shifted, so that the last activations lie below 0 and past 6
        m.net.features[18][1].bias.uniform_(-10, 10)
        ref.features[18][1].bias.copy_(m.net.features[18][1].bias)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    assert torch.allclose(m.logits(x), ref(m.normalize(x)), atol=1e-5)
    z = m.net.trunk(m.normalize(x))
    assert (z > 6).any() and (z < 0).any()
    a, b = m.features(x), m.features(x, fake_relu=True)
    assert a.shape == (2, 1280) and torch.equal(a, b) and m.num_features == 1280
    (ga,) = torch.autograd.grad(a[:, :8].sum(), x)
    (gb,) = torch.autograd.grad(b[:, :8].sum(), x)
    assert (ga - gb).abs().max() > 0.1 * gb.abs().max() > 0  # (a random network's gradients are tiny)


def test_madrylab_loader_names_what_it_supports(tmp_path):
    sd = {"module.model.features.0.0.weight": torch.zeros(32, 3, 3, 3)}  # features, but no classifier
    with pytest.raises(ModelLoadError, match="neither a torchvision-style ResNet .* nor a MobileNetV2.*mobilenet_v2"):
        from_madrylab({"model": sd})
    net = mobilenet_v2(num_classes=10)
    sd = {"module.model." + k: v for k, v in net.state_dict().items() if k != "features.3.conv.1.0.weight"}
    with pytest.raises(ModelLoadError, match="features.3.conv.1.0.weight is missing"):
        from_madrylab({"model": sd})


def test_offline_and_not_cached_says_what_to_do(tmp_path):
    r = run_offline(
        "import synth\ntry:\n    synth.load_model('imagenet-resnet50-l2-eps3')\n"
        "except synth.ModelLoadError as e:\n    print('ERR', e)",
        tmp_path / "empty",
    )
    assert r.returncode == 0, r.stderr
    assert "ERR" in r.stdout and "offline" in r.stdout and "cache" in r.stdout


def test_own_format_hub_repo_offline(tmp_path, tiny, tiny_dir):
    cache = tmp_path / "hub"
    put(cache, "user/robust-tiny", {n: tiny_dir / n for n in ("config.json", "model.safetensors", "seeds.safetensors")})
    code = """
import torch, synth
m = synth.load_model("user/robust-tiny")
assert m.seed_bank is not None and m.class_names[0] == "airplane" and m.input_size == 32
print("OK")
"""
    r = run_offline(code, cache)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_own_format_round_trip(tiny, tiny_dir):
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert cfg["arch"] == "cifar_resnet8" and cfg["eps"] == 0.5
    m = synth.load_model(str(tiny_dir))
    x = torch.rand(3, 3, 32, 32)
    for k, v in tiny.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k  # weights bit for bit
    with torch.no_grad():  # (the loaded model runs channels_last: same values up to float reordering)
        assert torch.allclose(m.logits(x), tiny.logits(x), atol=1e-5)
    assert torch.equal(m.seed_bank.mean, tiny.seed_bank.mean)
    assert synth.load_model(str(tiny_dir)) is m  # cached in-process


def test_local_madrylab_file_and_mean_std_from_file(tmp_path):
    f = tmp_path / "whatever.pt"
    madrylab_file(f, num_classes=9)
    m = synth.load_model(str(f))
    assert m.dataset == "restricted_imagenet" and m.class_names[0] == "dog"
    assert torch.allclose(m.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_refuses_pickled_code(tmp_path):
    import argparse

    f = tmp_path / "evil.ckpt"
    torch.save({"model": {}, "args": argparse.Namespace(a=1)}, f)
    with pytest.raises(ModelLoadError, match="Namespace"):
        read_torch_checkpoint(f)
    with pytest.raises(ModelLoadError, match="never unpickles"):
        synth.load_model(str(f))


def test_unreadable_and_mismatched(tmp_path):
    f = tmp_path / "junk.ckpt"
    f.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        synth.load_model(str(f))
    net = resnet18(num_classes=10)
    sd = {"module.model." + k: v for k, v in net.state_dict().items()}
    with pytest.raises(ModelLoadError, match="does not match architecture resnet50"):
        from_madrylab({"model": sd}, arch="resnet50")
    del sd["module.model.layer4.1.conv2.weight"]
    with pytest.raises(ModelLoadError, match="does not match"):
        from_madrylab({"model": sd})
    d = tmp_path / "empty_dir"
    d.mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        synth.load_model(str(d))


def test_unknown_spec(tmp_path):
    with pytest.raises(ModelLoadError, match="did you mean"):
        synth.load_model("imagenet-resnet50-l2-eps")
    with pytest.raises(ModelLoadError, match="not a model name"):
        synth.load_model(str(tmp_path / "nope"))


def test_fake_relu_changes_gradient_not_value(tiny):
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    a = tiny.features(x)
    b = tiny.features(x, fake_relu=True)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad(a[:, 0].sum(), x)
    (gb,) = torch.autograd.grad(b[:, 0].sum(), x)
    assert not torch.allclose(ga, gb) or torch.equal(a[:, 0], torch.zeros(2))


@pytest.mark.parametrize("arch", ["cifar_resnet8", "resnet18", "resnet18_half", "mobilenet_v2"])
def test_for_synthesis_folds_batchnorm_without_changing_the_function(arch):
    torch.manual_seed(0)
    size = 32 if arch.startswith("cifar") else 64
    m = synth.RobustModel(arch, 10, input_size=size).eval()
    for bn in m.modules():  # non-trivial statistics, so folding has something to get right
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)
    keys = set(m.state_dict())
    f = m.for_synthesis()
    assert f is m.for_synthesis()  # cached
    assert not any(isinstance(b, torch.nn.BatchNorm2d) for b in f.modules())
    assert set(m.state_dict()) == keys  # the model itself (what save_pretrained writes) is untouched
    x = torch.rand(2, 3, size, size, requires_grad=True)
    a, b = m.logits(x), f.logits(x)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    (ga,) = torch.autograd.grad(a[:, 3].sum(), x)
    (gb,) = torch.autograd.grad(b[:, 3].sum(), x)
    assert torch.allclose(ga, gb, atol=1e-4, rtol=1e-3)
    # bf16 weights (for bf16 autocast): the same bf16 computation, the weights cast once instead of every call
    h = m.for_synthesis(torch.bfloat16)
    assert h is m.for_synthesis(torch.bfloat16) and h is not f and f.net.fc.weight.dtype == torch.float32
    assert h.net.fc.weight.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(f.logits(x), h.logits(x))
    with torch.no_grad():  # new weights (fine-tuning, load_state_dict): the folded copy must follow
        m.net.fc.weight.mul_(2)
    assert torch.allclose(m.logits(x), m.for_synthesis().logits(x), atol=1e-4, rtol=1e-4)


@needs_prepack
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_prepacked_bf16_copy_is_bit_identical(monkeypatch, arch):
    """Every convolution with groups 1 pre-packed (MobileNetV2's depthwise ones stay plain bf16 convolutions, in
    channels-last); logits and input gradients bit for bit those of the same bf16 model unpacked."""
    from synth.archs import PackedConv2d

    monkeypatch.setattr(PackedConv2d, "polyphase_below", 0)  # the stem's polyphase gradient: its own test below
    torch.manual_seed(0)
    m = synth.RobustModel(arch, 10, input_size=64).eval()
    plain = copy.deepcopy(m.for_synthesis(torch.bfloat16))  # no packs yet: a deep copy is still possible
    packed = m.for_synthesis(torch.bfloat16)
    for mod in plain.modules():  # the same model with plain bf16 convolutions
        for name, c in list(mod.named_children()):
            if isinstance(c, PackedConv2d):
                setattr(mod, name, c.conv)
    n_packed = sum(isinstance(c, PackedConv2d) for c in packed.modules())
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert n_packed == sum(c.groups == 1 for c in convs) > 0  # every conv of a ResNet
    depthwise = [c for c in packed.modules() if isinstance(c, torch.nn.Conv2d) and c.groups > 1]
    assert len(depthwise) == len(convs) - n_packed and all(c.weight.dtype == torch.bfloat16 for c in depthwise)
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in depthwise)
    for batch in (1, 3, 1):  # packs are per input shape; a shape seen before reuses its pack
        x = torch.rand(batch, 3, 64, 64).contiguous(memory_format=torch.channels_last)
        outs = []
        for model in (plain, packed):
            xi = x.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = model.logits(xi)
            (g,) = torch.autograd.grad(y.float()[:, 2].sum(), xi)
            outs.append((y, g))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    stem = packed.net.conv1 if arch == "resnet18" else packed.net.features[0][0]
    assert isinstance(stem, PackedConv2d) and len(stem.packs) == 2
    copy.deepcopy(m)  # the model itself still copies (the packed synthesis copy stays behind)


@needs_prepack
@pytest.mark.parametrize(
    "kernel,stride,padding,size",
    [(7, 2, 3, (64, 64)), (7, 2, 3, (37, 30)), (1, 2, 0, (9, 8)), ((3, 5), (2, 1), (0, 2), (11, 13))]
    + [(3, 3, 1, (10, 17)), (3, 2, 0, (6, 6))],
)
def test_polyphase_input_gradient_of_strided_stem(kernel, stride, padding, size):
    from synth.archs import PackedConv2d

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, kernel, stride, padding, bias=True).to(torch.bfloat16)
    packed = PackedConv2d(conv)
    x = torch.rand(2, 3, *size).to(torch.bfloat16).requires_grad_(True)
    y = packed(x)
    assert torch.equal(y, torch.nn.functional.conv2d(x, conv.weight, conv.bias, stride, padding))
    assert packed.packs[tuple(x.shape)][1].func.__name__ == "_polyphase_grad"
    g = torch.randn(y.shape).to(torch.bfloat16)
    (gx,) = torch.autograd.grad(y, x, g)
    ref = torch.nn.grad.conv2d_input(x.shape, conv.weight.float(), g.float(), stride=stride, padding=padding)
    assert gx.shape == x.shape
    assert (gx.float() - ref).abs().max() <= 0.01 * ref.abs().max()  # bf16 rounding of the output, no more


@needs_prepack
def test_packed_resnet_uses_polyphase_stem_only_and_keeps_gradients(monkeypatch):
    from synth.archs import PackedConv2d

    torch.manual_seed(0)
    m = synth.RobustModel("resnet18", 10, input_size=64).eval()
    x = torch.rand(2, 3, 64, 64).requires_grad_(True)
    grads, copies = [], []
    for below in (0, PackedConv2d.polyphase_below):  # every gradient transposed; the stem's polyphase
        monkeypatch.setattr(PackedConv2d, "polyphase_below", below)
        packed = copy.deepcopy(m).for_synthesis(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = packed.logits(x)
        grads.append(torch.autograd.grad(y.float()[:, 1].sum(), x)[0])
        copies.append(packed)
    kinds = [c.packs[(2, 3, 64, 64)][1].func.__name__ for c in (copies[0].net.conv1, copies[1].net.conv1)]
    assert kinds == ["_transposed_grad", "_polyphase_grad"]
    others = {c.packs[next(iter(c.packs))][1].func.__name__ for c in copies[1].modules() if isinstance(c, PackedConv2d)}
    assert others == {"_polyphase_grad", "_transposed_grad"}  # the stem only: every other conv stays transposed
    assert (grads[0] - grads[1]).abs().max() <= 1e-2 * grads[0].abs().max()  # the same up to bf16 rounding


# --- hostile or damaged model files: refused with one line naming the file, before allocating ---------------


class RealAllocation(Exception):
    """Raised by `meta_only`; deliberately not a ModelLoadError/ValueError/OSError, so no loader can swallow it."""


@pytest.fixture
def meta_only(monkeypatch):
    """Fail the test if the loader builds a network anywhere but on the meta device (which allocates nothing):
    the configs below would otherwise ask for gigabytes."""
    real = synth.model.build_arch  # looked up where RobustModel is built

    def guarded(name, num_classes):
        if torch.get_default_device().type != "meta":
            raise RealAllocation(f"built {name} ({num_classes} classes) for real")
        return real(name, num_classes)

    monkeypatch.setattr(synth.model, "build_arch", guarded)


def model_folder(src: Path, dst: Path, **config) -> Path:
    """A copy of the model folder `src` with `config` merged into its config.json."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, **config}))
    return dst


def assert_one_line_naming(e: pytest.ExceptionInfo, name: str) -> None:
    msg = str(e.value)
    assert name in msg and "\n" not in msg, msg


def test_config_claiming_a_wider_arch_is_refused_before_allocating(tmp_path, tiny_dir, meta_only):
    # cifar_resnet8x300 is ~7e9 parameters (28 GB); the file holds the 78k of cifar_resnet8
    d = model_folder(tiny_dir, tmp_path / "wide", arch="cifar_resnet8x300")
    with pytest.raises(ModelLoadError, match=r"net\.conv1\.weight.*\(16, 3, 3, 3\).*\(4800, 3, 3, 3\)") as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, "model.safetensors")
    assert "cifar_resnet8x300" in str(e.value)


@pytest.mark.parametrize(
    "config,msg",
    [
        ({"num_classes": 10**6, "class_names": None}, "num_classes"),
        ({"num_classes": 10**6, "class_names": ["c"] * 10**6}, "num_classes"),
        ({"input_size": 10**6}, "input_size"),
        ({"input_size": 4096}, "input_size 4096 is outside 1..512"),  # was 6.8 GB, then a traceback
        ({"class_names": ["x" * 10**5] * 10}, "class name"),
        ({"std": [0, 0, 0]}, "std"),
        ({"arch": "cifar_resnet100004"}, "depth"),
    ],
)
def test_absurd_config_values_are_refused(tmp_path, tiny_dir, meta_only, config, msg):
    d = model_folder(tiny_dir, tmp_path / "absurd", **config)
    with pytest.raises(ModelLoadError, match=msg) as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, "config.json")


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _random(p: Path) -> None:
    p.write_bytes(os.urandom(4000))


@pytest.mark.parametrize(
    "name,damage",
    [
        ("model.safetensors", _truncate),
        ("model.safetensors", _random),
        ("model.safetensors", lambda p: p.write_bytes(b"")),
        ("seeds.safetensors", _truncate),
        ("seeds.safetensors", _random),
        ("config.json", lambda p: p.write_text("{not json")),
        ("config.json", _random),
        ("config.json", lambda p: p.write_text("[1, 2]")),
        ("config.json", lambda p: p.write_text('{"num_classes": 10}')),
        ("config.json", lambda p: p.write_text('{"arch": "cifar_resnet8", "num_classes": "ten"}')),
    ],
)
def test_damaged_model_folder_names_the_file(tmp_path, tiny_dir, name, damage):
    d = model_folder(tiny_dir, tmp_path / "damaged")
    damage(d / name)
    with pytest.raises(ModelLoadError) as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, name)


def test_seed_bank_that_does_not_fit_the_model(tmp_path, tiny, tiny_dir):
    from safetensors.torch import save_file

    bank = tiny.seed_bank
    d = model_folder(tiny_dir, tmp_path / "no_grain")
    save_file({"mean": bank.mean, "factors": bank.factors, "sigma": bank.sigma}, str(d / "seeds.safetensors"))
    with pytest.raises(ModelLoadError, match="grain") as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, "seeds.safetensors")
    d = model_folder(tiny_dir, tmp_path / "three_classes")
    synth.SeedBank(bank.mean[:3], bank.factors[:3], bank.sigma[:3], 1).save(d / "seeds.safetensors")
    with pytest.raises(ModelLoadError, match="3 classes") as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, "seeds.safetensors")


@pytest.mark.parametrize("damage", [_truncate, _random, lambda p: p.write_bytes(b"")])
def test_damaged_checkpoint_is_called_damaged(tmp_path, damage):
    f = tmp_path / "resnet18_l2_eps3.ckpt"
    madrylab_file(f)
    damage(f)
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint") as e:
        synth.load_model(str(f))
    assert_one_line_naming(e, str(f))
    assert "unpickles" not in str(e.value)  # corrupt is not the same as unsafe


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused(tmp_path, tiny_dir, value):
    """They would load without complaint and make every output NaN: our format and madrylab checkpoints alike."""
    from safetensors.torch import load_file, save_file

    d = model_folder(tiny_dir, tmp_path / "nan")
    sd = load_file(d / "model.safetensors")
    sd["net.fc.bias"][3] = value
    save_file(sd, d / "model.safetensors")
    with pytest.raises(ModelLoadError, match="net.fc.bias holds NaN or infinite values") as e:
        synth.load_model(str(d))
    assert_one_line_naming(e, str(d / "model.safetensors"))
    f = tmp_path / "resnet18_l2_eps3.ckpt"
    madrylab_file(f)
    ck = torch.load(f, weights_only=True)
    ck["model"]["module.model.layer1.0.bn1.running_var"][0] = value
    torch.save(ck, f)
    with pytest.raises(ModelLoadError, match="layer1.0.bn1.running_var holds NaN or infinite values") as e:
        synth.load_model(str(f))
    assert_one_line_naming(e, str(f))


def test_damaged_safetensors_checkpoint(tmp_path):
    f = tmp_path / "weights.safetensors"
    _random(f)
    with pytest.raises(ModelLoadError) as e:
        synth.load_model(str(f))
    assert_one_line_naming(e, str(f))


def test_checkpoint_tensors_must_hold_their_data(tmp_path, meta_only):
    # stride-0 views pickle as one element: a 7 kB file that would build a 200k-class resnet18
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in resnet18(num_classes=200_000).state_dict().items()}
    sd = {k: torch.zeros(()).expand(s) for k, s in shapes.items()}
    f = tmp_path / "hollow.ckpt"
    torch.save({"model": sd}, f)
    with pytest.raises(ModelLoadError, match="claims shape") as e:
        synth.load_model(str(f))
    assert_one_line_naming(e, str(f))


def test_hostile_and_damaged_hub_repos_offline(tmp_path, tiny_dir):
    cache = tmp_path / "hub"
    wide = model_folder(tiny_dir, tmp_path / "wide", arch="cifar_resnet8x300")
    put(cache, "user/wide", {n: wide / n for n in ("config.json", "model.safetensors")})
    for name in ("model.safetensors", "seeds.safetensors"):
        d = model_folder(tiny_dir, tmp_path / name)
        _truncate(d / name)
        put(cache, f"user/bad-{name.split('.')[0]}", {n: d / n for n in os.listdir(d)})
    code = """
import torch, synth, synth.model as sm
real = sm.build_arch
def guarded(name, num_classes):
    assert torch.get_default_device().type == "meta", f"built {name} for real"
    return real(name, num_classes)
sm.build_arch = guarded
for repo in ("user/wide", "user/bad-model", "user/bad-seeds"):
    try:
        synth.load_model(repo)
    except synth.ModelLoadError as e:
        print(repo, "ERR", e)
"""
    r = run_offline(code, cache)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    assert lines[0].startswith("user/wide ERR user/wide/model.safetensors") and "net.conv1.weight" in lines[0]
    assert lines[1].startswith("user/bad-model ERR user/bad-model/model.safetensors")
    assert lines[2].startswith("user/bad-seeds ERR user/bad-seeds/seeds.safetensors")


def test_cli_damaged_model_is_one_line_and_exit_3(tmp_path, tiny_dir, capsys):
    from synth.cli import main

    d = model_folder(tiny_dir, tmp_path / "damaged")
    _random(d / "model.safetensors")
    with pytest.raises(SystemExit) as e:
        main(["generate", "--model", str(d), "--out", str(tmp_path / "out"), "--n", "1", "--steps", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 3  # nothing written
    assert err.count("\n") == 1 and err.startswith("error: ") and "model.safetensors" in err, err
