"""One loader for every source: a registered name, a Hub file or repo, a local folder or file."""

from __future__ import annotations

import difflib
import functools
import os
import time

import torch
from huggingface_hub import (
    constants,
    get_session,
    hf_hub_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .checks import ModelLoadError, _read_safetensors, _read_seeds, check_embedded
from .madrylab import _parse_madrylab_name, from_madrylab, read_torch_checkpoint
from .model import RobustModel
from .registry import CONFIG_FILE, DEFAULT_MODEL, IMAGENET_SEEDS, MODELS, PRETRAINED_DIR, ROBUST_TWIN


@functools.cache
def imagenet_seed_bank():
    """The class seeds shipped for the Hub's ImageNet models (synth/pretrained/imagenet-seeds: 200 of the 1000
    classes, fitted on Tiny ImageNet; the other classes start from the generic seed)."""
    check_embedded(IMAGENET_SEEDS.parent)
    return _read_seeds(str(IMAGENET_SEEDS), 1000, str(IMAGENET_SEEDS))


def _prepare(model: RobustModel, name: str) -> RobustModel:
    model.name = name
    model.eval().requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def _load_file(path: str, name: str) -> RobustModel:
    try:
        if path.endswith(".safetensors"):
            return from_madrylab({"model": _read_safetensors(path, path)}, name=name)
        arch, eps = _parse_madrylab_name(path)
        return from_madrylab(read_torch_checkpoint(path), arch=arch, eps=eps, name=name)
    except ModelLoadError as e:  # name the file as the user gave it, once
        raise ModelLoadError(str(e) if name in str(e) else f"{name}: {e}") from None


def _offline_hint(what: str) -> str:
    return (
        f"could not get {what} from the Hugging Face Hub: it is not in the local cache and the Hub "
        "cannot be reached (offline, or HF_HUB_OFFLINE=1). Connect once to download it (it is cached "
        "afterwards), set HF_HOME to a cache that has it, or pass a local path; "
        f"the embedded model ({DEFAULT_MODEL}) always works offline."
    )


def _load_uncached(spec: str) -> RobustModel:
    if spec in MODELS:
        src = MODELS[spec][0]
        if src.startswith("local:"):
            folder = PRETRAINED_DIR / src[len("local:") :]
            if not (folder / "config.json").exists():
                raise ModelLoadError(f"the embedded model {spec!r} is missing from {folder}; reinstall synth")
            check_embedded(folder)
            return RobustModel.from_pretrained(str(folder))
        spec = src
    if os.path.exists(spec):
        if os.path.isdir(spec):
            if not os.path.exists(os.path.join(spec, "config.json")):
                raise ModelLoadError(
                    f"{spec} is a folder without config.json: not a synth model folder "
                    "(expected config.json + model.safetensors, as written by training.export)"
                )
            try:
                return RobustModel.from_pretrained(spec)
            except ModelLoadError:
                raise  # already one line naming the file
            except (OSError, ValueError, RuntimeError) as e:
                raise ModelLoadError(f"could not load model folder {spec}: {e}") from None
        return _load_file(spec, spec)
    looks_like_path = (
        spec.startswith((".", "/", "~")) or spec.endswith((".ckpt", ".pt", ".pth", ".safetensors")) and ":" not in spec
    )
    if looks_like_path or spec.count("/") != 1 and ":" not in spec:
        close = difflib.get_close_matches(spec, list(MODELS), n=3)
        raise ModelLoadError(
            f"no model {spec!r}: not a model name, an existing path, or a Hub REPO_ID[:FILENAME]"
            + (f"; did you mean {', '.join(close)}?" if close else f"; model names: {', '.join(MODELS)}")
        )
    repo, _, rest = spec.partition(":")
    filename, _, revision = rest.partition("@")
    if "@" in repo:
        repo, _, revision = repo.partition("@")
    if not _offline() and not _cached(repo, filename or CONFIG_FILE, revision) and not hub_answers():
        raise ModelLoadError(_offline_hint(spec) + f" (no answer from {constants.ENDPOINT} in {HUB_TIMEOUT:g} s)")
    try:
        if filename:
            path = hf_hub_download(repo, filename, revision=revision or None)
            return _load_file(path, spec)
        return RobustModel.from_pretrained(repo, revision=revision or None)
    except LocalEntryNotFoundError:
        raise ModelLoadError(_offline_hint(spec)) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise ModelLoadError(
            f"{spec}: not found on the Hub ({type(e).__name__}); check the repo id, file name and your access token"
        ) from None
    except OSError as e:  # network errors surface as requests/httpx OSErrors
        raise ModelLoadError(_offline_hint(spec) + f" ({e})") from None


@functools.lru_cache(maxsize=4)
def _load_cached(spec: str) -> RobustModel:
    model = _load_uncached(spec)
    if spec in MODELS and spec.startswith("imagenet-") and model.seed_bank is None:
        model.seed_bank = imagenet_seed_bank()  # madrylab checkpoints (and embedded models without seeds): ours
    if model.seed_bank is None and spec in ROBUST_TWIN:  # a twin without a bank: its robust twin's (same classes)
        model.seed_bank = _load_cached(ROBUST_TWIN[spec]).seed_bank
    return _prepare(model, spec)


def load_model(spec: str | os.PathLike | None = None) -> RobustModel:
    """Load a model from a name in MODELS, a Hub REPO_ID[:FILENAME], or a local folder/file (cached in-process)."""
    spec = str(spec) if spec else DEFAULT_MODEL
    return _load_cached(spec)


# A Hub that does not answer within HUB_TIMEOUT seconds is unreachable: a model not in the cache is refused at once
# (hf_hub_download would retry for minutes) and the app opens on the embedded model. The answer is kept HUB_RECHECK
# seconds, so that a Hub that went away costs one wait, not one per call.
HUB_TIMEOUT, HUB_RECHECK = 1.0, 60.0
_hub_answer: dict[str, tuple[float, bool]] = {}  # endpoint -> (when asked, whether it answered)


def _offline() -> bool:
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def hub_answers(timeout: float = HUB_TIMEOUT) -> bool:
    """Whether the Hub (HF_ENDPOINT) answers a request within `timeout` seconds, any answer counting; asked at most
    once per HUB_RECHECK seconds. Offline (HF_HUB_OFFLINE) it is not asked."""
    if _offline():
        return False
    asked, answered = _hub_answer.get(constants.ENDPOINT, (float("-inf"), False))
    if time.monotonic() - asked > HUB_RECHECK:
        try:
            get_session().head(constants.ENDPOINT, timeout=timeout)
            answered = True
        except Exception:  # noqa: BLE001 - refused, timed out, no route, no name: no answer
            answered = False
        _hub_answer[constants.ENDPOINT] = time.monotonic(), answered
    return answered


def _cached(repo: str, filename: str, revision: str | None) -> bool:
    return isinstance(try_to_load_from_cache(repo, filename, revision=revision or None), str)


def available(name: str) -> bool:
    """Whether the Hub model `name` (a key of MODELS) loads without waiting: its file is in the Hub cache, or the
    Hub answers (`hub_answers`: within HUB_TIMEOUT seconds)."""
    source = MODELS[name][0]
    if source.startswith("local:"):
        return True
    repo, _, rest = source.partition(":")
    filename, _, revision = rest.partition("@")
    return _cached(repo, filename, revision) or hub_answers()
