"""The tabs: each a `Tab` in TABS - its inputs (by the API's parameter names), its outputs, how the inputs become a
call of its `synth` task (`prepare`) and how a result is shown (`show`). The runner (`app.runner.run`) does the rest
for every tab."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gradio as gr
import numpy as np
import torch
from PIL import Image

import synth
import synth.metrics
import synth.starts
from synth.images import to_pil

from .errors import refused
from .models import get_model
from .runner import run_task
from .widgets import as_rgb, check, class_dropdown, editor_parts, image_input, numeric, photo_editor

PREVIEW_SIDE = 768  # previews while PGD runs are at most this many px long
STANDARD = "Standard model"  # the label of every tab's output from the standard twin


@dataclass
class Shown:
    """What a tab's `show` and previews need besides the results, set by its `prepare`."""

    size: tuple[int, int] | None = None  # the photo's (width, height): previews keep its aspect
    before: Image.Image | None = None  # the before/after slider's "before"
    masked: Image.Image | None = None  # inpaint: the photo with its hole greyed
    captions: list[str] = field(default_factory=list)  # generate: a caption per sample
    info: str = ""  # generate: the line above the samples
    original: Image.Image | None = None  # super-resolve: the user's high-resolution original


@dataclass
class Job:
    """One call of a tab's synth task: task(model, *args, **kwargs); `shown` is what the tab's `show` needs and
    `plan` (set by the runner, `synth.plan`) what the call will do."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    shown: Shown = field(default_factory=Shown)
    plan: synth.Plan | None = None


def pair(**kw):
    """The robust model's result beside the standard model's."""
    return [gr.Image(label="Robust model", format="png", **kw), gr.Image(label=STANDARD, format="png")]


def row_of_pair():
    with gr.Row():
        return pair()


def both(job, out, std):
    return out, std


@dataclass(kw_only=True)
class Tab:
    title: str
    task: Callable  # the synth task
    api_name: str
    doc: str  # shown above the tab and as the API endpoint's description
    inputs: Callable[[], dict]  # builds the tab's input components: {API parameter name: component}
    prepare: Callable[..., Job]  # (model, **input values) -> Job; raises gr.Error on bad input
    outputs: Callable[[], list] = row_of_pair  # builds its output components
    show: Callable[..., tuple] = both  # (job, result, standard result or None) -> output values
    preview: Callable | None = None  # (job, current PGD iterate) -> a result `show` can show, while PGD runs
    classes: dict = field(default_factory=dict)  # class-picker inputs: {name: blank allowed}
    examples: dict = field(default_factory=dict)  # {model family: [{input name: value}]}, run with the fast preset
    extra: Callable | None = None  # (model dropdown, inputs, outputs): wires the tab's own further events
    slider: Callable[[Job], Image.Image] | None = None  # the "before" of a before/after slider of the result


def first_resized(job, x):
    """The first image of the PGD batch, at the photo's aspect and at most PREVIEW_SIDE px: a preview is encoded and
    sent while PGD runs, and at a 12 MP photo's size that takes seconds each time."""
    w, h = job.shown.size
    scale = min(1.0, PREVIEW_SIDE / max(w, h))
    return to_pil(x[0]).resize((max(1, round(w * scale)), max(1, round(h * scale))))


def whole_preview(job, x):
    """Masked tasks preview only a photo worked whole: a batch of crops is not the photo (None: no preview)."""
    return first_resized(job, x) if job.plan.whole[0] else None


def photo_before(job):
    return job.shown.before


def galleries(columns, height, robust="Robust model"):
    return [
        gr.Gallery(label=robust, format="png", columns=columns, height=height),
        gr.Gallery(label=STANDARD, format="png", columns=columns, height=height),
    ]


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
        raise refused("upload a photo first")
    if not target:
        raise refused("pick a target class")
    return Job((photo,), dict(target=target), Shown(size=photo.size, before=photo))


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
    return Job(kwargs=dict(label=label, n=n, seed=seed), shown=Shown(captions=caps, info=info))


def show_generate(job, out, std):
    caps = job.shown.captions
    return list(zip(out, caps)), (list(zip(std, caps)) if std else None), job.shown.info


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
    kwargs = dict(label=label or None, fill=None if fill in (None, "preset") else fill)
    return Job((photo, mask), kwargs, Shown(size=photo.size, masked=Image.fromarray(masked), before=photo))


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
        raise refused("upload a small photo first")
    kwargs = dict(factor=check(int, factor), start=None if start in (None, "preset") else start)
    return Job((small,), kwargs, Shown(original=as_rgb(original)))


def bicubic(job) -> Image.Image:
    """The bicubic upscale shown beside the result and in the slider: made on first use, once the runner has sized
    the request (`synth.plan`), so an output too large is refused before it is made."""
    if job.shown.before is None:
        (small,), f = job.args, job.kwargs["factor"]
        job.shown.before = small.resize((small.width * f, small.height * f), Image.Resampling.BICUBIC)
    return job.shown.before


def show_super_resolve(job, out, std):
    bicubic_image, hr = bicubic(job), job.shown.original
    report = ""
    if hr is not None and out is not None:
        report = (
            f"PSNR against your original: bicubic **{psnr(bicubic_image, hr):.2f} dB**, ours **{psnr(out, hr):.2f} dB**"
        )
    return bicubic_image, out, report, std


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
        raise refused("draw something (or upload a drawing) first")
    return Job((img,), dict(label=label or None), Shown(size=img.size))


# paint features: its inputs, outputs and how they become a call
def paint_inputs():
    return masked_inputs(
        "Photo - paint the region",
        "#00ffff",
        feature_picker,
    )


def feature_picker():
    """The feature index, with the Suggest button and its previews right under it (wired by add_feature_suggestions:
    they are found on the dropdown, as `suggest` and `thumbs`)."""
    feature = gr.Dropdown([], value=None, label="Feature index", allow_custom_value=True)
    feature.suggest = gr.Button("Suggest features")
    feature.thumbs = gr.Gallery(label="What each suggested feature adds", format="png", columns=6, height=160)
    return dict(feature_k=feature)


def prepare_paint(model, editor, uploaded_mask, feature_k):
    photo, mask = editor_parts(editor, uploaded_mask)
    if feature_k in (None, ""):
        raise refused("choose a feature (click 'Suggest features' or type an index)")
    try:
        feature = int(feature_k)
    except (TypeError, ValueError):
        raise refused(f"feature must be an integer index, got {feature_k!r}") from None
    return Job((photo, mask), dict(feature=feature), Shown(before=photo))


def do_suggest(model_name, editor, uploaded_mask):
    model = get_model(model_name)
    photo, mask = editor_parts(editor, uploaded_mask)
    top = synth.top_features(model, photo, mask, k=6)
    work = synth.plan(synth.paint_features, model, photo, mask, top[0][0], preset="fast", steps=15).pixel_steps
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
        raise refused("nothing to stack yet: run a paint first")
    return {"background": result, "layers": [], "composite": result}


def add_feature_suggestions(model, inputs, outputs):
    suggest, thumbs = inputs["feature_k"].suggest, inputs["feature_k"].thumbs
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


def to_targets(*rows) -> list[dict]:
    """Examples of a photo -> class tab: (example file, target class) rows."""
    return [dict(image=image, target=target) for image, target in rows]


TABS = [
    Tab(
        title="Generate",
        task=synth.generate,
        api_name="generate",
        doc="Start from a random image drawn from the class's Gaussian seed, then change it (inside an L2 ball) until "
        "the classifier is sure it shows the class.",
        inputs=generate_inputs,
        outputs=generate_outputs,
        prepare=prepare_generate,
        show=show_generate,
        preview=lambda job, x: [to_pil(t) for t in x],
        classes={"label": False},
        examples={
            "cifar10": [dict(label="cat", n=4, seed=0), dict(label="ship", n=4, seed=0)],
            "imagenet": [dict(label="dog", n=4, seed=0), dict(label="insect", n=4, seed=0)],
        },
    ),
    Tab(
        title="Inpaint",
        task=synth.inpaint,
        api_name="inpaint",
        doc="Upload a photo and paint over the region to fill (or upload a mask, white = fill). Ours fills the hole "
        "with patches of the photo's own texture, at its resolution, then PGD makes it look like the class with the "
        "rest of the photo held fixed and adds its change to that fill; "
        "the paper starts from the image's mean colour and penalises changes outside. Pixels outside the mask are "
        "returned unchanged.",
        inputs=lambda: masked_inputs("Photo - paint the region to fill", "#ff00ff", inpaint_options),
        outputs=inpaint_outputs,
        prepare=prepare_inpaint,
        show=lambda job, out, std: (job.shown.masked, out, std),
        preview=whole_preview,
        classes={"label": True},
        slider=photo_before,
    ),
    Tab(
        title="Translate",
        task=synth.translate,
        api_name="translate",
        doc="Push a photo toward another class or domain inside a large L2 ball: pick the model "
        "`horse2zebra-resnet18-half-l2-eps3` and the target `zebra` (or `horse`) for the paper's horse <-> zebra, "
        "or any class of an ImageNet or CIFAR-10 model. The change is pasted onto the photo at its own size.",
        inputs=lambda: photo_and_class("Photo", "Target class / domain", "dog"),
        prepare=prepare_photo_to_class,
        preview=first_resized,
        classes={"target": False},
        examples={
            "cifar10": to_targets(("cat.png", "dog"), ("horse.png", "deer")),
            "imagenet": to_targets(("photos/chelsea.jpg", "dog"), ("photos/coffee.jpg", "insect")),
            "horse2zebra": to_targets(("horse2zebra/horse.jpg", "zebra"), ("horse2zebra/zebra.jpg", "horse")),
        },
        slider=photo_before,
    ),
    Tab(
        title="Super-resolve",
        task=synth.super_resolve,
        api_name="super_resolve",
        doc="Upsample a small photo, then strengthen its class inside a small L2 ball. Ours starts from back-projected "
        "bicubic and keeps the result consistent with the input (it downsamples back to it); the paper starts from "
        "nearest. Give the high-resolution original to see PSNR of both.",
        inputs=super_resolve_inputs,
        outputs=super_resolve_outputs,
        prepare=prepare_super_resolve,
        show=show_super_resolve,
        examples={
            "cifar10": [dict(image="ship_8px.png", factor=4, start="bicubic", original="ship.png")],
            "imagenet": [
                dict(image="photos/chelsea_small.png", factor=4, start="preset", original="photos/chelsea.jpg")
            ],
        },
        slider=bicubic,
    ),
    Tab(
        title="Sketch -> image",
        task=synth.sketch_to_image,
        api_name="sketch",
        doc="Draw (or upload) a rough sketch; PGD turns it into something the classifier sees as the class.",
        inputs=sketch_inputs,
        prepare=prepare_sketch,
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
        title="Paint features",
        task=synth.paint_features,
        api_name="paint",
        doc="Paint a region, pick one of the classifier's penultimate features (the ones most active there are "
        "suggested, with a preview of what each adds) and PGD paints it in. *Stack* makes the result the next "
        "edit's photo.",
        inputs=paint_inputs,
        outputs=lambda: pair(type="pil", interactive=False),  # (read by Stack, so Gradio would offer an upload)
        prepare=prepare_paint,
        extra=add_feature_suggestions,
        slider=photo_before,
    ),
    Tab(
        title="Visualize a class",
        task=synth.visualize,
        api_name="visualize",
        doc="Large-eps targeted PGD from any image toward a class (the paper's Fig. 2): a robust model's gradient "
        "paints the class in; a standard model's barely changes the image.",
        inputs=lambda: photo_and_class("Start image", "Target class", "frog", height=260),
        outputs=lambda: galleries(5, 200, robust="Robust model: start -> target"),
        prepare=prepare_photo_to_class,
        show=show_visualize,
        classes={"target": False},
        examples={
            "cifar10": to_targets(("cat.png", "frog"), ("ship.png", "airplane")),
            "imagenet": to_targets(("photos/chelsea.jpg", "primate"), ("photos/astronaut.jpg", "dog")),
            "horse2zebra": to_targets(("horse2zebra/horse.jpg", "zebra")),
        },
    ),
]
