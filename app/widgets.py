"""The app's input widgets, hardened: uploads and numbers are checked as synth checks them, with messages that
name the field, where Gradio would answer with its generic 'error'."""

from __future__ import annotations

import math
import uuid

import gradio as gr
import numpy as np
from PIL import Image

import synth

from .errors import refused
from .files import RESULTS_DIR
from .models import class_choices, start_model

APP_MAX_SIDE = 4096  # uploads are downscaled to this (the package's own limits are in synth.images)
# Gradio decodes an upload whole before the app sees it: a 98-megapixel RGBA PNG took the server from 0.8 to 3 GB.
# Uploads declaring more pixels than this are refused from their header; a JPEG is first reduced while it is
# decoded (PIL's draft: by 2, 4 or 8, to no less than APP_MAX_SIDE), which costs no more than the reduced image.
APP_MAX_UPLOAD_PIXELS = 40_000_000


def reduced(path: str) -> str:
    """`path`, or for a JPEG longer than APP_MAX_SIDE a copy decoded at a reduced scale (refused, from the header,
    when the upload is over APP_MAX_UPLOAD_PIXELS after that)."""
    with synth.images.open_file(path) as img:
        w, h = img.size
        if img.format == "JPEG" and max(w, h) > APP_MAX_SIDE:
            scale = APP_MAX_SIDE / max(w, h)
            img.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
            if img.width * img.height <= APP_MAX_UPLOAD_PIXELS:
                path = str(RESULTS_DIR / f"{uuid.uuid4().hex}.jpg")  # (swept hourly with the results)
                synth.load_image(img).save(path, quality=95)
                return path
        if img.width * img.height > APP_MAX_UPLOAD_PIXELS:
            raise synth.ImageError(
                f"{path} is {w}x{h}: over the {APP_MAX_UPLOAD_PIXELS // 10**6} megapixels this app takes; downscale it"
            )
    return path


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
                    f.path = reduced(f.path)
                except synth.ImageError as e:
                    raise refused(f"{str(e).replace(f.path, name)}; upload a PNG, JPEG, WebP or BMP") from None
        try:
            return preprocess(payload)
        except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
            raise refused(f"the upload: not a readable image ({e.__class__.__name__})") from None

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
            raise refused(f"{component.label}: {e.message}") from None
        except (TypeError, ValueError, OverflowError):
            value = float("nan")
        if isinstance(value, float) and value != value:
            raise refused(f"{component.label}: expected a number, got {payload!r}")
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
        raise refused(str(e)) from None
    if max(im.size) > APP_MAX_SIDE:
        im.thumbnail((APP_MAX_SIDE, APP_MAX_SIDE), Image.Resampling.LANCZOS)
        gr.Warning(f"large image downscaled to {im.width}x{im.height}")
    return im


def editor_parts(value, uploaded_mask=None):
    """(photo, mask) from an ImageEditor value and an optional uploaded mask (which wins)."""
    if not value or value.get("background") is None:
        raise refused("upload a photo first")
    photo = as_rgb(value["background"])
    if uploaded_mask is not None:  # read as synth reads masks (transparency counts), fitted to a downscaled photo
        mask = synth.images.mask_image(check(lambda m: synth.load_mask(m, photo.size, fit=True), uploaded_mask))
    else:
        mask = synth.mask_from_layers(value.get("layers"), photo.size)
    if not np.asarray(mask).any():
        raise refused("the mask is empty: paint the region with the brush (or upload a mask)")
    return photo, mask


def class_dropdown(label, blank_ok, value=None):
    choices = class_choices(start_model())
    values = [v for _, v in choices]
    return gr.Dropdown(
        ([""] if blank_ok else []) + choices,
        value=value if value in values else ("" if blank_ok or not values else values[0]),
        label=label,
        filterable=True,
        allow_custom_value=True,
        info="type to search" + (" - blank: the model's prediction" if blank_ok else ""),
    )


def check(fn, value):
    """fn(value), with a ValueError/TypeError shown to the user as the message it is (a gr.Error, which is a
    ValueError, as it is: its str() is its message's repr, quotes and all)."""
    try:
        return fn(value)
    except gr.Error:
        raise
    except (TypeError, ValueError) as e:
        raise refused(str(e)) from None
