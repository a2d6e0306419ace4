"""The MCP tools (on the API page too, as /<tool>_tool): one per tab, `tool_for`, plain inputs and one image out.

A tab's own event takes Gradio's image components (an ImageEditor's nested value, whose schema MCP clients cannot
resolve, and files a client uploads); a tool takes every image as a string - an http(s) URL, a URL this server
returned, or a data: URL - and its other fields by the tab's names, and runs the tab's own handler (the same
checks, limits and queue as a click). It returns the robust model's result as one PNG (generate and visualize:
their images side by side)."""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import gradio as gr
from gradio import processing_utils
from gradio import utils as gradio_utils
from gradio.data_classes import FileData
from PIL import Image

import synth

from .errors import refused
from .files import served, tool_dir
from .runner import run
from .widgets import reduced

IMAGE = "an http(s) URL (a URL this server returned too) or a data: URL (data:image/png;base64,...)"
# a tab's input name -> the tool's (None: not a tool input): an editor's photo and the uploads beside it
TOOL_NAMES = {
    "editor": "photo",
    "uploaded_mask": "mask",
    "uploaded": "drawing",
    "drawing": None,
    "feature_k": "feature",
}
KIND = inspect.Parameter.POSITIONAL_OR_KEYWORD


def served_file(url: str) -> str | None:
    """The file behind one of this server's file URLs (.../gradio_api/file=PATH) when it is one the server serves
    (uploads, results), else None. (Gradio would download it, and refuses to: a loopback address.)"""
    path = urlparse(url).path
    if "/gradio_api/file=" not in path:
        return None
    local = Path(unquote(path.split("/gradio_api/file=", 1)[1])).resolve()
    return str(local) if served(local) else None


def fetch_image(value, name: str) -> str | None:
    """A local file for an image argument (None for none)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(("data:", "http://", "https://")):
        raise refused(f"{name}: expected {IMAGE}, got {str(value)[:60]!r}")
    try:
        if value.startswith("data:"):
            path = processing_utils.save_base64_to_cache(value, gradio_utils.get_upload_folder())
        else:
            folder = gradio_utils.get_upload_folder()
            path = served_file(value) or processing_utils.ssrf_protected_download(value, folder)
    except Exception as e:  # noqa: BLE001 - a bad URL of any kind is the caller's to fix: say which and why
        raise refused(f"{name}: could not read {value[:60]!r} ({type(e).__name__})") from None
    try:
        return reduced(path)  # as an upload is: a huge image refused from its header, a huge JPEG reduced
    except synth.ImageError as e:
        raise refused(f"{name}: {str(e).replace(path, 'the image')}") from None


def one_image(value) -> Image.Image:
    """An output value (an image, its file, or a gallery of (image, caption)) as one picture."""
    if isinstance(value, (list, tuple)) and not isinstance(value, Image.Image):
        images = [one_image(v[0] if isinstance(v, (list, tuple)) else v) for v in value]
        strip = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
        for k, im in enumerate(images):
            strip.paste(im, (sum(i.width for i in images[:k]), 0))
        return strip
    return synth.load_image(value)


def annotation(component) -> type:
    if component.label == "Feature index":  # a free-text dropdown of suggestions: an index
        return int
    if isinstance(component, (gr.Image, gr.ImageEditor)):
        return str
    if isinstance(component, gr.Checkbox):
        return bool
    if isinstance(component, (gr.Number, gr.Slider)):
        whole = getattr(component, "precision", None) == 0 or getattr(component, "step", None) == 1
        return int if whole else float
    return str


def tool_for(tab, fields: dict, describe: dict[str, str], robust: int):
    """The tool of `tab`: `fields` ({name: component}, as the tab's event takes them), `describe` what each is,
    `robust` the index of the robust model's result among the tab's outputs."""
    names = {name: TOOL_NAMES.get(name, name) for name in fields}
    params = [  # the defaults are the page's
        inspect.Parameter(tool, KIND, default=fields[name].value, annotation=annotation(fields[name]) | None)
        for name, tool in names.items()
        if tool
    ]
    images = {tool for name, tool in names.items() if tool and isinstance(fields[name], (gr.Image, gr.ImageEditor))}
    words = {tool: (IMAGE if tool in images else describe[name]) for name, tool in names.items() if tool}

    def tool(*args, **kwargs) -> FileData:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        kwargs = bound.arguments
        args = {name: kwargs.get(tool) for name, tool in names.items()}  # (a tool's None: the page's Sketchpad)
        args.update({name: fetch_image(kwargs.get(tool), tool) for name, tool in names.items() if tool in images})
        if "editor" in fields:
            args["editor"] = {"background": args["editor"], "layers": [], "composite": None}
        final = None
        for values in run(tab, progress=lambda *a, **k: None, **args):
            final = values if values is not None else final  # previews, then the result
        if final is None:
            raise refused("stopped before a result")
        out = tool_dir() / f"{uuid.uuid4().hex}.png"
        one_image(final[robust]).save(out, compress_level=1)  # (run's results swept this folder)
        return FileData(path=str(out), orig_name=f"{tab.api_name}.png")

    signature = inspect.Signature(params, return_annotation=FileData)
    tool.__signature__ = signature
    tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": FileData}
    tool.__name__ = tool.__qualname__ = tab.api_name
    photo = " Images are given as URLs: " + IMAGE + "."
    tool.__doc__ = tab.doc + photo + "\n\nArgs:\n" + "".join(f"    {n}: {d}\n" for n, d in words.items())
    tool.__doc__ += "\nReturns:\n    the robust model's result, a PNG\n"
    return tool
