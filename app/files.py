"""The files the app writes itself - large results, reduced uploads, tool results - and the sweep that keeps them,
and Gradio's shared-link folders, to an hour (and the links to DEEP_LINK_BYTES)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from gradio import utils as gradio_utils

RESULTS_DIR = Path(tempfile.mkdtemp(prefix="synth-results-"))
# Gradio writes each shared link's page state into its upload folder (deep_links/, ~300 KB a result) and never
# removes it: the app keeps an hour of links (their result images go from Gradio's cache after an hour) and at most
# DEEP_LINK_BYTES, the newest
DEEP_LINK_BYTES = 200_000_000


def tool_dir() -> Path:
    """Where the MCP tools write their results: in Gradio's upload folder, which the server serves."""
    d = Path(gradio_utils.get_upload_folder()) / "synth-tools"
    d.mkdir(parents=True, exist_ok=True)
    return d


def sweep_app_files() -> None:
    """Each result the app writes sweeps: its own files and Gradio's shared-link folders."""
    sweep(RESULTS_DIR)
    sweep(tool_dir())
    sweep(Path(gradio_utils.get_upload_folder()) / "deep_links", max_bytes=DEEP_LINK_BYTES)


def sweep(folder: Path, age: float = 3600, max_bytes: float = float("inf")) -> None:
    """Remove what `folder` holds (files, or folders such as Gradio's deep links: one per shared link) older than
    `age` seconds, then the oldest until the rest take at most `max_bytes`."""
    if not folder.is_dir():
        return
    entries = []
    for p in folder.iterdir():
        try:
            entries.append((p.stat().st_mtime, p))
        except FileNotFoundError:  # removed meanwhile, by another request's sweep
            continue
    entries.sort(reverse=True)  # newest first
    total = 0
    for mtime, p in entries:
        try:
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        except FileNotFoundError:
            continue
        if time.time() - mtime > age or total > max_bytes:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
