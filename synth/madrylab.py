"""madrylab (robustness library) checkpoints: read safely, converted to a RobustModel."""

from __future__ import annotations

import os
import re

import torch

from .archs import MOBILENET_ARCHS, TV_ARCHS
from .checks import ModelLoadError, _check_finite, _check_fits, _first_line, _skeleton
from .model import RobustModel, imagenet_classes
from .registry import CIFAR10_CLASSES, DATASET_STATS, RESTRICTED_IMAGENET_CLASSES

# --- madrylab (robustness library) checkpoints -------------------------------------------------


SUPPORTED = ", ".join([*TV_ARCHS, *MOBILENET_ARCHS])


def _classifier_key(arch: str) -> str:
    return "classifier.1.weight" if arch in MOBILENET_ARCHS else "fc.weight"


def _infer_arch(sd: dict[str, torch.Tensor]) -> str:
    """Guess the torchvision network from state-dict keys: MobileNetV2 (features.* / classifier.1.*), or a ResNet
    (block type, blocks per stage, width)."""
    if "features.0.0.weight" in sd and "classifier.1.weight" in sd:
        return "mobilenet_v2"  # the only features/classifier layout supported; _check_fits names any difference
    if "conv1.weight" not in sd or "fc.weight" not in sd:
        raise ModelLoadError(
            "checkpoint is neither a torchvision-style ResNet (conv1/fc keys) nor a MobileNetV2 "
            f"(features/classifier.1 keys); supported architectures: {SUPPORTED}"
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
        f"{layers}, width {width}; supported: {SUPPORTED}"
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
    arch = arch if arch in TV_ARCHS or arch in MOBILENET_ARCHS else _infer_arch(sd)
    fc = sd.get(_classifier_key(arch))
    if fc is None or fc.dim() != 2:
        raise ModelLoadError(f"checkpoint has no 2-D {_classifier_key(arch)} (the classifier layer)")
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
    _check_finite(sd, "checkpoint")
    model = RobustModel(**kwargs)
    model.net.load_state_dict(sd, strict=True)
    return model


def _parse_madrylab_name(filename: str) -> tuple[str | None, float]:
    m = re.match(r"(.+?)_(l2|linf)_eps([0-9.]+)\.(ckpt|pt|pth)$", os.path.basename(filename))
    if not m:
        return None, 0.0
    eps = float(m.group(3))
    return m.group(1), (eps if m.group(2) == "l2" else eps / 255)
