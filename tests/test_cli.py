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
        # only generation and inpainting's texture fill draw random numbers
        assert ("--seed" in out) == (cmd in ("generate", "inpaint"))


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
    inpaint = ["inpaint", "--model", str(tiny_dir), "--input", str(imgs), "--mask", str(masks)]
    main([*inpaint, "--steps", "2", "--batch-size", "2", "--out", str(tmp_path / "out")])  # fmt: skip
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["a.png", "b.png", "c.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 40)
    main(["super-resolve", "--model", str(tiny_dir), "--input", str(imgs / "a.jpg"), "--factor", "2", "--steps", "1",
          "--out", str(tmp_path / "sr")])  # fmt: skip
    assert Image.open(tmp_path / "sr" / "a.png").size == (100, 80)
    main(["visualize", "--model", str(tiny_dir), "--input", str(imgs / "a.jpg"), "--target", "cat", "--steps", "2",
          "--frames", "3", "--out", str(tmp_path / "vis")])  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["a_0.png", "a_1.png", "a_2.png"]
    (masks / "c.png").unlink()  # an image without its mask is skipped, and said so; the others are written
    with pytest.raises(SystemExit) as e:
        main([*inpaint, "--out", str(tmp_path / "o2"), "--steps", "1"])  # fmt: skip
    assert e.value.code == 1 and "skipped" in (err := capsys.readouterr().err) and "no mask" in err
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["a.png", "b.png"]


def _photos(folder, names, size=(50, 40)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")).save(folder / name)
    return folder


def test_one_bad_file_costs_only_itself(tiny_dir, tmp_path, capsys):
    imgs = _photos(tmp_path / "in", [f"p{i}.png" for i in range(10)])
    (imgs / "p8.png").write_text("not an image")  # ninth: before, only the first batch of eight was written
    with pytest.raises(SystemExit) as e:
        main(["translate", "--model", str(tiny_dir), "--input", str(imgs), "--target", "cat", "--steps", "1",
              "--out", str(tmp_path / "out")])  # fmt: skip
    assert e.value.code == 1
    assert len(list((tmp_path / "out").iterdir())) == 9
    assert "skipped" in capsys.readouterr().err


def test_outputs_never_overwrite_silently(tiny_dir, tmp_path, capsys):
    imgs = _photos(tmp_path / "in", ["photo.png"])
    argv = ["translate", "--model", str(tiny_dir), "--target", "cat", "--steps", "1", "--out", str(tmp_path / "out")]
    main([*argv, "--input", str(imgs)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([*argv, "--input", str(imgs)])
    err = capsys.readouterr().err
    assert e.value.code == 3 and "already in" in err and "--overwrite" in err
    main([*argv, "--input", str(imgs), "--overwrite"])


def test_inputs_sharing_a_name_write_distinct_files_and_cost_no_other_input(tiny_dir, tmp_path, capsys):
    # before, a.jpg next to a.png aborted the whole batch and nothing was written
    imgs = _photos(tmp_path / "in", ["a.jpg", "a.png", "b.png", "a_png.png"])
    with pytest.raises(SystemExit) as e:
        main(["translate", "--model", str(tiny_dir), "--input", str(imgs), "--target", "cat", "--steps", "1",
              "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    # a.png's alternative name is another input's: only a.png is skipped, said so; the rest are written
    assert (
        e.value.code == 1 and "a.jpg and a.png share a name" in err and "skipped" in err and "a_png.png is taken" in err
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_jpg.png", "a_png.png", "b.png"]
    (imgs / "a_png.png").unlink()
    main(["visualize", "--model", str(tiny_dir), "--input", str(imgs), "--target", "cat", "--steps", "2",
          "--frames", "2", "--out", str(tmp_path / "vis")])  # fmt: skip
    assert "a.jpg and a.png share a name; written as a.jpg -> a_jpg, a.png -> a_png" in capsys.readouterr().err
    names = ["a_jpg_0.png", "a_jpg_1.png", "a_png_0.png", "a_png_1.png", "b_0.png", "b_1.png"]
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == names


def test_exit_codes(tiny_dir, tmp_path, capsys):
    """0 all written, 1 some inputs failed and the rest written, 2 a usage error (nothing done), 3 nothing written."""
    imgs = _photos(tmp_path / "in", ["a.png", "b.png"])
    vis = ["visualize", "--model", str(tiny_dir), "--target", "cat", "--steps", "1"]

    def code(*argv, out="out"):
        with pytest.raises(SystemExit) as e:
            main([*vis, "--out", str(tmp_path / out), *argv])
            raise SystemExit(0)
        return e.value.code

    assert code("--input", str(imgs)) == 0
    for bad in (["--frames", "0"], ["--frames", "-3"], ["--batch-size", "0"], ["--steps", "0"], ["--frames", "x"]):
        assert code("--input", str(imgs), *bad, out="o2") == 2, bad  # before, --frames 0 wrote nothing and exit 0
    assert code("--input", str(imgs), "--target", "no such class", out="o2") == 2
    assert not (tmp_path / "o2").exists()
    (imgs / "b.png").write_text("not an image")
    assert code("--input", str(imgs), out="o3") == 1
    (imgs / "a.png").write_text("not an image")
    assert code("--input", str(imgs), out="o4") == 3  # every input skipped
    assert code("--input", str(tmp_path / "missing.png"), out="o5") == 3
    assert "--frames must be a whole number from 1 to 100" in capsys.readouterr().err


@pytest.mark.parametrize("make_out", [lambda p: p.write_text("a file"), lambda p: None])
def test_bad_out_is_refused_before_work(tiny_dir, tmp_path, capsys, make_out, monkeypatch):
    out = tmp_path / "out"
    make_out(out)
    target = out if out.exists() else out / "x"
    if not out.exists():  # a folder that cannot be written: a read-only file system, as root sees one
        import tempfile

        def read_only(*a, **kw):
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    ran = []
    monkeypatch.setattr("synth.tasks.optimise", lambda *a, **kw: ran.append(1))
    imgs = _photos(tmp_path / "in", ["a.png"])
    with pytest.raises(SystemExit) as e:
        main(["translate", "--model", str(tiny_dir), "--input", str(imgs), "--target", "cat", "--out", str(target)])
    assert e.value.code == 3 and "is not a writable folder" in capsys.readouterr().err and not ran


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["translate", "--target", "zebra"], "unknown class 'zebra'"),
        (["translate", "--target", "cat", "--eps", "0"], "eps must be a finite number > 0"),
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


def test_an_input_whose_output_is_too_large_is_skipped_before_any_work(tiny_dir, tmp_path, capsys):
    imgs = _photos(tmp_path / "in", ["small.png"], size=(20, 16))
    _photos(imgs, ["big.png"], size=(400, 300))  # x16: 6400x4800, over synth's 16 megapixels
    with pytest.raises(SystemExit) as e:
        main(["super-resolve", "--model", str(tiny_dir), "--input", str(imgs), "--factor", "16", "--steps", "1",
              "--out", str(tmp_path / "out")])  # fmt: skip
    assert e.value.code == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small.png"]
    assert "skipped" in (err := capsys.readouterr().err) and "6400x4800: over 16 megapixels" in err


def _readme_block(heading: str, lang: str) -> str:
    import re

    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def _readme_inputs(folder: Path) -> None:
    """The files the README's examples name, made small."""
    rng = np.random.default_rng(0)
    photo = lambda: Image.fromarray((rng.random((40, 48, 3)) * 255).astype("uint8"))  # noqa: E731
    mask = Image.new("L", (48, 40))
    mask.paste(255, (10, 10, 30, 30))
    for sub in ("photos", "masks", "horses"):
        (folder / sub).mkdir()
    for name in ("photo.jpg", "photos/a.jpg", "photos/b.jpg", "horses/h.jpg"):
        photo().save(folder / name)
    for name in ("mask.png", "masks/a.png", "masks/b.png"):
        mask.save(folder / name)
    photo().resize((12, 10)).save(folder / "small.png")
    photo().save(folder / "drawing.png")


def test_readme_command_line_block_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every `python -m synth ...` line of the README's Command line block, on small files of the names it uses."""
    import shlex

    _readme_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    lines = [line.split("#")[0] for line in _readme_block("## Command line", "bash").splitlines() if line.strip()]
    assert len(lines) >= 10
    for line in lines:
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "synth"], line
        try:
            main(argv[3:] + (["--overwrite"] if argv[3] != "models" else []))
        except SystemExit as e:
            assert e.code in (0, None), (line, capsys.readouterr().err)
    assert len(list((tmp_path / "out").iterdir())) >= 10


def test_readme_python_block_runs_as_written(tmp_path):
    """The README's Python block, its photo, mask, small_photo and drawing bound to small files."""
    _readme_inputs(tmp_path)
    env = {
        "photo": str(tmp_path / "photo.jpg"),
        "mask": str(tmp_path / "mask.png"),
        "small_photo": str(tmp_path / "small.png"),
        "drawing": str(tmp_path / "drawing.png"),
    }
    exec(compile(_readme_block("## Python", "python"), "README.md", "exec"), env)
    assert len(env["imgs"]) == 4 and len(env["frames"]) == 5 and env["out"].size == (48, 40)
