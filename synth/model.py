"""The model: a classifier with its normalisation inside (`RobustModel`), and its class names."""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
from pathlib import Path

import torch
from huggingface_hub import (
    PyTorchModelHubMixin,
)
from torch import nn

from .archs import build_arch, fold_batchnorm, prepack_convolutions
from .checks import (
    ModelLoadError,
    _check_finite,
    _check_fits,
    _fetch,
    _first_line,
    _read_config,
    _read_safetensors,
    _read_seeds,
    _skeleton,
)
from .registry import (
    CONFIG_FILE,
    MAX_CLASS_NAME,
    MAX_CLASSES,
    MAX_INPUT_SIZE,
    RESTRICTED_IMAGENET,
    SEEDS_FILE,
    WEIGHTS_FILE,
)


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
        """Penultimate representation (after the last activation; a fake one, identity backward, when asked)."""
        return self.net.head(self.net.final_act(self.net.trunk(self.normalize(x)), fake_relu))

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
        shown = repr(label) if len(str(label)) <= 80 else f"{str(label)[:60]!r}... ({len(str(label)):,} characters)"
        raise ValueError(f"unknown class {shown} for this {self.dataset} model{hint}")

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
        tensors = _read_safetensors(weights, where(WEIGHTS_FILE))
        _check_finite(tensors, where(WEIGHTS_FILE))
        model = cls(**config)
        try:
            model.load_state_dict(tensors)
        except RuntimeError as e:  # the shapes fit; a dtype that cannot be copied into float parameters
            raise ModelLoadError(f"{where(WEIGHTS_FILE)}: {_first_line(e)}") from None
        model.seed_bank = seed_bank
        return model.eval()
