"""Robust-classifier image synthesis: a Gradio suite, one tab per task (UI only; the work is in `synth`).

python app.py [--share] [--host 0.0.0.0] [--port 7860]

Every tab is a `Tab` in TABS: its inputs (by the API's parameter names), its outputs, how the inputs become a call
of its `synth` task, and how a result is shown. One runner (`run`) does the rest for every tab: the model, the PGD
settings, progress with intermediate images, Stop, and the standard-model comparison.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import inspect
import math
import queue
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
import torch
from PIL import Image

import synth
import synth.metrics
import synth.photos
import synth.starts
import synth.tiles
from synth.images import to_pil
from synth.models import DEFAULT_MODEL, MODELS

# The app's limits (one shared worker): uploads are downscaled to APP_MAX_SIDE; super-resolution outputs over
# APP_MAX_OUTPUT_PIXELS and requests whose PGD work - model-input pixels x steps x models - is over APP_MAX_WORK
# (GPU_WORK_FACTOR times that on a GPU) are refused. The package's own limits are in synth.images.
APP_MAX_SIDE = 4096
APP_MAX_OUTPUT_PIXELS = 4_000_000
APP_MAX_WORK = 100_000_000
GPU_WORK_FACTOR = 20

# ZeroGPU: the seconds asked for a run are its PGD work (model-input pixels x steps) at the rate of a ResNet-50 at
# 224 px, batch 1, on one H100 (224^2 px per 6.8 ms step: docs/speed.md; batches run faster), plus start-up.
# ZeroGPU serves shorter requests first, and ends a call at its duration.
GPU_PIXEL_STEPS_PER_S, GPU_START_SECONDS, GPU_MAX_SECONDS = 7_000_000, 10, 300


def gpu_seconds(fn, *args, pixel_steps: int = 0, **kwargs) -> int:
    """`run_task`'s duration on ZeroGPU (called with its arguments)."""
    return min(GPU_MAX_SECONDS, math.ceil(GPU_START_SECONDS + pixel_steps / GPU_PIXEL_STEPS_PER_S))


try:  # ZeroGPU Spaces: GPU-bound functions get @spaces.GPU; elsewhere a no-op
    import spaces

    gpu = spaces.GPU(duration=gpu_seconds)
except ImportError:

    def gpu(fn):
        return fn


EXAMPLES = Path(__file__).parent / "examples"  # small photos per model family, and our drawings (examples/*README.md)
# Each model family's examples (photos of classes its models know) follow the Model dropdown. Their results are
# cached for the family's embedded robust model, the one they ran on; with another model of the family an example
# fills the inputs, and the tab's button runs it on that model.
EXAMPLE_MODELS = {
    "cifar10": "cifar10-resnet20-l2-eps0.5",
    "imagenet": "tiny-imagenet-resnet18-half-l2-eps1",
    "horse2zebra": "horse2zebra-resnet18-half-l2-eps3",
}
HUB_MODEL = "imagenet-resnet50-l2-eps3"  # the Space's model when it can be had (README: preload_from_hub)
PREVIEW_SIDE, PREVIEWS = 768, 10  # previews while PGD runs: at most this many px long, this many a run
FAST_PNG_PIXELS = 1_000_000  # result images larger than this are written by the app (`as_files`), not by Gradio
RESULTS_DIR = Path(tempfile.mkdtemp(prefix="synth-results-"))
STANDARD = "Standard model"  # the label of every tab's output from the standard twin


# --------------------------------------------------------------------------------------------- inputs
def readable(component):
    """`component` (an image input) whose uploads are checked as synth checks files: Gradio decodes an upload
    before our code runs, so its header is read first (a decompression bomb is refused before it is decoded), and
    a file that is not an image gets a clear message instead of Gradio's generic 'error'. (Wraps the instance's
    preprocess; a subclass would make Gradio write a .pyi stub next to this file.)"""
    preprocess = component.preprocess

    def checked(payload):
        files = [getattr(payload, k, None) for k in ("background", "composite")] + list(getattr(payload, "layers", []))
        for f in [payload, *files]:
            name = getattr(f, "orig_name", None) or "the upload"
            if getattr(f, "path", None):
                try:
                    synth.images.open_file(f.path).close()
                except synth.ImageError as e:
                    raise gr.Error(f"{str(e).replace(f.path, name)}; upload a PNG, JPEG, WebP or BMP") from None
        try:
            return preprocess(payload)
        except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
            raise gr.Error(f"the upload: not a readable image ({e.__class__.__name__})") from None

    component.preprocess = checked
    return component


def numeric(component):
    """`component` (a Number or Slider) whose non-numbers (text, NaN from a raw request) get a message naming the
    field, where Gradio would answer with its generic 'error'."""
    preprocess = component.preprocess

    def checked(payload):
        try:
            value = preprocess(payload)
        except gr.Error as e:  # a number out of the field's range: Gradio's message says which bound
            raise gr.Error(f"{component.label}: {e.message}") from None
        except (TypeError, ValueError, OverflowError):
            value = float("nan")
        if isinstance(value, float) and value != value:
            raise gr.Error(f"{component.label}: expected a number, got {payload!r}")
        return value

    component.preprocess = checked
    return component


def image_input(label, height, **kw):
    return readable(gr.Image(label=label, type="pil", height=height, **kw))


def photo_editor(label, colour):
    """Upload a photo, paint a region with a fixed-colour brush (the mask is read from the stroke layer)."""
    return readable(
        gr.ImageEditor(
            label=label,
            type="pil",
            image_mode="RGBA",
            format="png",
            layers=False,
            transforms=(),
            sources=("upload", "clipboard"),
            brush=gr.Brush(colors=[colour], color_mode="fixed"),
            height=360,
        )
    )


def as_rgb(img) -> Image.Image | None:
    if img is None:
        return None
    try:
        im = synth.load_image(img)
    except synth.ImageError as e:
        raise gr.Error(str(e)) from None
    if max(im.size) > APP_MAX_SIDE:
        im.thumbnail((APP_MAX_SIDE, APP_MAX_SIDE), Image.Resampling.LANCZOS)
        gr.Warning(f"large image downscaled to {im.width}x{im.height}")
    return im


def editor_parts(value, uploaded_mask=None):
    """(photo, mask) from an ImageEditor value and an optional uploaded mask (which wins)."""
    if not value or value.get("background") is None:
        raise gr.Error("upload a photo first")
    photo = as_rgb(value["background"])
    if uploaded_mask is not None:  # read as synth reads masks (transparency counts), fitted to a downscaled photo
        mask = synth.images.mask_image(check(lambda m: synth.load_mask(m, photo.size, fit=True), uploaded_mask))
    else:
        mask = synth.mask_from_layers(value.get("layers"), photo.size)
    if not np.asarray(mask).any():
        raise gr.Error("the mask is empty: paint the region with the brush (or upload a mask)")
    return photo, mask


def get_model(name: str):
    try:
        model = synth.load_model(name or start_model())
    except synth.ModelLoadError as e:
        raise gr.Error(f"{e}", duration=None) from None
    return model.cuda() if torch.cuda.is_available() else model


def class_choices(model_name) -> list[tuple[str, str]]:
    """The class picker's (shown, value) pairs: the model's super-classes (ImageNet models), then its classes."""
    try:
        model = synth.load_model(model_name)
    except synth.ModelLoadError:
        model = synth.load_model(DEFAULT_MODEL)
    groups = [(f"{k} (super-class: {len(v)} classes)", k) for k, v in model.superclasses().items()]
    return groups + [(c, c) for c in model.class_names]


def class_dropdown(label, blank_ok, value=None):
    choices = class_choices(start_model())
    values = [v for _, v in choices]
    return gr.Dropdown(
        ([""] if blank_ok else []) + choices,
        value=value if value in values else ("" if blank_ok else values[0]),
        label=label,
        filterable=True,
        allow_custom_value=True,
        info="type to search" + (" - blank: the model's prediction" if blank_ok else ""),
    )


# --------------------------------------------------------------------------------------------- the tabs
@dataclass
class Job:
    """One call of a tab's synth task: model, *args, **kwargs; `context` is what the tab's `show` needs."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    images: int = 1  # model-size images PGD works on (the request's size, see check_work)


@dataclass
class Tab:
    title: str
    task: Callable  # the synth task
    api_name: str
    doc: str  # shown above the tab and as the API endpoint's description
    inputs: Callable[[], dict]  # builds the tab's input components: {API parameter name: component}
    outputs: Callable[[], list]  # builds its output components
    prepare: Callable[..., Job]  # (model, **input values) -> Job; raises gr.Error on bad input
    show: Callable[..., tuple]  # (job, result, standard result or None) -> output values
    preview: Callable | None = None  # (job, current PGD iterate) -> a result `show` can show, while PGD runs
    classes: dict = field(default_factory=dict)  # class-picker inputs: {name: blank allowed}
    examples: dict = field(default_factory=dict)  # {model family: [{input name: value}]}, run with the fast preset
    extra: Callable | None = None  # (model dropdown, inputs, outputs): wires the tab's own further events
    slider: bool = False  # a before/after ImageSlider of the photo (job.context["before"]) and the result


def check(fn, value):
    """fn(value), with a ValueError/TypeError shown to the user as the message it is."""
    try:
        return fn(value)
    except (TypeError, ValueError) as e:
        raise gr.Error(str(e)) from None


def first_resized(job, x):
    """The first image of the PGD batch, at the photo's aspect and at most PREVIEW_SIDE px: a preview is encoded and
    sent while PGD runs, and at a 12 MP photo's size that takes seconds each time."""
    w, h = job.context["size"]
    scale = min(1.0, PREVIEW_SIDE / max(w, h))
    return to_pil(x[0]).resize((max(1, round(w * scale)), max(1, round(h * scale))))


def whole_preview(job, x):
    """Masked tasks preview only a photo worked whole: a batch of crops is not the photo (None: no preview)."""
    return first_resized(job, x) if job.context["whole"] else None


def both(job, out, std):
    return out, std


def pair(**kw):
    """The robust model's result beside the standard model's."""
    return [gr.Image(label="Robust model", format="png", **kw), gr.Image(label=STANDARD, format="png")]


def galleries(columns, height, robust="Robust model"):
    return [
        gr.Gallery(label=robust, format="png", columns=columns, height=height),
        gr.Gallery(label=STANDARD, format="png", columns=columns, height=height),
    ]


def row_of_pair():
    with gr.Row():
        return pair()


def photo_and_class(photo_label, class_label, value, height=300):
    with gr.Row():
        return dict(
            image=image_input(photo_label, height, image_mode=None),
            target=class_dropdown(class_label, blank_ok=False, value=value),
        )


def masked_inputs(label, colour, rest):
    """A photo editor and an optional mask upload, then `rest` (a function making the task's other inputs, by name)."""
    with gr.Row():
        editor = photo_editor(label, colour)
        with gr.Column():
            uploaded = image_input("...or upload a mask (optional)", 160, image_mode=None)
            others = rest()
    return dict(editor=editor, uploaded_mask=uploaded, **others)


def prepare_photo_to_class(model, image, target):
    photo = as_rgb(image)
    if photo is None:
        raise gr.Error("upload a photo first")
    if not target:
        raise gr.Error("pick a target class")
    return Job((photo,), dict(target=target), dict(size=photo.size, before=photo))


# generate: its inputs, outputs and how they become a call
def generate_inputs():
    with gr.Row():
        return dict(
            label=class_dropdown("Class", blank_ok=False, value="cat"),
            n=numeric(gr.Slider(1, 8, value=4, step=1, label="Samples")),
            seed=numeric(gr.Number(value=0, precision=0, label="Seed")),
        )


def generate_outputs():
    info = gr.Markdown()
    with gr.Row():
        return [*galleries(4, 320), info]


def prepare_generate(model, label, n, seed):
    label = label or None
    names = synth.tasks.generation_classes(model, label, n, seed)  # checks the label, n and seed
    n, seed = len(names), int(seed)
    bank = model.seed_bank
    uncovered = sorted({c for c in names if not (bank and bank.covers(torch.tensor(model.target_classes(c))).any())})
    if uncovered:
        gr.Warning(f"no class seed for {', '.join(uncovered)}: starting from the generic seed (grey + coarse noise)")
    caps = [f"{c} #{k} (seed {seed})" for k, c in enumerate(names)]
    info = f"seed **{seed}** - {n} sample(s) of {', '.join(sorted(set(names)))}"
    return Job(kwargs=dict(label=label, n=n, seed=seed), context=dict(captions=caps, info=info), images=n)


def show_generate(job, out, std):
    caps = job.context["captions"]
    return list(zip(out, caps)), (list(zip(std, caps)) if std else None), job.context["info"]


# inpaint: its inputs, outputs and how they become a call
def inpaint_outputs():
    with gr.Row():
        return [gr.Image(label="Masked input", format="png"), *pair()]


def inpaint_options():
    return dict(
        label=class_dropdown("Class (optional)", True),
        fill=gr.Radio(
            ["preset", *synth.starts.INPAINT_FILLS],
            value="preset",
            label="Fill",
            info="the hole's start - preset: ours = texture (the photo's own patches, at its resolution), paper = mean",
        ),
    )


def prepare_inpaint(model, editor, uploaded_mask, label, fill):
    photo, mask = editor_parts(editor, uploaded_mask)
    masked = np.where(np.asarray(mask)[..., None] > 0, 128, np.asarray(photo)).astype(np.uint8)
    crops = crop_count(model, mask)
    context = dict(size=photo.size, masked=Image.fromarray(masked), before=photo, whole=crops == 0)
    kwargs = dict(label=label or None, fill=None if fill in (None, "preset") else fill)
    return Job((photo, mask), kwargs, context, images=max(crops, 1))


def crop_count(model, mask: Image.Image) -> int:
    """The crops around the mask's regions a masked task works on (synth.photos); 0: it works the whole photo."""
    boxes = synth.photos.crop_boxes(np.asarray(mask) > 0, model.input_size)
    return 0 if boxes is None else len(boxes)


# super-resolve: its inputs, outputs and how they become a call
def super_resolve_inputs():
    with gr.Row():
        image = image_input("Small photo", 200, image_mode=None)
        with gr.Column():
            factor = numeric(gr.Slider(2, 8, value=4, step=1, label="Factor"))
            start = gr.Radio(
                ["preset", *synth.starts.UPSAMPLING],
                value="preset",
                label="Start",
                info="preset: ours = back-projected bicubic, paper = nearest",
            )
            original = image_input("High-resolution original (optional, for PSNR)", 160)
    return dict(image=image, factor=factor, start=start, original=original)


def super_resolve_outputs():
    report = gr.Markdown()
    with gr.Row():
        bicubic = gr.Image(label="Bicubic", format="png")
        out, std = pair()
    return [bicubic, out, report, std]


def prepare_super_resolve(model, image, factor, start, original):
    small = as_rgb(image)
    if small is None:
        raise gr.Error("upload a small photo first")
    factor = check(int, factor)
    if small.width * small.height * factor * factor > APP_MAX_OUTPUT_PIXELS:
        raise gr.Error(
            f"{small.width}x{small.height} x{factor} would be over {APP_MAX_OUTPUT_PIXELS // 10**6} megapixels: "
            "use a smaller image or factor"
        )
    bicubic = small.resize((small.width * factor, small.height * factor), Image.Resampling.BICUBIC)
    kwargs = dict(factor=factor, start=None if start in (None, "preset") else start)
    tiles = synth.tiles.tile_count(bicubic.height, bicubic.width, model.input_size)
    return Job((small,), kwargs, dict(bicubic=bicubic, original=as_rgb(original), before=bicubic), images=tiles)


def show_super_resolve(job, out, std):
    bicubic, hr = job.context["bicubic"], job.context["original"]
    report = ""
    if hr is not None and out is not None:
        report = f"PSNR against your original: bicubic **{psnr(bicubic, hr):.2f} dB**, ours **{psnr(out, hr):.2f} dB**"
    return bicubic, out, report, std


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR of `a` against `b` resized to `a`'s size (synth.metrics.psnr)."""
    return float(synth.metrics.psnr(synth.images.to_tensor(a), synth.images.to_tensor(b.resize(a.size))))


# sketch: its inputs, outputs and how they become a call
def sketch_inputs():
    with gr.Row():
        pad = gr.Sketchpad(
            label="Draw",
            type="pil",
            image_mode="RGBA",
            canvas_size=(256, 256),
            brush=gr.Brush(default_size=12),
            layers=False,
            height=320,
        )
        with gr.Column():
            uploaded = image_input("...or upload a drawing", 200, image_mode=None)
            label = class_dropdown("Class (optional)", blank_ok=True)
    return dict(drawing=pad, uploaded=uploaded, label=label)


def prepare_sketch(model, drawing, uploaded, label):
    img = uploaded
    if img is None and drawing is not None:
        img = drawing.get("composite") if isinstance(drawing, dict) else drawing
    img = as_rgb(img)
    if img is None or np.asarray(img).min() == 255:
        raise gr.Error("draw something (or upload a drawing) first")
    return Job((img,), dict(label=label or None), dict(size=img.size))


# paint features: its inputs, outputs and how they become a call
def paint_inputs():
    return masked_inputs(
        "Photo - paint the region",
        "#00ffff",
        lambda: dict(feature_k=gr.Dropdown([], value=None, label="Feature index", allow_custom_value=True)),
    )


def prepare_paint(model, editor, uploaded_mask, feature_k):
    photo, mask = editor_parts(editor, uploaded_mask)
    if feature_k in (None, ""):
        raise gr.Error("choose a feature (click 'Suggest features' or type an index)")
    try:
        feature = int(feature_k)
    except (TypeError, ValueError):
        raise gr.Error(f"feature must be an integer index, got {feature_k!r}") from None
    return Job((photo, mask), dict(feature=feature), dict(before=photo), images=max(crop_count(model, mask), 1))


def do_suggest(model_name, editor, uploaded_mask):
    model = get_model(model_name)
    photo, mask = editor_parts(editor, uploaded_mask)
    top = synth.top_features(model, photo, mask, k=6)
    work = max(crop_count(model, mask), 1) * model.input_size**2 * 15
    thumbs = [  # what each feature adds: a short paint run inside the mask
        (
            run_task(synth.paint_features, model, photo, mask, feature=k, preset="fast", steps=15, pixel_steps=work),
            f"feature {k} (activation {act:.2f})",
        )
        for k, act in top
    ]
    return gr.Dropdown(choices=[k for k, _ in top], value=top[0][0]), thumbs


def stack_edit(result):
    """Use the painted result as the next edit's photo (edits stack)."""
    if result is None:
        raise gr.Error("nothing to stack yet: run a paint first")
    return {"background": result, "layers": [], "composite": result}


def add_feature_suggestions(model, inputs, outputs):
    thumbs = gr.Gallery(label="What each suggested feature adds", format="png", columns=6, height=160)
    suggest = gr.Button("Suggest features")
    stack = gr.Button("Stack: use the result as the photo")
    suggest.click(
        do_suggest,
        [model, inputs["editor"], inputs["uploaded_mask"]],
        [inputs["feature_k"], thumbs],
        api_visibility="undocumented",
        concurrency_id="pgd",
    )
    stack.click(stack_edit, outputs[0], inputs["editor"], api_visibility="private")


# visualize: its inputs, outputs and how they become a call
def show_visualize(job, frames, std):
    caps = ["start"] + [f"step {i}" for i in range(1, len(frames) - 1)] + [f"-> {job.kwargs['target']}"]
    return list(zip(frames, caps)), (list(zip(std, caps)) if std else None)


TABS = [
    Tab(
        "Generate",
        synth.generate,
        "generate",
        "Start from a random image drawn from the class's Gaussian seed, then change it (inside an L2 ball) until "
        "the classifier is sure it shows the class.",
        generate_inputs,
        generate_outputs,
        prepare_generate,
        show_generate,
        preview=lambda job, x: [to_pil(t) for t in x],
        classes={"label": False},
        examples={
            "cifar10": [dict(label="cat", n=4, seed=0), dict(label="ship", n=4, seed=0)],
            "imagenet": [dict(label="dog", n=4, seed=0), dict(label="insect", n=4, seed=0)],
        },
    ),
    Tab(
        "Inpaint",
        synth.inpaint,
        "inpaint",
        "Upload a photo and paint over the region to fill (or upload a mask, white = fill). Ours fills the hole "
        "with patches of the photo's own texture, at its resolution, then PGD makes it look like the class with the "
        "rest of the photo held fixed and adds its change to that fill; "
        "the paper starts from the image's mean colour and penalises changes outside. Pixels outside the mask are "
        "returned unchanged.",
        lambda: masked_inputs("Photo - paint the region to fill", "#ff00ff", inpaint_options),
        inpaint_outputs,
        prepare_inpaint,
        lambda job, out, std: (job.context["masked"], out, std),
        preview=whole_preview,
        classes={"label": True},
        slider=True,
    ),
    Tab(
        "Translate",
        synth.translate,
        "translate",
        "Push a photo toward another class or domain inside a large L2 ball: pick the model "
        "`horse2zebra-resnet18-half-l2-eps3` and the target `zebra` (or `horse`) for the paper's horse <-> zebra, "
        "or any class of an ImageNet or CIFAR-10 model. The change is pasted onto the photo at its own size.",
        lambda: photo_and_class("Photo", "Target class / domain", "dog"),
        row_of_pair,
        prepare_photo_to_class,
        both,
        preview=first_resized,
        classes={"target": False},
        examples={
            "cifar10": [dict(image="cat.png", target="dog"), dict(image="horse.png", target="deer")],
            "imagenet": [
                dict(image="photos/chelsea.jpg", target="dog"),
                dict(image="photos/coffee.jpg", target="insect"),
            ],
            "horse2zebra": [
                dict(image="horse2zebra/horse.jpg", target="zebra"),
                dict(image="horse2zebra/zebra.jpg", target="horse"),
            ],
        },
        slider=True,
    ),
    Tab(
        "Super-resolve",
        synth.super_resolve,
        "super_resolve",
        "Upsample a small photo, then strengthen its class inside a small L2 ball. Ours starts from back-projected "
        "bicubic and keeps the result consistent with the input (it downsamples back to it); the paper starts from "
        "nearest. Give the high-resolution original to see PSNR of both.",
        super_resolve_inputs,
        super_resolve_outputs,
        prepare_super_resolve,
        show_super_resolve,
        examples={
            "cifar10": [dict(image="ship_8px.png", factor=4, start="bicubic", original="ship.png")],
            "imagenet": [
                dict(image="photos/chelsea_small.png", factor=4, start="preset", original="photos/chelsea.jpg")
            ],
        },
        slider=True,
    ),
    Tab(
        "Sketch -> image",
        synth.sketch_to_image,
        "sketch",
        "Draw (or upload) a rough sketch; PGD turns it into something the classifier sees as the class.",
        sketch_inputs,
        row_of_pair,
        prepare_sketch,
        both,
        preview=first_resized,
        classes={"label": True},
        examples={
            "cifar10": [
                dict(uploaded="sketch_ship.png", label="ship"),
                dict(uploaded="sketch_car.png", label="automobile"),
            ],
            "imagenet": [
                dict(uploaded="sketch_car.png", label="sports car"),
                dict(uploaded="sketch_ship.png", label="lifeboat"),
            ],
        },
    ),
    Tab(
        "Paint features",
        synth.paint_features,
        "paint",
        "Paint a region, pick one of the classifier's penultimate features (the ones most active there are "
        "suggested, with a preview of what each adds) and PGD paints it in. *Stack* makes the result the next "
        "edit's photo.",
        paint_inputs,
        lambda: pair(type="pil"),
        prepare_paint,
        both,
        extra=add_feature_suggestions,
        slider=True,
    ),
    Tab(
        "Visualize a class",
        synth.visualize,
        "visualize",
        "Large-eps targeted PGD from any image toward a class (the paper's Fig. 2): a robust model's gradient paints "
        "the class in; a standard model's barely changes the image.",
        lambda: photo_and_class("Start image", "Target class", "frog", height=260),
        lambda: galleries(5, 200, robust="Robust model: start -> target"),
        prepare_photo_to_class,
        show_visualize,
        classes={"target": False},
        examples={
            "cifar10": [dict(image="cat.png", target="frog"), dict(image="ship.png", target="airplane")],
            "imagenet": [
                dict(image="photos/chelsea.jpg", target="primate"),
                dict(image="photos/astronaut.jpg", target="dog"),
            ],
            "horse2zebra": [dict(image="horse2zebra/horse.jpg", target="zebra")],
        },
    ),
]


# --------------------------------------------------------------------------------------------- the runner
class Cancelled(Exception):
    pass


@gpu
def run_task(fn, *args, pixel_steps: int = 0, **kwargs):
    """fn(*args, **kwargs), on the GPU where there is one (on ZeroGPU for `gpu_seconds(pixel_steps)`)."""
    return fn(*args, **kwargs)


def streamed(work, progress):
    """Run `work(callback)` in a thread; yield ('step', x) after each PGD step, then ('done', result). Closing
    the generator (Gradio's cancel, the Stop button) stops the PGD loop at its next step."""
    q: queue.Queue = queue.Queue()
    stop = threading.Event()

    def callback(step):
        if stop.is_set():
            raise Cancelled
        if step.i % 5 == 0 or step.i == step.steps:  # the server's threads share the 2 cores and the GIL with PGD
            progress((step.i, step.steps), desc="PGD steps")
            q.put(("step", step))

    def work_in_thread():
        try:
            q.put(("done", work(callback)))
        except Cancelled:
            q.put(("cancelled", None))
        except (ValueError, synth.ImageError, synth.ModelLoadError) as e:
            q.put(("error", str(e)))
        except Exception as e:  # noqa: BLE001 - show, don't crash the worker
            q.put(("error", f"{type(e).__name__}: {e}"))

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work_in_thread,), daemon=True)
    thread.start()  # (copy_context keeps gr.Progress working in the thread)
    try:
        while True:
            kind, value = q.get()
            if kind == "error":
                raise gr.Error(value)
            if kind == "cancelled":
                return
            yield kind, value
            if kind == "done":
                return
    finally:
        stop.set()


def run(tab: Tab, model_name, preset, compare, steps, eps, step_size, progress, **inputs):
    """Every tab's handler: prepare the job from the tab's `inputs`, check its size, run the task with the preset
    and the Advanced overrides (None: the preset's value), then on the standard twin when asked. Yields the tab's
    output values, or None when there is nothing new to show (every 5 steps: Stop can end the run there). A preview
    image is drawn at most PREVIEWS times a run: each is encoded and sent while PGD runs on the same cores."""
    model = get_model(model_name)
    job = check(lambda values: tab.prepare(model, **values), inputs)
    options = dict(preset=preset or None, steps=number(steps, int), eps=number(eps), step_size=number(step_size))
    twin = twin_of(model) if compare else None
    models = [model] if twin is None else [model, twin]
    pixel_steps = check_work(tab, model, job, options, len(models))
    results, files = [], {}  # files: what as_files wrote in this run
    for m in models:
        work = lambda cb, m=m: run_task(  # noqa: E731
            tab.task, m, *job.args, callback=cb, pixel_steps=pixel_steps, **job.kwargs, **options
        )
        for kind, value in streamed(work, progress):
            if kind == "done":
                results.append(value)
            else:
                due = value.i % max(5, value.steps // PREVIEWS) == 0 or value.i == value.steps
                image = tab.preview(job, value.x) if tab.preview and m is model and due else None
                preview = image is not None and as_files(tab.show(job, image, None), True, files)
                yield (*preview, gr.skip()) if preview and tab.slider else preview or None
    if len(results) == len(models):  # (fewer: stopped)
        shown = tab.show(job, results[0], results[1] if twin else None)
        yield as_files((*shown, (job.context["before"], results[0])) if tab.slider else shown, False, files)


def as_files(values, preview: bool = False, written: dict | None = None):
    """`values` with PIL images replaced by the paths of files the app writes, once per image (the result also
    stands in the before/after slider): results over FAST_PNG_PIXELS as PNGs at zlib level 1, previews as JPEGs.
    Gradio would write each as a PNG at the default level, once per output it stands in: 2.2 s for a 12 MP photo
    (0.6 at level 1, lossless) and 130 ms for a 768 px preview (JPEG: 1 ms), on the cores PGD is running on
    (`benchmarks/bench_app.py`). `written` keeps the files of one run, so that an image shown with every preview
    (inpaint's masked input) is written once. Files older than an hour are removed as results are written."""
    written = {} if written is None else written

    def walk(v):
        if isinstance(v, Image.Image) and (preview or v.width * v.height > FAST_PNG_PIXELS):
            key = id(v), preview
            if key not in written:  # (the image is kept with its path: its id is not reused while `written` lives)
                written[key] = v, str(RESULTS_DIR / f"{uuid.uuid4().hex}.{'jpg' if preview else 'png'}")
                v.save(written[key][1], **(dict(quality=90) if preview else dict(compress_level=1)))
            return written[key][1]
        return type(v)(walk(x) for x in v) if isinstance(v, (list, tuple)) else v

    if not preview:
        for old in RESULTS_DIR.iterdir():
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink(missing_ok=True)
    return walk(values)


def check_work(tab: Tab, model, job: Job, options: dict, n_models: int) -> int:
    """Refuse a request whose PGD work (model-input pixels x steps x models) is over the app's bound, before it runs;
    the settings are checked on the way. Returns the work of one model's run."""
    s = check(lambda o: synth.settings(model, tab.task.__name__, factor=job.kwargs.get("factor"), **o), options)
    one = job.images * model.input_size**2 * s.steps
    work = one * n_models
    limit = APP_MAX_WORK * (GPU_WORK_FACTOR if torch.cuda.is_available() else 1)
    if work > limit:
        raise gr.Error(
            f"this request is {work / 1e6:.0f} M pixel-steps of PGD ({job.images} image(s) of "
            f"{model.input_size}x{model.input_size} x {s.steps} steps x {n_models} model(s)); one request may use "
            f"{limit / 1e6:.0f} M here: use fewer steps, a smaller image or factor, or untick the standard model"
        )
    return one


def number(value, kind=float):
    """An Advanced field's value: None (empty: the preset's value) or a number of `kind`."""
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"expected a number, got {value!r}") from None


def twin_of(model):
    name = synth.standard_twin(model)
    if name is None:
        return None
    try:
        return get_model(name)
    except gr.Error:
        gr.Warning(f"standard twin {name} is not available (offline?); showing the robust model only")
        return None


CONTROL_DOCS = {  # the inputs every tab shares, in the API's order around the tab's own
    "model_name": "the classifier, a name from `python -m synth models` (the embedded models work offline)",
    "preset": "ours (default: measured improvements), paper (the authors' method) or fast (fewer steps)",
    "compare": "also run the standard (non-robust) twin of the model, for comparison",
    "steps": "PGD steps (empty: the preset's)",
    "eps": "L2 radius of the change, in [0,1]-pixel units (empty: the preset's)",
    "step_size": "PGD step length (empty: the preset's)",
}


def handler(tab: Tab, describe: dict[str, str], n_outputs: int):
    """`run` for `tab`, with a signature naming its inputs (`describe`: name -> what it is, in that order; Gradio's
    API page, gradio_client and the MCP tool use the names and descriptions; every input has a default, so a call
    may leave any out)."""
    names = list(describe)
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names]
    progress = inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress())
    signature = inspect.Signature([*params, progress])

    def fn(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        for values in run(tab, **bound.arguments):
            yield [gr.skip()] * n_outputs if values is None else values

    fn.__signature__ = signature
    fn.__name__ = fn.__qualname__ = tab.api_name
    fn.__doc__ = tab.doc + "\n\nArgs:\n" + "".join(f"    {n}: {d}\n" for n, d in describe.items())
    return fn


# --------------------------------------------------------------------------------------------- layout
def advanced_fields():
    """The Advanced panel: the values the preset uses for this tab's task on the chosen model (filled when the page
    loads and whenever the model or preset changes); a number edited here overrides the preset's. Empty (as
    through the API, where they default to None) means the preset's value."""
    with gr.Accordion("Advanced: the preset's PGD settings for this model - edit to override", open=False), gr.Row():
        return [
            numeric(gr.Number(label="steps", value=None, precision=0, minimum=1, maximum=2000)),
            numeric(gr.Number(label="eps (L2 radius, [0,1] pixels)", value=None, minimum=0, maximum=500)),
            numeric(gr.Number(label="step size", value=None, minimum=0, maximum=100)),
        ]


def advanced_values(model_name, preset, task) -> list:
    """The steps, eps and step size `task` uses on the model under `preset` (4 significant digits: what is shown is
    what runs); None each when the model is not at hand (the preset's value is used then)."""
    try:
        s = synth.settings(synth.load_model(model_name), task, preset)
    except (synth.ModelLoadError, ValueError):
        return [None] * 3
    return [s.steps, float(f"{s.eps:.4g}"), float(f"{s.step_size:.4g}")]


def build_tab(tab: Tab, model, preset, compare):
    """The tab's components and its event; returns (class pickers, advanced fields) for the shared controls."""
    gr.Markdown(tab.doc)
    inputs = tab.inputs()
    advanced = advanced_fields()
    with gr.Row():
        go, stop = gr.Button(tab.title, variant="primary", scale=4), gr.Button("Stop", scale=1)
    outputs = tab.outputs()
    if tab.slider:
        outputs.append(gr.ImageSlider(label="Before / after (robust model)", type="pil", format="png"))
    # a link that reopens the page as it is (inputs and results) while the server keeps the files: docs/app.md, Share
    gr.DeepLinkButton("Share a link to this result", copied_value="Link copied", size="md")
    described = {k: ", ".join(filter(None, [c.label, getattr(c, "info", None)])) for k, c in inputs.items()}
    fn = handler(tab, {"model_name": CONTROL_DOCS["model_name"], **described, **CONTROL_DOCS}, len(outputs))
    event = go.click(
        fn, [model, *inputs.values(), preset, compare, *advanced], outputs, api_name=tab.api_name, concurrency_id="pgd"
    )
    stop.click(None, cancels=[event], api_visibility="private")
    examples = add_examples(tab, inputs, outputs, fn)
    if tab.extra:
        tab.extra(model, inputs, outputs)
    return {inputs[k]: blank for k, blank in tab.classes.items()}, advanced, examples


def add_examples(tab: Tab, inputs: dict, outputs: list, fn) -> list[tuple]:
    """Each family's examples twice: cached, on the family's embedded model (shown while that model is chosen), and
    filling the inputs only (shown with the family's other models). Returns [(column, family, model or None)]."""
    sets = []
    # the examples run the robust model alone: the standard model's outputs stay out (an empty output written to
    # Gradio's example cache cannot be read back from it)
    keep = [k for k, o in enumerate(outputs) if o.label != STANDARD]
    for fam, rows in tab.examples.items():
        names = list(rows[0])
        values = [[str(EXAMPLES / v) if str(v).endswith((".png", ".jpg")) else v for v in row.values()] for row in rows]
        for on in (EXAMPLE_MODELS[fam], None):

            def run_example(*values, on=on, names=names):
                for shown in fn(**dict(zip(names, values)), model_name=on, preset="fast"):
                    yield [shown[k] for k in keep]

            with gr.Column(visible=shows_examples(start_model(), fam, on)) as column:
                table = gr.Examples(
                    values,
                    [inputs[k] for k in names],
                    [outputs[k] for k in keep],
                    fn=run_example if on else None,
                    label=f"Examples ({on}, fast preset; cached)" if on else f"Examples (click, then {tab.title})",
                    cache_examples=on is not None,
                    cache_mode="lazy",  # run on the first click, then served from the cache
                )
            for name, props in zip(names, table.dataset.component_props):
                if "choices" in props:  # the table shows a class by its choice: the first model's may lack it
                    props["choices"] = [(row[name], row[name]) for row in rows]
            sets.append((column, fam, on))
    return sets


def family(model_name: str) -> str:
    """A registered model's example family: the data set its name begins with (imagenet: Hub and 64 px models)."""
    return next((f for f in EXAMPLE_MODELS if str(model_name).startswith(f)), "imagenet")


def shows_examples(model_name: str, fam: str, cached_on: str | None) -> bool:
    """Whether the examples of `fam` cached on `cached_on` (None: the ones that fill the inputs) show for a model."""
    return family(model_name) == fam and (model_name == EXAMPLE_MODELS[fam]) == (cached_on is not None)


def build_demo() -> gr.Blocks:
    # uploads and results are files in Gradio's cache, served to the browser: keep an hour's worth, not all of them
    with gr.Blocks(title="Robust-classifier image synthesis", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# Image synthesis with a single robust classifier\n"
            "Every tab runs the same primitive - projected gradient descent on the *input image* against "
            "an adversarially robust classifier (Santurkar et al., 2019) - with a different objective, "
            "start and constraint. Tick *standard model* to see why robustness matters."
        )
        with gr.Row():
            model = gr.Dropdown(
                list(MODELS),
                value=start_model(),
                label="Model",
                info="embedded models work offline (64 px ImageNet classes, horse/zebra, CIFAR-10); "
                "imagenet-* models download from the Hub",
            )
            preset = gr.Radio(
                list(synth.PRESETS),
                value="ours",
                label="Preset",
                info="ours: measured improvements (docs/results.md); paper: the authors' method; fast: paper, "
                "fewer steps",
            )
            compare = gr.Checkbox(label="Also run the standard (non-robust) model", value=False)
        pickers, advanced, examples = {}, {}, []
        for tab in TABS:
            with gr.Tab(tab.title):
                tab_pickers, advanced[tab.task.__name__], tab_examples = build_tab(tab, model, preset, compare)
                pickers.update(tab_pickers)
                examples += tab_examples
        follow_model(demo, model, preset, pickers, advanced, examples)
    # all PGD events share one queue (concurrency_id "pgd"): one job at a time on a 2-vCPU box, a bounded line
    demo.queue(default_concurrency_limit=1, max_size=16)
    return demo


def follow_model(demo, model, preset, pickers: dict, advanced: dict, examples: list):
    """Class pickers and examples (`add_examples`) follow the model; every tab's Advanced fields (`advanced`: task
    name -> fields) show what the model and preset will use."""

    def refresh_examples(model_name):
        return [gr.Column(visible=shows_examples(model_name, fam, on)) for _, fam, on in examples]

    def refresh_classes(model_name):
        choices = class_choices(model_name)
        return [
            gr.Dropdown(choices=([""] if blank else []) + choices, value="" if blank else choices[0][1])
            for blank in pickers.values()
        ]

    def refresh_settings(model_name, preset_name):
        try:  # once, not once per tab: a failed load (a Hub model offline) is not cached and may wait on the network
            synth.load_model(model_name)
        except synth.ModelLoadError:
            return [None] * sum(len(fs) for fs in advanced.values())
        return [v for task in advanced for v in advanced_values(model_name, preset_name, task)]

    fields = [f for fs in advanced.values() for f in fs]
    model.change(refresh_classes, model, list(pickers), api_visibility="private")
    model.change(refresh_examples, model, [column for column, _, _ in examples], api_visibility="private")
    for trigger in (demo.load, model.change, preset.change):
        trigger(refresh_settings, [model, preset], fields, api_visibility="private")


@functools.cache
def start_model() -> str:
    """The Model dropdown's first value (and the API's default): the ImageNet ResNet-50 when its file is in the Hub
    cache (a Space's preload_from_hub puts it there) or the Hub answers; else the embedded model. Decided once, when
    the demo is first built; with HF_HUB_OFFLINE=1 only the cache is looked at."""
    return HUB_MODEL if synth.models.available(HUB_MODEL) else DEFAULT_MODEL


@functools.cache
def get_demo() -> gr.Blocks:
    return build_demo()


def __getattr__(name: str):
    """`app.demo` (what Gradio and Spaces look for) is built on first use: importing app probes nothing."""
    if name == "demo":
        return get_demo()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--share", action="store_true", help="create a public share link")
    ap.add_argument("--host", default=None, help="server name (0.0.0.0 to listen on all interfaces)")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    get_demo().launch(
        share=args.share, server_name=args.host, server_port=args.port, max_file_size="25mb", mcp_server=True
    )


if __name__ == "__main__":
    main()
