"""Robust-classifier image synthesis: a Gradio suite, one tab per task (UI only; the work is in `synth`).

python app.py [--share] [--host 0.0.0.0] [--port 7860]
"""

from __future__ import annotations

import argparse
import contextvars
import queue
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

import synth
import synth.evaluate
import synth.starts
from synth.models import DEFAULT_MODEL, PRESETS

try:  # ZeroGPU Spaces: GPU-bound functions get @spaces.GPU; elsewhere a no-op
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:

    def gpu(fn):
        return fn


EXAMPLES = Path(__file__).parent / "examples"
MODELS = list(PRESETS)  # embedded CIFAR-10 models first, then the madrylab ImageNet models (Hub, first use)
STANDARD_NOTE = "Standard (non-robust) twin, same task and settings: its gradients are noise, not features."
MAX_SIDE = 4096  # larger uploads are downscaled before work (the model sees its own input size anyway)


# --------------------------------------------------------------------------------------------- helpers
class Cancelled(Exception):
    pass


def readable(component):
    """`component` (an image input) whose uploads fail with a clear message: Gradio opens an upload with PIL
    before our code runs, so a non-image file would otherwise end in its generic 'error' with no reason given.
    (Wraps the instance's preprocess; a subclass would make Gradio write a .pyi stub next to this file.)"""
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
            name = getattr(payload, "orig_name", None) or "the upload"
            raise gr.Error(
                f"{name} is not an image I can read ({e.__class__.__name__}): upload a PNG, JPEG, WebP or BMP"
            ) from None

    component.preprocess = checked
    return component


def ImageInput(**kw):  # noqa: N802 - used like the component it returns
    return readable(gr.Image(**kw))


def ImageEditorInput(**kw):  # noqa: N802
    return readable(gr.ImageEditor(**kw))


def get_model(name: str):
    try:
        model = synth.load_model(name or DEFAULT_MODEL)
    except synth.ModelLoadError as e:
        raise gr.Error(f"{e}", duration=None) from None
    if torch.cuda.is_available():
        model.cuda()
    return model


def twin_of(model):
    name = synth.standard_twin(model)
    if name is None:
        return None
    try:
        return get_model(name)
    except gr.Error:
        gr.Warning(f"standard twin {name} is not available (offline?); showing the robust model only")
        return None


def as_rgb(img) -> Image.Image | None:
    if img is None:
        return None
    try:
        im = synth.load_image(img)
    except synth.ImageError as e:
        raise gr.Error(str(e)) from None
    if max(im.size) > MAX_SIDE:
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        gr.Warning(f"large image downscaled to {im.width}x{im.height}")
    return im


def editor_parts(value, uploaded_mask=None):
    """(photo, mask) from an ImageEditor value and an optional uploaded mask (which wins)."""
    if not value or value.get("background") is None:
        raise gr.Error("upload a photo first")
    photo = as_rgb(value["background"])
    if uploaded_mask is not None:
        mask = (
            Image.fromarray(np.asarray(uploaded_mask)) if not isinstance(uploaded_mask, Image.Image) else uploaded_mask
        )
        mask = mask.convert("L").resize(photo.size, Image.Resampling.NEAREST)
    else:
        mask = synth.mask_from_layers(value.get("layers"), photo.size)
    if not np.asarray(mask).any():
        raise gr.Error("the mask is empty: paint the region with the brush (or upload a mask)")
    return photo, mask


def params(steps, eps, step_size):
    out = {}
    for k, v in (("steps", steps), ("eps", eps), ("step_size", step_size)):
        if v not in (None, "", 0):
            out[k] = int(v) if k == "steps" else float(v)
    return out


def streamed(work, progress, snapshot=None, every: int = 5):
    """Run `work(callback)` in a thread; yield ('step', image) snapshots while it runs, then ('done', result).
    Closing the generator (Gradio's cancel) stops the PGD loop at its next step."""
    q: queue.Queue = queue.Queue()
    stop = threading.Event()

    def cb(step):
        if stop.is_set():
            raise Cancelled
        progress((step.i, step.steps), desc="PGD steps")
        if snapshot and (step.i % every == 0 or step.i == step.steps):
            q.put(("step", snapshot(step.x)))

    def run():
        try:
            q.put(("done", work(cb)))
        except Cancelled:
            q.put(("cancelled", None))
        except (ValueError, synth.ImageError, synth.ModelLoadError) as e:
            q.put(("error", str(e)))
        except Exception as e:  # noqa: BLE001 - show, don't crash the worker
            q.put(("error", f"{type(e).__name__}: {e}"))

    t = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)  # keeps gr.Progress
    t.start()
    try:
        while True:
            kind, val = q.get()
            if kind == "error":
                raise gr.Error(val)
            if kind == "cancelled":
                return
            yield kind, val
            if kind == "done":
                return
    finally:
        stop.set()


def first(x):
    return synth.images.to_pil(x[0])


@gpu
def run_task(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR of `a` against `b` resized to `a`'s size (synth.evaluate.psnr)."""
    return float(synth.evaluate.psnr(synth.images.to_tensor(a), synth.images.to_tensor(b.resize(a.size))))


def class_choices(model_name):
    try:
        names = synth.load_model(model_name).class_names
    except synth.ModelLoadError:
        names = synth.load_model(DEFAULT_MODEL).class_names
    return names


# --------------------------------------------------------------------------------------------- tasks
def do_generate(
    model_name, label, n, seed, preset, compare, steps, eps, step_size, progress=gr.Progress(track_tqdm=True)
):
    model = get_model(model_name)
    n, seed = int(n), int(seed)
    kw = dict(label=label or None, n=n, seed=seed, preset=preset, **params(steps, eps, step_size))
    if label:
        try:
            model.class_index(label)
        except ValueError as e:
            raise gr.Error(str(e)) from None
    names = synth.tasks.generation_classes(model, label or None, n, seed)
    caps = [f"{c} #{k} (seed {seed})" for k, c in enumerate(names)]
    if model.seed_bank is None:
        gr.Warning("this model ships no class seeds: starting from the generic seed (grey + coarse noise)")
    gallery = []
    for _kind, val in streamed(
        lambda cb: run_task(synth.generate, model, callback=cb, **kw),
        progress,
        snapshot=lambda x: [synth.images.to_pil(t) for t in x],
    ):
        gallery = list(zip(val, caps))
        yield gallery, None, f"seed **{seed}** - {n} sample(s) of {', '.join(sorted(set(names)))}"
    std = None
    twin = twin_of(model) if compare else None
    if twin is not None:
        std = list(zip(run_task(synth.generate, twin, **kw), caps))
    yield gallery, std, f"seed **{seed}** - {n} sample(s) of {', '.join(sorted(set(names)))}"


def do_inpaint(
    model_name,
    editor,
    uploaded_mask,
    label,
    preset,
    compare,
    steps,
    eps,
    step_size,
    progress=gr.Progress(track_tqdm=True),
):
    model = get_model(model_name)
    photo, mask = editor_parts(editor, uploaded_mask)
    m = np.asarray(mask)[..., None] > 0
    shown = Image.fromarray(np.where(m, 128, np.asarray(photo)).astype(np.uint8))
    kw = dict(label=label or None, preset=preset, **params(steps, eps, step_size))
    out = None
    for kind, val in streamed(
        lambda cb: run_task(synth.inpaint, model, photo, mask, callback=cb, **kw), progress, snapshot=first
    ):
        out = val if kind == "done" else val.resize(photo.size)
        yield shown, out, None
    twin = twin_of(model) if compare else None
    yield shown, out, run_task(synth.inpaint, twin, photo, mask, **kw) if twin else None


def do_translate(
    model_name, image, target, preset, compare, steps, eps, step_size, progress=gr.Progress(track_tqdm=True)
):
    model = get_model(model_name)
    photo = as_rgb(image)
    if photo is None:
        raise gr.Error("upload a photo first")
    if not target:
        raise gr.Error("pick a target class or domain")
    kw = dict(target=target, preset=preset, **params(steps, eps, step_size))
    out = None
    for kind, val in streamed(
        lambda cb: run_task(synth.translate, model, photo, callback=cb, **kw), progress, snapshot=first
    ):
        out = val if kind == "done" else val.resize(photo.size)
        yield out, None
    twin = twin_of(model) if compare else None
    yield out, run_task(synth.translate, twin, photo, **kw) if twin else None


def do_super_resolve(
    model_name,
    image,
    factor,
    start,
    original,
    preset,
    compare,
    steps,
    eps,
    step_size,
    progress=gr.Progress(track_tqdm=True),
):
    model = get_model(model_name)
    small = as_rgb(image)
    if small is None:
        raise gr.Error("upload a small photo first")
    factor = int(factor)
    if small.width * small.height * factor * factor > 4_000_000:
        raise gr.Error(
            f"{small.width}x{small.height} x{factor} would be over 4 megapixels: use a smaller image or factor"
        )
    bicubic = small.resize((small.width * factor, small.height * factor), Image.Resampling.BICUBIC)
    kw = dict(factor=factor, start=None if start == "preset" else start, preset=preset, **params(steps, eps, step_size))
    out = None
    for _kind, val in streamed(lambda cb: run_task(synth.super_resolve, model, small, callback=cb, **kw), progress):
        out = val
    report = ""
    hr = as_rgb(original)
    if hr is not None:
        report = f"PSNR against your original: bicubic **{psnr(bicubic, hr):.2f} dB**, ours **{psnr(out, hr):.2f} dB**"
    twin = twin_of(model) if compare else None
    return bicubic, out, report, run_task(synth.super_resolve, twin, small, **kw) if twin else None


def do_sketch(
    model_name, drawing, uploaded, label, preset, compare, steps, eps, step_size, progress=gr.Progress(track_tqdm=True)
):
    model = get_model(model_name)
    img = uploaded
    if img is None and drawing is not None:
        img = drawing.get("composite") if isinstance(drawing, dict) else drawing
    img = as_rgb(img)
    if img is None or np.asarray(img).min() == 255:
        raise gr.Error("draw something (or upload a drawing) first")
    kw = dict(label=label or None, preset=preset, **params(steps, eps, step_size))
    out = None
    for kind, val in streamed(
        lambda cb: run_task(synth.sketch_to_image, model, img, callback=cb, **kw), progress, snapshot=first
    ):
        out = val if kind == "done" else val.resize(img.size)
        yield out, None
    twin = twin_of(model) if compare else None
    yield out, run_task(synth.sketch_to_image, twin, img, **kw) if twin else None


def do_suggest(model_name, editor, uploaded_mask):
    model = get_model(model_name)
    photo, mask = editor_parts(editor, uploaded_mask)
    top = synth.top_features(model, photo, mask, k=6)
    thumbs = []
    for k, act in top:  # what each feature adds: a short paint run inside the mask
        thumbs.append(
            (
                run_task(synth.paint_features, model, photo, mask, feature=k, preset="fast", steps=15),
                f"feature {k} (activation {act:.2f})",
            )
        )
    return gr.Dropdown(choices=[k for k, _ in top], value=top[0][0]), thumbs


def do_paint(
    model_name,
    editor,
    uploaded_mask,
    feature_k,
    preset,
    compare,
    steps,
    eps,
    step_size,
    progress=gr.Progress(track_tqdm=True),
):
    model = get_model(model_name)
    photo, mask = editor_parts(editor, uploaded_mask)
    if feature_k in (None, ""):
        raise gr.Error("choose a feature (click 'Suggest features' or type an index)")
    try:
        k = int(feature_k)
    except (TypeError, ValueError):
        raise gr.Error(f"feature must be an integer index, got {feature_k!r}") from None
    kw = dict(feature=k, preset=preset, **params(steps, eps, step_size))
    out = None
    for _kind, val in streamed(
        lambda cb: run_task(synth.paint_features, model, photo, mask, callback=cb, **kw), progress
    ):
        out = val
    twin = twin_of(model) if compare else None
    return out, run_task(synth.paint_features, twin, photo, mask, **kw) if twin else None


def stack_edit(result):
    """Use the painted result as the next edit's photo (edits stack)."""
    if result is None:
        raise gr.Error("nothing to stack yet: run a paint first")
    return {"background": result, "layers": [], "composite": result}


def do_visualize(
    model_name, image, target, preset, compare, steps, eps, step_size, progress=gr.Progress(track_tqdm=True)
):
    model = get_model(model_name)
    photo = as_rgb(image)
    if photo is None:
        raise gr.Error("upload a photo first")
    if not target:
        raise gr.Error("pick a target class")
    kw = dict(target=target, preset=preset, frames=5, **params(steps, eps, step_size))
    frames = []
    for _kind, val in streamed(lambda cb: run_task(synth.visualize, model, photo, callback=cb, **kw), progress):
        frames = val
    caps = ["start"] + [f"step {i}" for i in range(1, len(frames) - 1)] + [f"-> {target}"]
    twin = twin_of(model) if compare else None
    std = list(zip(run_task(synth.visualize, twin, photo, **kw), caps)) if twin else None
    return list(zip(frames, caps)), std


# --------------------------------------------------------------------------------------------- UI
def controls():
    with gr.Row():
        model = gr.Dropdown(
            MODELS,
            value=DEFAULT_MODEL,
            label="Model",
            info="embedded CIFAR-10 models work offline; ImageNet models download from the Hub",
        )
        preset = gr.Radio(
            ["ours", "paper", "fast"],
            value="ours",
            label="Preset",
            info="ours: measured improvements (README, Results); paper: the authors' method; fast: paper, fewer steps",
        )
        compare = gr.Checkbox(label="Also run the standard (non-robust) model", value=False)
    with gr.Accordion("Advanced (0 = the preset's value)", open=False):
        with gr.Row():
            steps = gr.Number(label="steps", value=0, precision=0, minimum=0, maximum=2000)
            eps = gr.Number(label="eps (L2 radius, [0,1] pixels)", value=0, minimum=0, maximum=500)
            step_size = gr.Number(label="step size", value=0, minimum=0, maximum=100)
    return model, preset, compare, steps, eps, step_size


def photo_editor(label, colour):
    """Upload a photo, paint a region with a fixed-colour brush (the mask is read from the stroke layer)."""
    return ImageEditorInput(
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


def run_buttons(label):
    with gr.Row():
        return gr.Button(label, variant="primary", scale=4), gr.Button("Stop", scale=1)


def wire(go, stop, fn, inputs, outputs, api_name):
    """The task's event (named for the API, in the shared PGD queue) and its Stop button."""
    ev = go.click(fn, inputs, outputs, api_name=api_name, concurrency_id="pgd")
    stop.click(None, cancels=[ev], api_visibility="private")


def class_dropdown(label="Class", blank_ok=True, value=None):
    names = class_choices(DEFAULT_MODEL)
    return gr.Dropdown(
        ([""] if blank_ok else []) + names,
        value=value if value is not None else ("" if blank_ok else names[0]),
        label=label,
        filterable=True,
        allow_custom_value=True,
        info="type to search" + (" - blank: the model's prediction" if blank_ok else ""),
    )


def refresh_classes(model_name, blank_ok):
    names = class_choices(model_name)
    return gr.Dropdown(choices=([""] if blank_ok else []) + names, value="" if blank_ok else names[0])


def ex(name):
    return str(EXAMPLES / name)


LAZY = dict(cache_examples=True, cache_mode="lazy")  # run on the first click, then served from the cache


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Robust-classifier image synthesis") as demo:
        gr.Markdown(
            "# Image synthesis with a single robust classifier\n"
            "Every tab runs the same primitive - projected gradient descent on the *input image* against "
            "an adversarially robust classifier (Santurkar et al., 2019) - with a different objective, "
            "start and constraint. Tick *standard model* to see why robustness matters."
        )

        with gr.Tab("Generate"):
            gr.Markdown(
                "Start from a random image drawn from the class's Gaussian seed, then change it (inside an "
                "L2 ball) until the classifier is sure it shows the class."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                label = class_dropdown("Class", blank_ok=False, value="cat")
                n = gr.Slider(1, 8, value=4, step=1, label="Samples")
                seed = gr.Number(value=0, precision=0, label="Seed")
            go, stop = run_buttons("Generate")
            info = gr.Markdown()
            with gr.Row():
                out = gr.Gallery(label="Robust model", format="png", columns=4, height=320)
                std = gr.Gallery(label="Standard model", format="png", columns=4, height=320)
            model.change(lambda m: refresh_classes(m, False), model, label, api_visibility="private")
            wire(
                go,
                stop,
                do_generate,
                [model, label, n, seed, preset, compare, steps, eps, step_size],
                [out, std, info],
                "generate",
            )

        with gr.Tab("Inpaint"):
            gr.Markdown(
                "Upload a photo and paint over the region to fill (or upload a mask, white = fill). Ours fills "
                "the hole smoothly from its border, then PGD makes it look like the class with the rest of the "
                "photo held fixed; the paper starts from the image's mean colour and penalises changes outside. "
                "Pixels outside the mask are returned unchanged."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                editor = photo_editor("Photo - paint the region to fill", "#ff00ff")
                with gr.Column():
                    up_mask = ImageInput(label="...or upload a mask (optional)", type="pil", image_mode="L", height=160)
                    label = class_dropdown("Class (optional)")
            go, stop = run_buttons("Inpaint")
            with gr.Row():
                masked = gr.Image(label="Masked input", format="png")
                out = gr.Image(label="Robust model", format="png")
                std = gr.Image(label="Standard model", format="png")
            model.change(lambda m: refresh_classes(m, True), model, label, api_visibility="private")
            wire(
                go,
                stop,
                do_inpaint,
                [model, editor, up_mask, label, preset, compare, steps, eps, step_size],
                [masked, out, std],
                "inpaint",
            )

        with gr.Tab("Translate"):
            gr.Markdown(
                "Push a photo toward another class or domain (e.g. horse -> zebra with a 2-domain model, "
                "cat -> dog with CIFAR-10) inside a large L2 ball."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                img = ImageInput(label="Photo", type="pil", image_mode=None, height=300)
                target = class_dropdown("Target class / domain", blank_ok=False, value="dog")
            go, stop = run_buttons("Translate")
            with gr.Row():
                out = gr.Image(label="Robust model", format="png")
                std = gr.Image(label="Standard model", format="png")
            model.change(lambda m: refresh_classes(m, False), model, target, api_visibility="private")
            wire(
                go,
                stop,
                do_translate,
                [model, img, target, preset, compare, steps, eps, step_size],
                [out, std],
                "translate",
            )
            gr.Examples(
                [[ex("cat.png"), "dog"], [ex("horse.png"), "deer"]],
                [img, target],
                [out, std],
                fn=lambda i, t: (yield from do_translate(DEFAULT_MODEL, i, t, "fast", False, None, None, None)),
                **LAZY,
            )

        with gr.Tab("Super-resolve"):
            gr.Markdown(
                "Upsample a small photo, then strengthen its class inside a small L2 ball. Ours starts from "
                "back-projected bicubic and keeps the result consistent with the input (it downsamples back to "
                "it); the paper starts from nearest. Give the high-resolution original to see PSNR of both."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                img = ImageInput(label="Small photo", type="pil", image_mode=None, height=200)
                with gr.Column():
                    factor = gr.Slider(2, 8, value=4, step=1, label="Factor")
                    start = gr.Radio(
                        ["preset", *synth.starts.UPSAMPLING],
                        value="preset",
                        label="Start",
                        info="preset: ours = back-projected bicubic, paper = nearest",
                    )
                    original = ImageInput(label="High-resolution original (optional, for PSNR)", type="pil", height=160)
            go, stop = run_buttons("Super-resolve")
            report = gr.Markdown()
            with gr.Row():
                bic = gr.Image(label="Bicubic", format="png")
                out = gr.Image(label="Robust model", format="png")
                std = gr.Image(label="Standard model", format="png")
            wire(
                go,
                stop,
                do_super_resolve,
                [model, img, factor, start, original, preset, compare, steps, eps, step_size],
                [bic, out, report, std],
                "super_resolve",
            )
            gr.Examples(
                [[ex("ship_8px.png"), 4, "bicubic", ex("ship.png")]],
                [img, factor, start, original],
                [bic, out, report, std],
                fn=lambda i, f, s_, o: do_super_resolve(DEFAULT_MODEL, i, f, s_, o, "paper", False, None, None, None),
                **LAZY,
            )

        with gr.Tab("Sketch -> image"):
            gr.Markdown(
                "Draw (or upload) a rough sketch; PGD turns it into something the classifier sees as the class."
            )
            model, preset, compare, steps, eps, step_size = controls()
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
                    uploaded = ImageInput(label="...or upload a drawing", type="pil", image_mode=None, height=200)
                    label = class_dropdown("Class (optional)")
            go, stop = run_buttons("Sketch -> image")
            with gr.Row():
                out = gr.Image(label="Robust model", format="png")
                std = gr.Image(label="Standard model", format="png")
            model.change(lambda m: refresh_classes(m, True), model, label, api_visibility="private")
            wire(
                go,
                stop,
                do_sketch,
                [model, pad, uploaded, label, preset, compare, steps, eps, step_size],
                [out, std],
                "sketch",
            )
            gr.Examples(
                [[ex("sketch_ship.png"), "ship"], [ex("sketch_car.png"), "automobile"]],
                [uploaded, label],
                [out, std],
                fn=lambda u, lab: (yield from do_sketch(DEFAULT_MODEL, None, u, lab, "fast", False, None, None, None)),
                **LAZY,
            )

        with gr.Tab("Paint features"):
            gr.Markdown(
                "Paint a region, pick one of the classifier's penultimate features (the ones most active "
                "there are suggested, with a preview of what each adds) and PGD paints it in. *Stack* "
                "makes the result the next edit's photo."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                editor = photo_editor("Photo - paint the region", "#00ffff")
                with gr.Column():
                    up_mask = ImageInput(label="...or upload a mask (optional)", type="pil", image_mode="L", height=160)
                    feat = gr.Dropdown([], value=None, label="Feature index", allow_custom_value=True)
                    suggest = gr.Button("Suggest features")
            thumbs = gr.Gallery(label="What each suggested feature adds", format="png", columns=6, height=160)
            go, stop = run_buttons("Paint")
            with gr.Row():
                out = gr.Image(label="Robust model", format="png", type="pil")
                std = gr.Image(label="Standard model", format="png")
            stack = gr.Button("Stack: use the result as the photo")
            suggest.click(
                do_suggest,
                [model, editor, up_mask],
                [feat, thumbs],
                api_visibility="undocumented",
                concurrency_id="pgd",
            )
            wire(
                go,
                stop,
                do_paint,
                [model, editor, up_mask, feat, preset, compare, steps, eps, step_size],
                [out, std],
                "paint",
            )
            stack.click(stack_edit, out, editor, api_visibility="private")

        with gr.Tab("Visualize a class"):
            gr.Markdown(
                "Large-eps targeted PGD from any image toward a class (the paper's Fig. 2): a robust "
                "model's gradient paints the class in; a standard model's barely changes the image."
            )
            model, preset, compare, steps, eps, step_size = controls()
            with gr.Row():
                img = ImageInput(label="Start image", type="pil", image_mode=None, height=260)
                target = class_dropdown("Target class", blank_ok=False, value="frog")
            go, stop = run_buttons("Visualize")
            out = gr.Gallery(label="Robust model: start -> target", format="png", columns=5, height=200)
            std = gr.Gallery(label="Standard model", format="png", columns=5, height=200)
            model.change(lambda m: refresh_classes(m, False), model, target, api_visibility="private")
            wire(
                go,
                stop,
                do_visualize,
                [model, img, target, preset, compare, steps, eps, step_size],
                [out, std],
                "visualize",
            )
            gr.Examples(
                [[ex("cat.png"), "frog"], [ex("ship.png"), "airplane"]],
                [img, target],
                [out, std],
                fn=lambda i, t: do_visualize(DEFAULT_MODEL, i, t, "paper", False, None, None, None),
                **LAZY,
            )
    # all PGD events share one queue (concurrency_id "pgd"): one job at a time on a 2-vCPU box, a bounded line
    demo.queue(default_concurrency_limit=1, max_size=16)
    return demo


demo = build_demo()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--share", action="store_true", help="create a public share link")
    ap.add_argument("--host", default=None, help="server name (0.0.0.0 to listen on all interfaces)")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    demo.launch(share=args.share, server_name=args.host, server_port=args.port, max_file_size="25mb")


if __name__ == "__main__":
    main()
