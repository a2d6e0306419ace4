"""The files the app writes itself - large results, reduced uploads, tool results, shared links - and the sweep that
keeps them, and Gradio's deep-link folders, to an hour (and the links to DEEP_LINK_BYTES); which files the app may
hand back to a browser or a tool (`served`)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from gradio import utils as gradio_utils

RESULTS_DIR = Path(tempfile.mkdtemp(prefix="synth-results-"))
# Gradio's deep-link route (open to any visitor, though the app's Share buttons no longer use it) writes a page's
# state into its upload folder (deep_links/, ~300 KB each) and never removes it: the app keeps an hour of them (the
# images they name go from Gradio's cache after an hour) and at most DEEP_LINK_BYTES, the newest; the same for the
# app's own links (app.share, ~2 KB each)
DEEP_LINK_BYTES = 200_000_000


def upload_subfolder(name: str) -> Path:
    """A folder of the app's in Gradio's upload folder (which the server serves), made when first asked for."""
    d = Path(gradio_utils.get_upload_folder()) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def links_dir() -> Path:
    """Where the Share buttons keep their links (app.share)."""
    return upload_subfolder("shared_links")


def served(path: str | Path) -> bool:
    """Whether `path` is a file this app serves: an upload, a result, a cached example's output."""
    local = Path(path).resolve()
    roots = (gradio_utils.get_upload_folder(), RESULTS_DIR, gradio_utils.get_cache_folder())
    return local.is_file() and any(local.is_relative_to(Path(r).resolve()) for r in roots)


def tool_dir() -> Path:
    """Where the MCP tools write their results."""
    return upload_subfolder("synth-tools")


def sweep_app_files() -> None:
    """Each result the app writes sweeps: its own files, its shared links and Gradio's deep-link folders."""
    sweep(RESULTS_DIR)
    sweep(tool_dir())
    sweep(links_dir(), max_bytes=DEEP_LINK_BYTES)
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
