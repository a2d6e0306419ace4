"""training/: a few steps on a tiny synthetic ImageFolder, exact resume, DDP on CPU, export/convert/push."""

import json
import os
import struct
import subprocess
import sys
import zipfile
from dataclasses import asdict, fields, replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import synth
from training import train as T

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--recipe",
    "cifar10",
    "--arch",
    "cifar_resnet8",
    "--batch-size",
    "16",
    "--eps",
    "0.5",
    "--attack-steps",
    "2",
    "--lr",
    "0.05",
    "--schedule",
    "onecycle",
    "--eval-images",
    "16",
    "--precision",
    "fp32",
    "--device",
    "cpu",  # the CPU path everywhere; tests/test_cuda.py trains on a GPU when there is one
]


def test_few_steps_lower_loss_and_checkpoint(data, tmp_path):
    hist = T.main(TINY + ["--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "4"])
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[0]["samples"] == 50
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "checkpoint.pt.tmp").exists()
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 4


def test_resume_is_exact(data, tmp_path, extra=()):
    args = [*TINY, *extra, "--data", str(data), "--epochs", "2"]
    T.main(args + ["--out", str(tmp_path / "a")])
    steps_per_epoch = 4  # ceil(50 / 16)
    T.main(args + ["--out", str(tmp_path / "b"), "--max-steps", str(steps_per_epoch)])
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    T.main(args + ["--out", str(tmp_path / "b"), "--resume"])
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_attack_stays_in_ball():
    from conftest import make_tiny

    m = make_tiny().requires_grad_(True).train()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    cfg = T.Config(eps=0.5, attack_steps=3, attack_lr=0.4, use_best=True, precision="fp32")
    x_adv = T.attack(m, x, y, cfg, torch.Generator().manual_seed(0))
    assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all() and not torch.equal(x_adv, x)
    assert m.training  # back in train mode after the (eval-mode) attack
    assert T.attack(m, x, y, replace(cfg, eps=0)) is x


def test_torchrun_two_processes(data, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "training.train",
            *TINY,
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert rec["samples"] == 50  # 25 per rank: every image seen once across the two processes


def test_bad_data_folder(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(SystemExit, match="ImageFolder|usable"):
        T.main(TINY + ["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--epochs", "1"])
    with pytest.raises(SystemExit, match="does not exist"):
        T.main(TINY + ["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--epochs", "1"])


def config(*flags):
    return T.make_config(T.parse_args([*flags, "--data", "d", "--out", "o"]))


def test_budget_and_overrides():
    cfg = config("--recipe", "cifar10", "--budget")
    assert cfg.arch == "cifar_resnet20" and cfg.attack_steps == 2
    assert abs(cfg.attack_lr - 0.1 * 7 / 2) < 1e-9  # fewer steps -> proportionally larger step
    cfg = config("--recipe", "imagenet")
    recipe = T.RECIPES["imagenet"]
    assert (cfg.arch, cfg.eps, cfg.attack_lr, cfg.milestones) == (
        recipe.arch,
        recipe.eps,
        recipe.attack_lr,
        recipe.milestones,
    )
    assert config("--preset", "imagenet") == cfg  # the old name of --recipe still works
    assert config("--recipe", "cifar10", "--epochs", "35").milestones == [15, 25]  # same fractions of the run
    assert config("--recipe", "cifar10", "--epochs", "35", "--milestones", "3").milestones == [3]
    assert config("--recipe", "cifar10", "--attack-steps", "2", "--attack-lr", "0.2").attack_lr == 0.2
    assert config("--recipe", "horse2zebra", "--use-best", "0").use_best is False
    assert config("--recipe", "apple2orange").dataset == "a2b" and set(T.AB_NAMES) <= set(T.RECIPES)
    # thumbnails are decoded into memory unless told otherwise; the choice is stored (the model card names it)
    assert config("--recipe", "cifar10").in_memory is True and config("--recipe", "horse2zebra").in_memory is False
    assert config("--recipe", "horse2zebra", "--in-memory", "1").in_memory is True


def test_every_config_field_has_a_flag():
    p = T.argparse.ArgumentParser()
    T.add_config_flags(p)
    dests = {a.dest for a in p._actions}
    assert dests == {f.name for f in fields(T.Config)} - set(T.FIXED) | {"help"}
    assert "15% warm-up" in p.format_help()  # each field's comment is its flag's help


def test_old_checkpoint_config_resumes():
    old = dict(asdict(T.RECIPES["cifar10"]), preset="cifar10")  # runs before the rename stored 'preset'
    del old["recipe"]
    assert T.config_from_dict(old) == T.RECIPES["cifar10"]
    del old["in_memory"]  # runs before it was stored followed the rule of their time: inputs <= 64 px in memory
    assert T.config_from_dict(old).in_memory is True
    assert T.config_from_dict(dict(old, input_size=128)).in_memory is False


def test_export_evaluate_fit_seeds_round_trip(data, tmp_path):
    from training import evaluate, export, fit_seeds

    run = tmp_path / "run"
    T.main(TINY + ["--data", str(data), "--out", str(run), "--epochs", "1"])
    res = evaluate.main([str(run), "--data", str(data), "--eps", "0.5", "--steps", "3"])
    assert 0 <= res["robust"] <= res["clean"] <= 1 and res["n"] == 16
    fit_seeds.main([str(run), "--data", str(data), "--rank", "4"])
    export.main([str(run), "--to", str(tmp_path / "exp")])
    card = (tmp_path / "exp" / "README.md").read_text()
    assert card.startswith("---") and "adversarial-robustness" in card and "Citation" in card
    assert "weight decay 0.0005, random crop + flip;" in card  # a 32 px run is augmented in memory
    m = synth.load_model(str(tmp_path / "exp"))
    from training.runs import model_from_run

    ref = model_from_run(run)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m.logits(x).argmax(1), ref.logits(x).argmax(1))
    for k, v in ref.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)
    assert m.class_names == ["blue", "red"] and m.seed_bank is not None
    assert len(synth.generate(m, label="red", n=2, steps=2)) == 2


def test_convert_madrylab(tmp_path):
    from test_models import madrylab_file

    from training.convert_madrylab import convert

    f = tmp_path / "resnet18_l2_eps3.ckpt"
    net = madrylab_file(f, num_classes=10)
    out = convert(f, tmp_path / "conv")
    m = synth.load_model(str(out))
    assert m.arch == "resnet18" and m.eps == 3.0
    x = torch.rand(1, 3, 64, 64)
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        assert torch.allclose(m.logits(x), net.eval()((x - mean) / std), atol=1e-4)


def test_push_uses_hfapi(tmp_path, tiny_dir):
    from training.push import push

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw["repo_id"], kw))
            return type("CommitInfo", (), {"commit_url": "https://huggingface.co/u/r/commit/abc"})()

    (tiny_dir / "README.md").write_text("---\ntags: [x]\n---\n# card\n") if not (
        tiny_dir / "README.md"
    ).exists() else None
    url = push(tiny_dir, "u/r", private=True, api=FakeApi())
    assert url.endswith("/commit/abc")
    assert calls[0] == ("create_repo", "u/r", {"repo_type": "model", "private": True, "exist_ok": True})
    up = calls[1][2]
    assert up["folder_path"] == str(tiny_dir) and "*.safetensors" in up["allow_patterns"]
    with pytest.raises(ValueError, match="missing"):
        push(tmp_path, "u/r", api=FakeApi())
    with pytest.raises(ValueError, match="USER/NAME"):
        push(tiny_dir, "noslash", api=FakeApi())


def test_ab_domains_and_restricted_imagenet(tmp_path):
    from training.data import InMemory, open_split

    ab = tmp_path / "h2z"
    for d in ("trainA", "trainB", "testA", "testB"):
        (ab / d).mkdir(parents=True)
        Image.new("L" if d.endswith("A") else "RGB", (40, 40), 90).save(ab / d / "x.jpg")  # grayscale -> RGB
    ds = open_split(str(ab), "train")
    assert [t for _, t in ds.samples] == [0, 1] and ds[0][0].mode == "RGB"
    assert InMemory.load(str(ab), "test", 32).images.shape == (2, 3, 32, 32)
    rin = tmp_path / "imagenet" / "train"
    for i in range(1000):
        (rin / f"n{i:08d}").mkdir(parents=True)
    for i in (151, 268, 30, 500):  # dog, dog, frog, (not in Restricted ImageNet)
        Image.new("RGB", (8, 8)).save(rin / f"n{i:08d}" / "a.jpg")
    ds = open_split(str(tmp_path / "imagenet"), "train", kind="restricted_imagenet")
    assert sorted(ds.targets) == [0, 0, 2] and ds.classes[:3] == ["dog", "cat", "frog"]


def test_streaming_dataloader_path(data, tmp_path):
    """The ImageNet-style path (DataLoader + RandomResizedCrop/flip/jitter) used for large images."""
    hist = T.main(
        TINY
        + ["--data", str(data), "--out", str(tmp_path / "s"), "--epochs", "1", "--in-memory", "0", "--workers", "0"]
    )
    assert hist[0]["samples"] == 50 and (tmp_path / "s" / "checkpoint.pt").exists()


def test_grayscale_and_hue_take_colour_away_from_streamed_images(data, tmp_path, monkeypatch):
    """--grayscale 1 makes every streamed training image grey (the flag reaches the run's transform)."""
    from training.data import imagenet_transforms

    transforms_used, real = [], T.open_split
    monkeypatch.setattr(T, "open_split", lambda *a, **k: transforms_used.append(a[2]) or real(*a, **k))
    flags = ["--epochs", "1", "--in-memory", "0", "--workers", "0", "--limit-train", "8", "--grayscale", "1"]
    T.main(TINY + ["--data", str(data), "--out", str(tmp_path / "g"), "--hue", "0.5", *flags])
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    grey = transforms_used[0](photo)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    coloured = imagenet_transforms(32)[0](photo)
    assert not torch.equal(coloured[0], coloured[1])
    from training import export

    export.main([str(tmp_path / "g"), "--to", str(tmp_path / "exp")])
    assert (
        "random resized crops + flip + colour jitter (brightness, contrast, saturation 0.1, hue 0.5) + greyscale "
        "with probability 1.0;" in (tmp_path / "exp" / "README.md").read_text()
    )
    with pytest.raises(SystemExit, match="streamed images; add --in-memory 0"):  # not silently ignored
        T.main(TINY + ["--data", str(data), "--out", str(tmp_path / "m"), "--grayscale", "0.5"])
    with pytest.raises(SystemExit, match="probability"):
        T.main(TINY + ["--data", str(data), "--out", str(tmp_path / "p"), *flags[:-1], "1.5"])


# ---------------------------------------------------------------------------------------------- hostile runs
def train(data, out, *flags):
    return T.main([*TINY, "--data", str(data), "--out", str(out), "--limit-train", "16", *flags])


def checkpoint(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)


def logged(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_kill_while_saving_logs_each_epoch_once(data, tmp_path, monkeypatch):
    out, save = tmp_path / "r", T.atomic_save

    def killed_at_epoch_2(obj, path):
        if obj["epoch"] == 2:
            raise KeyboardInterrupt  # the process dies while epoch 2's checkpoint is being written
        save(obj, path)

    monkeypatch.setattr(T, "atomic_save", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(data, out, "--epochs", "2")
    monkeypatch.setattr(T, "atomic_save", save)
    assert checkpoint(out)["epoch"] == 1
    train(data, out, "--epochs", "2", "--resume")
    assert [r["epoch"] for r in logged(out)] == [1, 2]
    # a kill between the checkpoint's rename and the log's append, or a torn last line: the checkpoint is the truth
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(logged(out)[0]) + '\n{"epoch": 3, "train_lo')
    train(data, out, "--epochs", "2", "--resume")
    assert logged(out) == checkpoint(out)["history"] and len(logged(out)) == 2


def test_max_steps_mid_epoch_is_not_saved_as_complete(data, tmp_path):
    flags = ["--epochs", "2", "--limit-train", "32"]  # 2 steps per epoch
    train(data, tmp_path / "a", *flags)
    hist = train(data, tmp_path / "b", *flags, "--max-steps", "3")  # stops halfway through epoch 2
    assert checkpoint(tmp_path / "b")["epoch"] == 1 and len(hist) == 1 and len(logged(tmp_path / "b")) == 1
    train(data, tmp_path / "b", *flags, "--resume")  # redoes epoch 2 from its start
    a, b = checkpoint(tmp_path / "a"), checkpoint(tmp_path / "b")
    assert [r["samples"] for r in b["history"]] == [32, 32]
    for ra, rb in zip(a["history"], b["history"]):
        assert {**ra, "seconds": 0} == {**rb, "seconds": 0}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_extends_with_epochs_and_warns_of_ignored_flags(data, tmp_path, capsys):
    out = tmp_path / "r"
    train(data, out, "--epochs", "1")
    capsys.readouterr()
    hist = train(data, out, "--epochs", "2", "--lr", "0.5", "--eps", "1", "--resume")
    err = capsys.readouterr().err
    assert "--lr 0.5 ignored" in err and "0.05" in err and "--eps 1.0 ignored" in err
    assert "--epochs" not in err and "--batch-size" not in err  # honoured; given but unchanged
    ck = checkpoint(out)
    assert len(hist) == ck["epoch"] == 2 and ck["config"]["epochs"] == 2
    assert (ck["config"]["lr"], ck["config"]["eps"]) == (0.05, 0.5)
    assert hist[1]["lr"] == T.lr_at(T.config_from_dict(ck["config"]), 2)


def flip_a_weight_byte(path):
    """`path` with one byte flipped in the middle of its largest tensor's data."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10
    return bytes(raw)


def test_corrupt_checkpoint_is_a_one_line_error(data, tmp_path, capsys):
    from training.runs import model_from_run

    good = tmp_path / "good"
    train(data, good, "--epochs", "1")
    raw = (good / "checkpoint.pt").read_bytes()
    damaged = {
        "truncated": raw[: len(raw) // 2],
        "random": bytes(torch.randint(0, 256, (len(raw),), generator=torch.Generator().manual_seed(0)).tolist()),
        "flipped": flip_a_weight_byte(good / "checkpoint.pt"),
    }
    for name, content in damaged.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").write_bytes(content)
        for load in (
            partial(train, data, tmp_path / name, "--epochs", "2", "--resume"),
            partial(model_from_run, tmp_path / name),
        ):
            with pytest.raises(SystemExit) as e:
                load()
            assert str(e.value.code).startswith("error: ") and "\n" not in str(e.value.code), (name, e.value.code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "training.evaluate", str(tmp_path / "flipped"), "--data", str(data)]
    r = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.strip().startswith("error: "), r.stderr
    # a checkpoint written before checksums were stored still resumes, with a note
    ck = checkpoint(good)
    ck.pop("checksum", None)
    (tmp_path / "old").mkdir()
    torch.save(ck, tmp_path / "old" / "checkpoint.pt")
    capsys.readouterr()
    assert len(train(data, tmp_path / "old", "--epochs", "2", "--resume")) == 2
    assert "no checksum" in capsys.readouterr().err


def cpu_run(recipe: str, data, out, *flags) -> list[dict]:
    """`recipe` cut to a few seconds: a CIFAR ResNet-8 (unless flags say otherwise) at 16 px on the CPU."""
    tiny = ["--arch", "cifar_resnet8", "--input-size", "16", "--batch-size", "8", "--eval-images", "8"]
    return T.main(
        ["--recipe", recipe, *tiny, "--precision", "fp32", "--device", "cpu", *flags]
        + ["--data", str(data), "--out", str(out)]
    )


def test_tiny_imagenet_recipe_names_classes_as_the_imagenet_models(tmp_path):
    from conftest import KNOWN, tiny_imagenet

    root = tiny_imagenet(tiny_imagenet(tmp_path, "train"), "test", per_class=1)
    cpu_run("tiny_imagenet", root, tmp_path / "run", "--epochs", "1")
    classes = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model_config"]["class_names"]
    imagenet = synth.models.imagenet_classes()
    assert classes == [imagenet[i] for _, (_, i) in sorted(KNOWN.items())]
    assert classes[:2] == ["goldfish", "European fire salamander"]


def test_init_starts_from_a_model_all_but_its_classifier(tiny, tiny_dir, capsys):
    cfg = replace(T.RECIPES["horse2zebra_cpu"], arch=tiny.arch, init=str(tiny_dir))
    model, _, config = T.build_model(cfg, ["horse", "zebra"], torch.device("cpu"))
    assert torch.equal(model.net.conv1.weight, tiny.net.conv1.weight)
    assert torch.equal(model.net.blocks[-1].bn2.running_var, tiny.net.blocks[-1].bn2.running_var)
    assert model.net.fc.weight.shape[0] == 2 and config["mean"] == pytest.approx(tiny.mean.flatten().tolist())
    with pytest.raises(SystemExit, match="is a cifar_resnet8, the run trains a resnet18_half"):
        T.build_model(replace(cfg, arch="resnet18_half"), ["horse", "zebra"], torch.device("cpu"))
    with pytest.raises(SystemExit, match="--init"):
        T.build_model(replace(cfg, init=str(tiny_dir / "missing")), ["horse", "zebra"], torch.device("cpu"))


def test_init_from_a_mobilenet_v2_keeps_all_but_its_classifier(tmp_path):
    torch.manual_seed(0)
    start = synth.RobustModel("mobilenet_v2", 10, input_size=64).eval()
    start.save_pretrained(tmp_path / "m")
    cfg = replace(T.RECIPES["horse2zebra_cpu"], arch="mobilenet_v2", init=str(tmp_path / "m"))
    model, _, _ = T.build_model(cfg, ["horse", "zebra"], torch.device("cpu"))
    assert torch.equal(model.net.features[18][0].weight, start.net.features[18][0].weight)
    assert model.net.fc.weight.shape == (2, 1280) and model.net.classifier[1] is model.net.fc


def test_horse2zebra_cpu_recipe_end_to_end(tmp_path, tiny_dir):
    """The recipe on a handful of images: plain brown 'horses', striped 'zebras'; loss goes down, the exported
    model is a two-domain model named horse/zebra."""
    from training import export

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for d, striped in (("A", False), ("B", True)):
            (tmp_path / "h2z" / f"{split}{d}").mkdir(parents=True)
            for i in range(n):
                a = np.full((40, 40, 3), (120, 80, 40), float) + rng.normal(0, 20, (40, 40, 3))
                if striped:
                    a[:, (np.arange(40) // 4) % 2 == 0] = 240
                Image.fromarray(a.clip(0, 255).astype("uint8")).save(tmp_path / "h2z" / f"{split}{d}" / f"{i}.jpg")
    hist = cpu_run(
        "horse2zebra_cpu",
        tmp_path / "h2z",
        tmp_path / "run",
        "--init",
        str(tiny_dir),
        "--epochs",
        "4",
        "--in-memory",
        "1",
    )
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    export.export(tmp_path / "run", tmp_path / "model", half=True)
    assert f"Started from `{tiny_dir}`" in (tmp_path / "model" / "README.md").read_text()
    with safe_open(tmp_path / "model" / "model.safetensors", "pt") as f:
        assert f.get_slice("net.conv1.weight").get_dtype() == "F16" and f.get_slice("mean").get_dtype() == "F32"
    m = synth.load_model(str(tmp_path / "model"))
    assert m.class_names == ["horse", "zebra"] and m.eps == 3.0
    assert synth.translate(m, Image.new("RGB", (50, 30)), "zebra", steps=2).size == (50, 30)
    with pytest.raises(ValueError, match="unknown class 'zebr'.*did you mean 'zebra'"):
        synth.translate(m, Image.new("RGB", (50, 30)), "zebr", steps=2)
