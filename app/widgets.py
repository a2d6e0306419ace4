"""The app's input widgets, hardened: uploads and numbers are checked as synth checks them, with messages that
name the field, where Gradio would answer with its generic 'error'."""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

import synth

from .models import class_choices, start_model

APP_MAX_SIDE = 4096  # uploads are downscaled to this (the package's own limits are in synth.images)


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


def check(fn, value):
    """fn(value), with a ValueError/TypeError shown to the user as the message it is."""
    try:
        return fn(value)
    except (TypeError, ValueError) as e:
        raise gr.Error(str(e)) from None
