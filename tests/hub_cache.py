"""Build a Hugging Face Hub cache folder by hand (the layout hf_hub_download reads offline)."""

import shutil
from pathlib import Path

COMMIT = "3f04ac96136001cfe402022100728124cbe3fac5"


def put(cache: Path, repo_id: str, files: dict[str, Path], commit: str = COMMIT) -> Path:
    """Place `files` (name in repo -> local file) in `cache` as repo `repo_id` at `commit` (also refs/main)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for name, src in files.items():
        shutil.copy(src, snap / name)
    return snap
