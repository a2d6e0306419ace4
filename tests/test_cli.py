"""python -m synth: help for every command, real runs (single file and folder batches), clear errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synth.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_for_every_command(capsys):
    for cmd in [*COMMANDS, "models"]:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "--model" in out or cmd == "models"
        if cmd != "models":
            assert all(f in out for f in ("--steps", "--eps", "--step-size", "--out"))
        assert ("--seed" in out) == (cmd == "generate")  # only generation draws random numbers


def test_real_cli_run_subprocess(tiny_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "synth",
            "generate",
            "--model",
            str(tiny_dir),
            "--label",
            "cat",
            "--n",
            "2",
            "--steps",
            "2",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat_0.png", "cat_1.png"]
    assert Image.open(tmp_path / "cat_0.png").size == (32, 32)


def test_folder_batch_with_matched_masks(tiny_dir, tmp_path, capsys):
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    imgs.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray((rng.random((40, 50, 3)) * 255).astype("uint8")).save(imgs / f"{name}.jpg")
        m = Image.new("L", (50, 40))
        m.paste(255, (10, 10, 30, 25))
        m.save(masks / f"{name}.png")
    main(
        [
            "inpaint",
            "--model",
            str(tiny_dir),
            "--input",
            str(imgs),
            "--mask",
            str(masks),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["a.png", "b.png", "c.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 40)
    main(
        [
            "super-resolve",
            "--model",
            str(tiny_dir),
            "--input",
            str(imgs / "a.jpg"),
            "--factor",
            "2",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "sr"),
        ]
    )
    assert Image.open(tmp_path / "sr" / "a.png").size == (100, 80)
    main(
        [
            "visualize",
            "--model",
            str(tiny_dir),
            "--input",
            str(imgs / "a.jpg"),
            "--target",
            "cat",
            "--steps",
            "2",
            "--frames",
            "3",
            "--out",
            str(tmp_path / "vis"),
        ]
    )
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["a_0.png", "a_1.png", "a_2.png"]
    (masks / "c.png").unlink()
    with pytest.raises(SystemExit) as e:
        main(["inpaint", "--model", str(tiny_dir), "--input", str(imgs), "--mask", str(masks), "--out", str(tmp_path)])
    assert e.value.code == 2 and "no mask" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["translate", "--target", "zebra"], "unknown class 'zebra'"),
        (["translate", "--target", "cat", "--eps", "0"], "eps must be > 0"),
        (["sketch", "--steps", "0"], "steps must be"),
    ],
)
def test_errors_are_messages_not_tracebacks(tiny_dir, tmp_path, capsys, argv, msg):
    img = tmp_path / "x.png"
    Image.new("RGB", (20, 20), (10, 200, 30)).save(img)
    with pytest.raises(SystemExit) as e:
        main([argv[0], "--model", str(tiny_dir), "--input", str(img), "--out", str(tmp_path / "o"), *argv[1:]])
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err and "Traceback" not in err


def test_missing_input_file(tiny_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sketch", "--model", str(tiny_dir), "--input", str(tmp_path / "nope.png"), "--out", str(tmp_path)])
    assert "no such file" in capsys.readouterr().err
