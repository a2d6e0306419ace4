"""training.distill on a tiny teacher and a handful of photos: groups share batches equally, --resume continues bit
for bit, and the warm folder carries a run across sessions, rewritten only when the dev score improves."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import synth
from training import distill

WNIDS = [f"n{k:08d}" for k in range(10)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    rng = np.random.default_rng(0)

    def photo(path, side):
        Image.fromarray((rng.random((side, side + 6, 3)) * 255).astype("uint8")).save(path)

    (root / "flat").mkdir()
    for name in [f"big_{i:03d}" for i in range(6)] + [f"small_{i:03d}" for i in range(2)]:
        photo(root / "flat" / f"{name}.jpg", 48)
    for cls in ("a", "b"):
        (root / "classes" / cls).mkdir(parents=True)
        for i in range(3):
            photo(root / "classes" / cls / f"{i}.png", 40)
    (root / "dev").mkdir()
    for k in range(6):
        photo(root / "dev" / f"{WNIDS[k]}_thing.jpg", 50)
    (root / "wnids.txt").write_text("\n".join(WNIDS))
    return root


def run(folders, tiny_dir, out, *flags):
    args = f"--data {folders / 'flat'} {folders / 'classes'} --dev {folders / 'dev'} --wnids {folders / 'wnids.txt'}"
    args += f" --teacher {tiny_dir} --out {out} --input-size 32 --batch-size 8 --eval-every 16 --eval-photos 6"
    args += " --eps 0.5 --eps-ramp 16 --lr 1e-3 --warmup 8"
    return distill.main([*args.split(), *map(str, flags)])


def test_every_group_gets_the_same_share(folders):
    src = distill.load_source(folders / "flat")  # groups by file-name prefix: 6 'big', 2 'small'
    assert src.images.shape == (8, 3, 48, 48) and torch.bincount(src.groups).tolist() == [6, 2]
    w = src.weights
    assert torch.allclose(torch.stack([w[src.groups == k].sum() for k in (0, 1)]), torch.ones(2))
    classes = distill.load_source(folders / "classes")  # groups by folder
    cfg = distill.Config(input_size=32, batch_size=9)
    x = distill.batch([src, classes], cfg, torch.Generator().manual_seed(0))
    assert x.shape == (9, 3, 32, 32) and 0 <= x.min() and x.max() <= 1


def test_resume_continues_bit_for_bit(folders, tiny_dir, tmp_path):
    whole = run(folders, tiny_dir, tmp_path / "whole", "--images", 48)
    run(folders, tiny_dir, tmp_path / "cut", "--images", 32)
    resumed = run(folders, tiny_dir, tmp_path / "cut", "--resume", "--images", 48)
    assert resumed["images_seen"] == whole["images_seen"] == 48
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (tmp_path / "whole", tmp_path / "cut"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    drop = lambda h: [{k: v for k, v in r.items() if k != "minutes"} for r in h]
    assert drop(a["history"]) == drop(b["history"]) and len(a["history"]) == 3


def test_the_warm_folder_carries_the_run_and_changes_only_when_it_improves(folders, tiny_dir, tmp_path, monkeypatch):
    robust = iter([0.02, 0.05, 0.09, 0.01])  # a session improving twice; the next one improving, then not
    monkeypatch.setattr(distill, "evaluate", lambda *a: {"dev_clean": 0.6, "dev_robust": next(robust)})
    warm = tmp_path / "warm"
    run(folders, tiny_dir, tmp_path / "one", "--images", 32, "--warm", warm)
    state = json.loads((warm / "state.json").read_text())
    model = synth.RobustModel.from_pretrained(warm)
    assert state["images_seen"] == 32 and model.eps == 0.5 and model.input_size == 32
    assert (warm / "README.md").read_text().count("32 training images seen") == 1
    later = run(folders, tiny_dir, tmp_path / "two", "--images", 64, "--warm", warm)
    assert [r["images_seen"] for r in later["history"]] == [16, 32, 48, 64]  # went on from 32
    state = json.loads((warm / "state.json").read_text())
    assert state["images_seen"] == 48 and state["best"]["dev_robust"] == 0.09  # 64's worse figures left it alone
    assert distill.score({"dev_clean": 0.69, "dev_robust": 0.0}) == 0  # the teacher's accuracy alone counts nothing


def test_the_report_draws_the_curves_of_runs(folders, tiny_dir, tmp_path):
    from benchmarks import distill_report

    run(folders, tiny_dir, tmp_path / "r", "--images", 32)
    curves = distill_report.main([str(tmp_path / "r"), "--labels", "tiny", "--out", str(tmp_path / "c.png")])
    assert [r["images_seen"] for r in curves["tiny"]] == [16, 32]
    assert Image.open(tmp_path / "c.png").size == (760, 420)
