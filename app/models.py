"""The models the app offers: which one it opens on, loading one with a clear message, its standard twin and the
class picker's choices."""

from __future__ import annotations

import functools

import gradio as gr
import torch

import synth
from synth.models import DEFAULT_MODEL

from .errors import refused

HUB_MODEL = "imagenet-resnet50-l2-eps3"  # the Space's model when it can be had (README: preload_from_hub)


@functools.cache
def start_model() -> str:
    """The Model dropdown's first value (and the API's default): the ImageNet ResNet-50 when its file is in the Hub
    cache (a Space's preload_from_hub puts it there) or the Hub answers within synth's HUB_TIMEOUT (1 s); else the
    embedded model. Decided once, when the demo is first built, and said in one line; with HF_HUB_OFFLINE=1 only
    the cache is looked at."""
    if synth.models.available(HUB_MODEL):
        print(f"synth app: opening on {HUB_MODEL} (in the Hub cache, or the Hub answers)", flush=True)
        return HUB_MODEL
    print(f"synth app: opening on {DEFAULT_MODEL}: {HUB_MODEL} is not cached and the Hub does not answer", flush=True)
    return DEFAULT_MODEL


def get_model(name: str):
    try:
        model = synth.load_model(name or start_model())
    except synth.ModelLoadError as e:
        raise refused(f"{e}", duration=None) from None
    return model.cuda() if torch.cuda.is_available() else model


def twin_of(model):
    name = synth.standard_twin(model)
    if name is None:
        return None
    try:
        return get_model(name)
    except gr.Error:
        gr.Warning(f"standard twin {name} is not available (offline?); showing the robust model only")
        return None


def class_choices(model_name) -> list[tuple[str, str]]:
    """The class picker's (shown, value) pairs: the model's super-classes (ImageNet models), then its classes; none
    for a model that cannot be loaded (never another model's)."""
    try:
        model = synth.load_model(model_name)
    except synth.ModelLoadError:
        return []
    groups = [(f"{k} (super-class: {len(v)} classes)", k) for k, v in model.superclasses().items()]
    return groups + [(c, c) for c in model.class_names]
