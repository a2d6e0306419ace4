"""One model wrapper (normalisation inside, [0,1] NCHW in) and one loader for every source.

load_model()                                   -> the embedded robust CIFAR-10 model
load_model("imagenet-resnet50-l2-eps3")        -> a registered model (see MODELS)
load_model("madrylab/robust-imagenet-models:resnet18_l2_eps3.ckpt")   -> any Hub file
load_model("user/robust-cifar10")              -> a Hub repo in our format
load_model("path/to/folder" | "path/to/file.ckpt")
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import os
import re
from pathlib import Path

import torch
from huggingface_hub import (
    PyTorchModelHubMixin,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError, safe_open
from torch import nn

from .archs import TV_ARCHS, build_arch, final_relu, fold_batchnorm, prepack_convolutions

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MADRYLAB_REPO = "madrylab/robust-imagenet-models"
MADRYLAB_REVISION = "3f04ac96136001cfe402022100728124cbe3fac5"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SEEDS_FILE = "seeds.safetensors"
IMAGENET_SEEDS = PRETRAINED_DIR / "imagenet-seeds" / SEEDS_FILE
# Bounds on what a config.json may ask for (it is untrusted input, and the network is sized by it). Generous:
# ImageNet-21k has 21,841 classes; 4096 px is far past any robust classifier.
MAX_CLASSES = 100_000
MAX_INPUT_SIZE = 4096
MAX_CLASS_NAME = 200

# name -> (source, description). Sources: a folder inside the package, or "repo:file@revision".
MODELS: dict[str, tuple[str, str]] = {
    "cifar10-resnet20-l2-eps0.5": (
        "local:robust-cifar10",
        "embedded robust CIFAR-10 ResNet-20 (L2, eps 0.5) - the default",
    ),
    "cifar10-resnet20-standard": ("local:standard-cifar10", "embedded standard (eps 0) twin of the default"),
    "tiny-imagenet-resnet18-half-l2-eps1": (
        "local:robust-tiny-imagenet",
        "embedded robust 64 px ResNet-18 (half width) for 200 ImageNet classes (L2, eps 1)",
    ),
    "tiny-imagenet-resnet18-half-standard": (
        "local:standard-tiny-imagenet",
        "embedded standard (eps 0) twin of the 64 px ImageNet-class model",
    ),
    "horse2zebra-resnet18-half-l2-eps3": (
        "local:robust-horse2zebra",
        "embedded robust 128 px horse/zebra domain model (L2, eps 3), for horse <-> zebra translation",
    ),
    "horse2zebra-resnet18-half-standard": (
        "local:standard-horse2zebra",
        "embedded standard (eps 0) twin of the horse/zebra model",
    ),
}
for _arch in ("resnet18", "resnet50", "wide_resnet50_2"):
    for _eps in ("3", "0"):
        _name = f"imagenet-{_arch.replace('_', '-')}-" + ("standard" if _eps == "0" else f"l2-eps{_eps}")
        MODELS[_name] = (
            f"{MADRYLAB_REPO}:{_arch}_l2_eps{_eps}.ckpt@{MADRYLAB_REVISION}",
            f"madrylab ImageNet {_arch}, " + ("standard training" if _eps == "0" else f"L2 eps {_eps}"),
        )
DEFAULT_MODEL = "cifar10-resnet20-l2-eps0.5"
STANDARD_TWIN = {
    "cifar10-resnet20-l2-eps0.5": "cifar10-resnet20-standard",
    "tiny-imagenet-resnet18-half-l2-eps1": "tiny-imagenet-resnet18-half-standard",
    "horse2zebra-resnet18-half-l2-eps3": "horse2zebra-resnet18-half-standard",
}
STANDARD_TWIN.update({k: k.replace("l2-eps3", "standard") for k in MODELS if k.endswith("l2-eps3")})

ROBUST_TWIN = {twin: robust for robust, twin in STANDARD_TWIN.items()}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RESTRICTED_IMAGENET = {  # the paper's Table 2: super-class -> its ImageNet class indices, inclusive (robustness lib.)
    "dog": (151, 268),
    "cat": (281, 285),
    "frog": (30, 32),
    "turtle": (33, 37),
    "bird": (80, 100),
    "primate": (365, 382),
    "fish": (389, 397),
    "crab": (118, 121),
    "insect": (300, 319),
}
RESTRICTED_IMAGENET_CLASSES = list(RESTRICTED_IMAGENET)
DATASET_STATS = {  # mean, std (robustness library constants)
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "tiny_imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet images, ImageNet's constants
    "restricted_imagenet": ((0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "a2b": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message (one line, naming the file) says why and what to do."""


def _first_line(e: BaseException) -> str:
    """Library errors can span lines (torch's weights_only advice); our messages stay one line for the CLI."""
    return next((line.strip() for line in str(e).splitlines() if line.strip()), repr(e))


def _check_args(num_classes: int, class_names, mean, std, input_size: int, eps: float) -> None:
    """Refuse values no model has before anything is sized by them: they may come from a stranger's config.json
    (num_classes sizes the class-name list and the classifier, before any weight is looked at)."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes {num_classes} is outside 1..{MAX_CLASSES}")
    if class_names and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    if class_names and not all(isinstance(c, str) and len(c) <= MAX_CLASS_NAME for c in class_names):
        raise ValueError(f"every class name must be a string of at most {MAX_CLASS_NAME} characters")
    if not 1 <= input_size <= MAX_INPUT_SIZE:
        raise ValueError(f"input_size {input_size} is outside 1..{MAX_INPUT_SIZE}")
    numbers = [*mean, *std, eps]
    if len(mean) != 3 or len(std) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
        raise ValueError(f"mean and std must be 3 finite numbers each and eps finite, got {mean}, {std}, {eps}")
    if min(std) <= 0 or eps < 0:
        raise ValueError(f"std must be positive and eps non-negative, got std {std}, eps {eps}")


@functools.cache
def imagenet_classes() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@functools.cache
def superclasses_of(dataset: str, num_classes: int, class_names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """`RobustModel.superclasses` from what a model's config says (once per config): ImageNet indices are the class
    indices of a 1000-class ImageNet model, and are found by name for a model of some ImageNet classes."""
    if dataset == "imagenet" and num_classes == 1000:
        imagenet_index = list(range(1000))
    elif dataset == "tiny_imagenet":
        where = {name: i for i, name in enumerate(imagenet_classes())}
        imagenet_index = [where.get(name, -1) for name in class_names]
    else:
        return {}
    groups = {
        name: tuple(k for k, i in enumerate(imagenet_index) if lo <= i <= hi)
        for name, (lo, hi) in RESTRICTED_IMAGENET.items()
    }
    return {name: members for name, members in groups.items() if members}


def wordnet_names(folder: str | Path) -> dict[str, str]:
    """wnid -> its WordNet names ('goldfish, Carassius auratus') from `folder`/classes.tsv (wnid TAB names, the
    Tiny ImageNet layout); {} when there is none."""
    path = Path(folder) / "classes.tsv"
    if not path.is_file():
        return {}
    rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r[0].strip(): r[1].strip() for r in rows if len(r) == 2}


class RobustModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="synth",
    tags=["adversarial-robustness", "image-classification", "image-synthesis"],
    paper_url="https://arxiv.org/abs/1906.09453",
):
    """A classifier with its normalisation inside: `logits(x)` and `features(x)` take x in [0,1], NCHW."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        class_names: list[str] | None = None,
        mean: list[float] | tuple = (0.5, 0.5, 0.5),
        std: list[float] | tuple = (0.5, 0.5, 0.5),
        input_size: int = 224,
        eps: float = 0.0,
        norm: str = "l2",
        dataset: str = "custom",
    ):
        super().__init__()
        _check_args(num_classes, class_names, mean, std, input_size, eps)
        class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.arch, self.num_classes, self.class_names = arch, num_classes, class_names
        self.input_size, self.eps, self.norm, self.dataset = int(input_size), float(eps), norm, dataset
        self.net = build_arch(arch, num_classes)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.seed_bank = None  # a synth.seeds.SeedBank, when the model ships one
        self.name = arch

    @property
    def config(self) -> dict:
        return dict(self._hub_mixin_config)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.clamp(0, 1) - self.mean) / self.std

    def features(self, x: torch.Tensor, fake_relu: bool = False) -> torch.Tensor:
        """Penultimate representation (post-ReLU; FakeReLU on the last one when asked)."""
        return self.net.head(final_relu(self.net.trunk(self.normalize(x)), fake_relu))

    def logits(self, x: torch.Tensor, fake_relu: bool = False) -> torch.Tensor:
        return self.net.fc(self.features(x, fake_relu))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def for_synthesis(self, dtype: torch.dtype = torch.float32) -> "RobustModel":
        """This model with BatchNorm folded into the convolutions: the same function (to float rounding), a
        faster forward/backward for PGD. dtype=torch.bfloat16 also stores the conv/linear weights in bf16 (for
        use under bf16 autocast only, where they would be cast on every call anyway) and, on a CPU, pre-packs
        them for oneDNN (`archs.prepack_convolutions`). A frozen copy, made on first use and kept per dtype (not
        saved, not a submodule); remade when the model's weights change (in-place version counters) or it moves
        device. Tasks run on it; training and `save_pretrained` use the model itself."""
        tensors = [*self.parameters(), *self.buffers()]
        key = (tensors[0].device, tuple(t._version for t in tensors))
        cache = self.__dict__.setdefault("_fused", {})
        if cache.get(dtype, (None,))[0] != key:
            fused = copy.deepcopy(self).eval()  # without the cache (__getstate__)
            fold_batchnorm(fused.net)
            fused.requires_grad_(False).to(memory_format=torch.channels_last)
            if dtype != torch.float32:
                for m in fused.modules():
                    if isinstance(m, (nn.Conv2d, nn.Linear)):
                        m.to(dtype)
                if dtype == torch.bfloat16 and key[0].type == "cpu":
                    prepack_convolutions(fused.net)  # oneDNN weight layouts made once, not on every call
            cache[dtype] = (key, fused)
        return cache[dtype][1]

    def __getstate__(self):  # copies and pickles leave the synthesis copies behind
        state = self.__dict__.copy()  # (object.__getstate__ is 3.11+)
        state.pop("_fused", None)
        return state

    @property
    def num_features(self) -> int:
        return self.net.num_features

    # --- class names ---------------------------------------------------------------------------
    def class_index(self, label: int | str) -> int:
        """Class index from an int, a digit string or a name (case-insensitive); clear error otherwise."""
        if isinstance(label, bool):
            raise ValueError(f"invalid label {label!r}")
        if isinstance(label, int) or (isinstance(label, str) and label.strip().isdigit()):
            i = int(label)
            if not 0 <= i < self.num_classes:
                raise ValueError(f"label {i} out of range: this model has classes 0..{self.num_classes - 1}")
            return i
        name = str(label).strip().lower()
        lowered = [c.lower() for c in self.class_names]
        if name in lowered:
            return lowered.index(name)
        close = difflib.get_close_matches(name, lowered, n=5, cutoff=0.6)
        close += [c for c in lowered if name and name in c and c not in close][: 5 - len(close)]
        hint = f"; did you mean {', '.join(repr(self.class_names[lowered.index(c)]) for c in close)}?" if close else ""
        raise ValueError(f"unknown class {label!r} for this {self.dataset} model{hint}")

    def superclasses(self) -> dict[str, list[int]]:
        """The paper's Restricted-ImageNet targets over this model's classes: super-class -> the indices of its
        classes here (`RESTRICTED_IMAGENET`). An ImageNet model has all nine; a model of some ImageNet classes
        (tiny_imagenet) has those it has a class of; any other model none."""
        groups = superclasses_of(self.dataset, self.num_classes, tuple(self.class_names))
        return {name: list(members) for name, members in groups.items()}

    def target_classes(self, label: int | str) -> list[int]:
        """The classes a target stands for: a super-class's (its log-probability is the log-sum-exp of their logits
        less that of all logits), or one class (`class_index`)."""
        groups = superclasses_of(self.dataset, self.num_classes, tuple(self.class_names))
        name = label.strip().lower() if isinstance(label, str) else None
        if name in groups:
            return list(groups[name])
        if name in RESTRICTED_IMAGENET and groups and name not in (c.lower() for c in self.class_names):
            raise ValueError(f"this model has no class of super-class {name!r}; its super-classes: {', '.join(groups)}")
        return [self.class_index(label)]

    def target_name(self, label: int | str) -> str:
        """A target's name as the model spells it: the super-class's, or its class's (`target_classes`)."""
        name = label.strip().lower() if isinstance(label, str) else None
        if name in superclasses_of(self.dataset, self.num_classes, tuple(self.class_names)):
            return name
        return self.class_names[self.target_classes(label)[0]]

    # --- I/O: config.json + model.safetensors (+ seeds.safetensors) ------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        super()._save_pretrained(save_directory)
        if self.seed_bank is not None:
            self.seed_bank.save(Path(save_directory) / SEEDS_FILE)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **hub_kwargs) -> RobustModel:
        """config.json + model.safetensors (+ seeds.safetensors) from a model folder or a Hub repo; `hub_kwargs`
        (revision, cache_dir, token, local_files_only, force_download) go to hf_hub_download. Replaces the
        mixin's loader, which builds the network a config.json names before looking at any weight: here the
        architecture is built on the meta device and matched against the weights' header first, so a hostile or
        damaged repo costs no memory, only a one-line ModelLoadError naming the file."""
        source = str(pretrained_model_name_or_path)
        fetch = functools.partial(_fetch, source, **hub_kwargs)
        where = functools.partial(os.path.join, source)  # names files as the user knows them, not cache paths
        config = _read_config(fetch(CONFIG_FILE), where(CONFIG_FILE))
        weights = fetch(WEIGHTS_FILE)
        _check_fits(
            _skeleton(config, where(CONFIG_FILE)),
            _read_safetensors(weights, where(WEIGHTS_FILE), header_only=True),
            f"{where(WEIGHTS_FILE)} does not match {CONFIG_FILE} ({config['arch']}, {config['num_classes']} classes)",
        )
        seeds = fetch(SEEDS_FILE, optional=True)  # checked too before the network is built for real
        seed_bank = _read_seeds(seeds, config["num_classes"], where(SEEDS_FILE)) if seeds else None
        model = cls(**config)
        try:
            model.load_state_dict(_read_safetensors(weights, where(WEIGHTS_FILE)))
        except RuntimeError as e:  # the shapes fit; a dtype that cannot be copied into float parameters
            raise ModelLoadError(f"{where(WEIGHTS_FILE)}: {_first_line(e)}") from None
        model.seed_bank = seed_bank
        return model.eval()


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


@functools.cache
def imagenet_seed_bank():
    """The class seeds shipped for the Hub's ImageNet models (synth/pretrained/imagenet-seeds: 200 of the 1000
    classes, fitted on Tiny ImageNet; the other classes start from the generic seed)."""
    return _read_seeds(str(IMAGENET_SEEDS), 1000, str(IMAGENET_SEEDS))


def _prepare(model: RobustModel, name: str) -> RobustModel:
    model.name = name
    model.eval().requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


# --- madrylab (robustness library) checkpoints -------------------------------------------------


def _infer_tv_arch(sd: dict[str, torch.Tensor]) -> str:
    """Guess the torchvision ResNet from state-dict keys (block type, blocks per stage, width)."""
    if "conv1.weight" not in sd or "fc.weight" not in sd:
        raise ModelLoadError(
            "checkpoint is not a torchvision-style ResNet (no conv1/fc keys); "
            f"supported architectures: {', '.join(TV_ARCHS)}"
        )
    bottleneck = "layer1.0.conv3.weight" in sd
    layers = [len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
    conv = sd.get("layer1.0.conv1.weight")  # (absent or 0-d in a damaged file: _check_fits then names it)
    width = conv.shape[0] if bottleneck and conv is not None and conv.dim() else 64
    for name, (block, lay, wpg) in TV_ARCHS.items():
        if lay == layers and (block.__name__ == "Bottleneck") == bottleneck and (not bottleneck or wpg == width):
            return name
    raise ModelLoadError(
        f"unsupported ResNet layout: {'bottleneck' if bottleneck else 'basic'} blocks "
        f"{layers}, width {width}; supported: {', '.join(TV_ARCHS)}"
    )


def read_torch_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load with weights_only=True only; anything else is refused with the offending global named, and a
    damaged file is called damaged (not unsafe)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # pickle.UnpicklingError, zip errors, EOFError, OSError and friends
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        unsafe = next((line for line in lines if "GLOBAL" in line), None)
        if unsafe is None:  # no forbidden global: the bytes themselves are not a checkpoint
            detail = next((line for line in lines if line.startswith("Unsupported")), _first_line(e))
            raise ModelLoadError(
                f"{path} is not a readable PyTorch checkpoint (corrupt, truncated or another format): "
                f"torch.load said: {detail}"
            ) from None
        raise ModelLoadError(
            f"refusing to load {path}: it is not a plain-tensor checkpoint that can be read safely "
            f"(torch.load(weights_only=True) said: {unsafe}). synth never unpickles code. Re-save the file "
            f"as plain tensors (e.g. torch.save({{'model': sd}}) with a trusted torch) and try again."
        ) from None


def madrylab_state_dict(ckpt: dict) -> tuple[dict, tuple | None, tuple | None]:
    """Classifier state dict + (mean, std) from a robustness-library checkpoint dict."""
    if not isinstance(ckpt, dict):
        raise ModelLoadError(f"checkpoint is a {type(ckpt).__name__}, expected a dict with a 'model' entry")
    sd = ckpt.get("model", ckpt.get("state_dict", ckpt))
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelLoadError("checkpoint has no state dict of tensors under 'model' or 'state_dict'")
    sd = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}
    for k, v in sd.items():  # a stride-0 view pickles as one element: a tiny file could size a huge network
        if v.numel() * v.element_size() > v.untyped_storage().nbytes():
            raise ModelLoadError(
                f"checkpoint tensor {k} claims shape {tuple(v.shape)} but the file holds "
                f"{v.untyped_storage().nbytes()} bytes of it"
            )
    mean = sd.get("normalizer.new_mean")
    std = sd.get("normalizer.new_std")
    if any(k.startswith("model.") for k in sd):
        sd = {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}
    else:  # plain classifier state dict
        sd = {k: v for k, v in sd.items() if not k.startswith(("attacker.", "normalizer."))}
    to_tuple = lambda t: tuple(float(v) for v in t.flatten()) if t is not None else None  # noqa: E731
    return sd, to_tuple(mean), to_tuple(std)


def from_madrylab(ckpt: dict, *, arch: str | None = None, eps: float = 0.0, name: str = "") -> RobustModel:
    sd, mean, std = madrylab_state_dict(ckpt)
    arch = arch if arch in TV_ARCHS else _infer_tv_arch(sd)
    fc = sd.get("fc.weight")
    if fc is None or fc.dim() != 2:
        raise ModelLoadError("checkpoint has no 2-D fc.weight (the classifier layer)")
    num_classes = fc.shape[0]
    dataset, classes = {
        1000: ("imagenet", imagenet_classes()),
        9: ("restricted_imagenet", RESTRICTED_IMAGENET_CLASSES),
        10: ("cifar10", CIFAR10_CLASSES),
        2: ("a2b", ["A", "B"]),
    }.get(num_classes, ("custom", None))
    if mean is None:
        mean, std = DATASET_STATS.get(dataset, DATASET_STATS["a2b"])
    kwargs = {"arch": arch, "num_classes": num_classes, "class_names": classes, "mean": mean, "std": std}
    kwargs.update(input_size=224, eps=eps, dataset=dataset)
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    _check_fits(_skeleton(kwargs, "checkpoint").net, shapes, f"checkpoint does not match architecture {arch}")
    model = RobustModel(**kwargs)
    model.net.load_state_dict(sd, strict=True)
    return model


def _parse_madrylab_name(filename: str) -> tuple[str | None, float]:
    m = re.match(r"(.+?)_(l2|linf)_eps([0-9.]+)\.(ckpt|pt|pth)$", os.path.basename(filename))
    if not m:
        return None, 0.0
    eps = float(m.group(3))
    return m.group(1), (eps if m.group(2) == "l2" else eps / 255)


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
    if spec in MODELS and spec.startswith("imagenet-"):  # madrylab checkpoints carry no seeds: ours go with them
        model.seed_bank = imagenet_seed_bank()
    if model.seed_bank is None and spec in ROBUST_TWIN:  # a twin without a bank: its robust twin's (same classes)
        model.seed_bank = _load_cached(ROBUST_TWIN[spec]).seed_bank
    return _prepare(model, spec)


def load_model(spec: str | os.PathLike | None = None) -> RobustModel:
    """Load a model from a name in MODELS, a Hub REPO_ID[:FILENAME], or a local folder/file (cached in-process)."""
    spec = str(spec) if spec else DEFAULT_MODEL
    return _load_cached(spec)


def available(name: str, timeout: float = 3.0) -> bool:
    """Whether the Hub model `name` (a key of MODELS) loads without waiting long: its file is in the Hub cache, or
    the Hub answers within `timeout` seconds. Offline (HF_HUB_OFFLINE) only the cache is looked at."""
    source = MODELS[name][0]
    if source.startswith("local:"):
        return True
    repo, _, rest = source.partition(":")
    filename, _, revision = rest.partition("@")
    if isinstance(try_to_load_from_cache(repo, filename, revision=revision or None), str):
        return True
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return False
    try:
        get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision or None), timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - unreachable, refused, unknown: not available now
        return False


def standard_twin(model: RobustModel) -> str | None:
    """The model name of the same architecture trained without robustness, when one exists."""
    return STANDARD_TWIN.get(model.name)


def list_models() -> dict[str, str]:
    return {k: v[1] for k, v in MODELS.items()}
