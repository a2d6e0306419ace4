"""Loading: madrylab checkpoints from an offline Hub cache, our own format, refusals with clear messages."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_cache import put
from torchvision.models import resnet18

import synth
from synth.models import ModelLoadError, from_madrylab, read_torch_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def madrylab_file(path: Path, num_classes=10, seed=0) -> torch.nn.Module:
    """A random resnet18 saved exactly like the robustness library: module.{normalizer,model,attacker}.*"""
    torch.manual_seed(seed)
    net = resnet18(num_classes=num_classes).eval()
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
    with pytest.raises(ModelLoadError, match="refusing|not a plain"):
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


@pytest.mark.parametrize("arch", ["cifar_resnet8", "resnet18"])
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


@pytest.mark.skipif(not synth.archs.can_prepack(), reason="this torch has no oneDNN prepacked-convolution ops")
def test_prepacked_bf16_copy_is_bit_identical(monkeypatch):
    from synth.archs import PackedConv2d

    monkeypatch.setattr(PackedConv2d, "polyphase_below", 0)  # the stem's polyphase gradient: its own test below
    torch.manual_seed(0)
    m = synth.RobustModel("resnet18", 10, input_size=64).eval()
    plain = copy.deepcopy(m.for_synthesis(torch.bfloat16))  # no packs yet: a deep copy is still possible
    packed = m.for_synthesis(torch.bfloat16)
    for mod in plain.modules():  # the same model with plain bf16 convolutions
        for name, c in list(mod.named_children()):
            if isinstance(c, PackedConv2d):
                setattr(mod, name, c.conv)
    n_packed = sum(isinstance(c, PackedConv2d) for c in packed.modules())
    assert n_packed == sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())  # every conv of a ResNet
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
    stem = packed.net.conv1
    assert isinstance(stem, PackedConv2d) and len(stem.packs) == 2
    copy.deepcopy(m)  # the model itself still copies (the packed synthesis copy stays behind)


@pytest.mark.skipif(not synth.archs.can_prepack(), reason="this torch has no oneDNN prepacked-convolution ops")
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


@pytest.mark.skipif(not synth.archs.can_prepack(), reason="this torch has no oneDNN prepacked-convolution ops")
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
