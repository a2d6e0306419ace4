"""The registry: every model name and where it comes from, the standard twins, class lists and dataset
constants."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import RobustModel


PRETRAINED_DIR = Path(__file__).parent / "pretrained"
MADRYLAB_REPO = "madrylab/robust-imagenet-models"
MADRYLAB_REVISION = "3f04ac96136001cfe402022100728124cbe3fac5"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SEEDS_FILE = "seeds.safetensors"
IMAGENET_SEEDS = PRETRAINED_DIR / "imagenet-seeds" / SEEDS_FILE
# the embedded files' sha256 sums, checked when they load; exports into the package rewrite it (`sha256sum -c` reads it)
EMBEDDED_SUMS = PRETRAINED_DIR / "SHA256SUMS"
# Bounds on what a config.json may ask for (it is untrusted input, and the network and every task's memory are
# sized by it). Generous: ImageNet-21k has 21,841 classes; robust classifiers work at 32-224 px, and an input side
# of 4096 px took 6.8 GB on one image and ended in a traceback.
MAX_CLASSES = 100_000
MAX_INPUT_SIZE = 512
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
for _eps, _name in (("3", "imagenet-mobilenetv2-l2-eps3"), ("0", "imagenet-mobilenetv2-standard-madrylab")):
    MODELS[_name] = (
        f"{MADRYLAB_REPO}:mobilenet_l2_eps{_eps}.ckpt@{MADRYLAB_REVISION}",
        "madrylab ImageNet mobilenet_v2, " + ("standard training" if _eps == "0" else f"L2 eps {_eps}"),
    )
MODELS["imagenet-mobilenetv2-standard"] = (
    "local:standard-imagenet-mobilenetv2",
    "embedded standard ImageNet-1k MobileNetV2 (torchvision's int8 weights in float), for photos offline",
)
DEFAULT_MODEL = "cifar10-resnet20-l2-eps0.5"
STANDARD_TWIN = {
    "cifar10-resnet20-l2-eps0.5": "cifar10-resnet20-standard",
    "tiny-imagenet-resnet18-half-l2-eps1": "tiny-imagenet-resnet18-half-standard",
    "horse2zebra-resnet18-half-l2-eps3": "horse2zebra-resnet18-half-standard",
}
STANDARD_TWIN.update({k: k.replace("l2-eps3", "standard") for k in MODELS if k.endswith("l2-eps3")})
# madrylab's robust MobileNetV2 is compared with madrylab's standard one (same recipe), not with the embedded one
STANDARD_TWIN["imagenet-mobilenetv2-l2-eps3"] = "imagenet-mobilenetv2-standard-madrylab"

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


def standard_twin(model: RobustModel) -> str | None:
    """The model name of the same architecture trained without robustness, when one exists."""
    return STANDARD_TWIN.get(model.name)


def list_models() -> dict[str, str]:
    return {k: v[1] for k, v in MODELS.items()}
