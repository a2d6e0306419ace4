"""`pip install .` gives `import synth` with its embedded models and a `synth` command (pyproject.toml)."""

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):  # built from a copy: setuptools writes build/ into the source
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "synth", src / "synth", ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"could not build a wheel here (no build backend?): {done.stderr.strip()[-300:]}")
    (path,) = out.glob("synth-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_the_package_and_every_embedded_model(wheel):
    names = set(wheel.namelist())
    assert "synth/__init__.py" in names and "synth/cli.py" in names
    pretrained = ROOT / "synth" / "pretrained"
    for f in (f for f in pretrained.rglob("*") if f.is_file()):
        assert f"synth/pretrained/{f.relative_to(pretrained).as_posix()}" in names  # SHA256SUMS too
    assert all(n.startswith(("synth/", "synth-")) for n in names)  # the package and its metadata, nothing else


def test_the_wheel_declares_the_synth_command(wheel):
    (entry,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    points = configparser.ConfigParser()
    points.read_string(wheel.read(entry).decode())
    assert points["console_scripts"]["synth"] == "synth.cli:main"
