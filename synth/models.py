"""Models: one wrapper (normalisation inside, [0,1] NCHW in) and one loader for every source.

load_model()                                   -> the embedded robust CIFAR-10 model
load_model("imagenet-resnet50-l2-eps3")        -> a registered model (see MODELS)
load_model("madrylab/robust-imagenet-models:resnet18_l2_eps3.ckpt")   -> any Hub file
load_model("user/robust-cifar10")              -> a Hub repo in our format
load_model("path/to/folder" | "path/to/file.ckpt")

The parts: `registry` (names, sources, twins, class lists), `model` (RobustModel), `checks` (untrusted files
refused before allocation), `madrylab` (robustness-library checkpoints), `loading` (load_model and its cache).
This module gathers their public names.
"""

from .checks import ModelLoadError
from .loading import available, imagenet_seed_bank, load_model
from .madrylab import from_madrylab, madrylab_state_dict, read_torch_checkpoint
from .model import RobustModel, imagenet_classes, superclasses_of, wordnet_names
from .registry import (
    CIFAR10_CLASSES,
    CONFIG_FILE,
    DATASET_STATS,
    DEFAULT_MODEL,
    IMAGENET_SEEDS,
    MADRYLAB_REPO,
    MADRYLAB_REVISION,
    MAX_CLASS_NAME,
    MAX_CLASSES,
    MAX_INPUT_SIZE,
    MODELS,
    PRETRAINED_DIR,
    RESTRICTED_IMAGENET,
    RESTRICTED_IMAGENET_CLASSES,
    ROBUST_TWIN,
    SEEDS_FILE,
    STANDARD_TWIN,
    WEIGHTS_FILE,
    list_models,
    standard_twin,
)

__all__ = [
    "CIFAR10_CLASSES",
    "CONFIG_FILE",
    "DATASET_STATS",
    "DEFAULT_MODEL",
    "IMAGENET_SEEDS",
    "MADRYLAB_REPO",
    "MADRYLAB_REVISION",
    "MAX_CLASSES",
    "MAX_CLASS_NAME",
    "MAX_INPUT_SIZE",
    "MODELS",
    "PRETRAINED_DIR",
    "RESTRICTED_IMAGENET",
    "RESTRICTED_IMAGENET_CLASSES",
    "ROBUST_TWIN",
    "SEEDS_FILE",
    "STANDARD_TWIN",
    "WEIGHTS_FILE",
    "ModelLoadError",
    "RobustModel",
    "available",
    "from_madrylab",
    "imagenet_classes",
    "imagenet_seed_bank",
    "list_models",
    "load_model",
    "madrylab_state_dict",
    "read_torch_checkpoint",
    "standard_twin",
    "superclasses_of",
    "wordnet_names",
]
