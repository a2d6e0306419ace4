"""Checks on model files from anywhere: one-line ModelLoadErrors naming the file, before any allocation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from huggingface_hub import (
    hf_hub_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
)
from safetensors import SafetensorError, safe_open
from torch import nn

from .registry import CONFIG_FILE, EMBEDDED_SUMS, WEIGHTS_FILE

if TYPE_CHECKING:
    from .model import RobustModel


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message (one line, naming the file) says why and what to do."""


def _first_line(e: BaseException) -> str:
    """Library errors can span lines (torch's weights_only advice); our messages stay one line for the CLI."""
    return next((line.strip() for line in str(e).splitlines() if line.strip()), repr(e))


# --- checks on files from anywhere: one-line ModelLoadErrors naming the file, before any allocation -------------

# RobustModel's arguments as config.json stores them; other keys are ignored, as the mixin ignores them
_CONFIG_TYPES = {
    "arch": str,
    "num_classes": int,
    "class_names": (list, type(None)),
    "mean": list,
    "std": list,
    "input_size": int,
    "eps": (int, float),
    "norm": str,
    "dataset": str,
}


def _fetch(source: str, filename: str, *, optional: bool = False, **hub_kwargs) -> str | None:
    """Path of `filename` in a model folder or a Hub repo (downloaded or cached); None for a missing optional one."""
    if os.path.isdir(source):
        path = os.path.join(source, filename)
        if os.path.isfile(path):
            return path
        if optional:
            return None
        raise ModelLoadError(f"{path} is missing: a synth model folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        return hf_hub_download(source, filename, **hub_kwargs)
    except (EntryNotFoundError, LocalEntryNotFoundError):  # offline and never fetched counts as absent, as before
        if optional:
            return None
        raise


def _read_config(path: str, where: str) -> dict:
    """RobustModel's arguments from config.json, type-checked (their values are checked by the constructor)."""
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise ModelLoadError(f"{where} is not a readable JSON file: {_first_line(e)}") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{where} is not a synth model config: a JSON {type(config).__name__}, not an object")
    config = {k: v for k, v in config.items() if k in _CONFIG_TYPES}
    problems = [f"no {k!r}" for k in ("arch", "num_classes") if k not in config]
    problems += [
        f"{k!r} is a {type(v).__name__}"
        for k, v in config.items()
        if isinstance(v, bool) or not isinstance(v, _CONFIG_TYPES[k])  # (bool is an int to isinstance)
    ]
    if problems:
        raise ModelLoadError(f"{where} is not a synth model config: {', '.join(problems)}")
    return config


def _skeleton(kwargs: dict, where: str) -> RobustModel:
    """RobustModel(**kwargs) on the meta device: every parameter's shape, no memory. Its argument checks run
    here too, so absurd values are refused (naming `where`) before anything real is built."""
    from .model import RobustModel  # the model reads its files with these checks: imported when first needed

    try:
        with torch.device("meta"):
            return RobustModel(**kwargs)
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"{where}: {_first_line(e)}") from None


def _read_safetensors(path: str, where: str, *, header_only: bool = False) -> dict:
    """The tensors of a safetensors file, or with header_only their shapes, read from the header alone (which
    safetensors checks against the file's size, so the shapes are ones the file really holds)."""
    try:
        with safe_open(path, "pt") as f:
            if header_only:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as e:  # TypeError: a dtype torch lacks
        raise ModelLoadError(
            f"{where} is not a readable safetensors file (corrupt or truncated?): {_first_line(e)}"
        ) from None


def _check_finite(tensors: dict, where: str) -> None:
    """Refuse weights holding NaN or infinity: they load without complaint and every output would be NaN."""
    bad = next((k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    if bad is not None:
        raise ModelLoadError(f"{where}: tensor {bad} holds NaN or infinite values; the file is damaged")


def _check_fits(skeleton: nn.Module, found: dict[str, tuple], what: str) -> None:
    """Refuse unless `found` (name -> shape) is exactly the skeleton's parameters and buffers, naming the first
    difference: a network is built for real only for weights that fill it."""
    need = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    keys = list(need) + [k for k in found if k not in need]  # model order: the stem comes first
    diffs = [
        f"{k} is missing"
        if k not in found
        else f"{k} is not in the architecture"
        if k not in need
        else f"{k} has shape {tuple(found[k])} in the file, the architecture needs {need[k]}"
        for k in keys
        if need.get(k) != (tuple(found[k]) if k in found else None)
    ]
    if diffs:
        more = f" (and {len(diffs) - 1} more differences)" if len(diffs) > 1 else ""
        raise ModelLoadError(f"{what}: {diffs[0]}{more}")


def _read_seeds(path: str, num_classes: int, where: str):
    """The model's SeedBank, refused here rather than mid-generation when it does not fit the model."""
    from .seeds import SeedBank

    try:
        bank = SeedBank.from_tensors(_read_safetensors(path, where), where)
    except ValueError as e:
        raise ModelLoadError(_first_line(e)) from None
    top = bank.num_classes if bank.classes is None else int(bank.classes[-1]) + 1
    covers = top == num_classes if bank.classes is None else top <= num_classes  # a sparse bank may cover fewer
    if not covers or bank.mean.shape[1] != 3:
        raise ModelLoadError(
            f"{where} holds seeds for {bank.num_classes} classes (up to class {top - 1}) of {bank.mean.shape[1]} "
            f"channels; the model has {num_classes} classes of 3 channels"
        )
    return bank


def write_embedded_sums() -> None:
    """Rewrite EMBEDDED_SUMS from the embedded files as they are (what an export into the package does)."""
    files = sorted(EMBEDDED_SUMS.parent.glob("*/*.json")) + sorted(EMBEDDED_SUMS.parent.glob("*/*.safetensors"))
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.parent.name}/{f.name}\n" for f in files]
    EMBEDDED_SUMS.write_text("".join(lines))


def check_embedded(folder: Path) -> None:
    """Refuse an embedded model folder whose files differ from the sha256 sums the package lists for them
    (EMBEDDED_SUMS, `sha256sum` format): a damaged install, or a Git LFS pointer where the weights should be."""
    sums = dict(reversed(line.split(maxsplit=1)) for line in EMBEDDED_SUMS.read_text().splitlines() if line.strip())
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".json", ".safetensors"):
            continue
        key = f"{folder.name}/{path.name}"
        if key not in sums:
            raise ModelLoadError(f"{path} is not listed in {EMBEDDED_SUMS}; reinstall synth")
        if hashlib.sha256(path.read_bytes()).hexdigest() != sums[key]:
            raise ModelLoadError(
                f"{path} does not match its sha256 in {EMBEDDED_SUMS} (damaged, or a Git LFS pointer); reinstall synth"
            )
