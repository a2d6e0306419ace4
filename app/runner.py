"""The runner every tab shares: size the request (`synth.plan`) and refuse it when it is over the app's limits, run
the task in a thread with progress, previews and Stop, then on the standard twin when asked, and write large
results as files. `handler` gives each tab's event a function whose signature names its inputs, so every field is
bound to its parameter by name."""

from __future__ import annotations

import contextvars
import ctypes
import inspect
import math
import os
import queue
import threading
import time
import traceback
import uuid
from typing import TYPE_CHECKING

import gradio as gr
import torch
from PIL import Image

import synth
import synth.tasks
from synth.planning import activation_bytes

from .errors import refused
from .files import RESULTS_DIR, sweep_app_files
from .models import get_model, twin_of
from .widgets import check

if TYPE_CHECKING:
    from .tabs import Tab

# The app's limits (one shared worker): super-resolution outputs over APP_MAX_OUTPUT_PIXELS and requests whose PGD
# work - model-input pixels x steps x models - is over APP_MAX_WORK (GPU_WORK_FACTOR times that on a GPU) are
# refused. Uploads are downscaled to app.widgets.APP_MAX_SIDE; the package's own limits are in synth.images.
APP_MAX_OUTPUT_PIXELS = 4_000_000
APP_MAX_WORK = 100_000_000
# ...and so are requests whose memory (synth.Plan.memory, an upper estimate) is over APP_MEMORY_MB above what the
# app holds idle: 2 GB by default, what a free 16 GB CPU Space leaves a visitor with room for another's request
APP_MEMORY_MB = int(os.environ.get("SYNTH_APP_MEMORY_MB", "2048"))
GPU_WORK_FACTOR = 20
PREVIEWS = 10  # previews drawn while PGD runs, at most, a run
FAST_PNG_PIXELS = 1_000_000  # result images larger than this are written by the app (`as_files`), not by Gradio

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
    start = time.monotonic()

    def callback(step):
        if stop.is_set():
            raise Cancelled
        if step.i % 5 == 0 or step.i == step.steps:  # the server's threads share the 2 cores and the GIL with PGD
            # the run's own clock: Gradio's beside the bar restarts with every preview (gradio-app/gradio#4776)
            progress((step.i, step.steps), desc=f"PGD steps, {time.monotonic() - start:.0f} s")
            q.put(("step", step))

    def work_in_thread():
        try:
            q.put(("done", work(callback)))
        except Cancelled:
            q.put(("cancelled", None))
        except (ValueError, synth.ImageError, synth.ModelLoadError) as e:
            q.put(("error", e.message if isinstance(e, gr.Error) else str(e)))
        except Exception as e:  # noqa: BLE001 - show, don't crash the worker; a bug's traceback goes to the log
            traceback.print_exc()
            q.put(("error", f"{type(e).__name__}: {e}"))

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work_in_thread,), daemon=True)
    thread.start()  # (copy_context keeps gr.Progress working in the thread)
    try:
        while True:
            kind, value = q.get()
            if kind == "error":
                raise refused(value)
            if kind == "cancelled":
                return
            yield kind, value
            if kind == "done":
                return
    finally:
        stop.set()


try:
    LIBC = ctypes.CDLL("libc.so.6")
    LIBC.malloc_trim  # noqa: B018 - glibc's, or no trimming
except (OSError, AttributeError):  # not glibc
    LIBC = None


def release_memory() -> None:
    """Hand freed heap back to the system (glibc's malloc_trim; elsewhere nothing): a run frees its images in the
    PGD thread's own malloc arena, which glibc keeps for reuse - after a huge upload, hundreds of MB held idle
    (measured in docs/app.md, Limits)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


def run(tab: Tab, model_name, preset, compare, steps, eps, step_size, progress, **inputs):
    """`run_steps`, then the heap it freed handed back, however it ended (finished, refused, stopped)."""
    try:
        yield from run_steps(tab, model_name, preset, compare, steps, eps, step_size, progress, **inputs)
    finally:
        release_memory()


def run_steps(tab: Tab, model_name, preset, compare, steps, eps, step_size, progress, **inputs):
    """Every tab's handler: prepare the job from the tab's `inputs`, check its size, run the task with the preset
    and the Advanced overrides (None: the preset's value), then on the standard twin when asked. Yields the tab's
    output values, or None when there is nothing new to show (every 5 steps: Stop can end the run there). A preview
    image is drawn at most PREVIEWS times a run: each is encoded and sent while PGD runs on the same cores."""
    model = get_model(model_name)
    job = check(lambda values: tab.prepare(model, **values), inputs)
    options = dict(preset=preset or None, steps=number(steps, int), eps=number(eps), step_size=number(step_size))
    job.plan = check(lambda o: synth.plan(tab.task, model, *job.args, **job.kwargs, **o), options)
    twin = twin_of(model) if compare else None
    models = [model] if twin is None else [model, twin]
    check_work(job.plan, len(models), model)
    results, files = [], {}  # files: what as_files wrote in this run
    for m in models:
        work = lambda cb, m=m: run_task(  # noqa: E731
            tab.task, m, *job.args, callback=cb, pixel_steps=job.plan.pixel_steps, **job.kwargs, **options
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
        yield as_files((*shown, (tab.slider(job), results[0])) if tab.slider else shown, False, files)


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
        sweep_app_files()
    return walk(values)


def check_work(plan: synth.Plan, n_models: int, model) -> None:
    """Refuse a request, before it runs, whose outputs are over the app's APP_MAX_OUTPUT_PIXELS, whose PGD work
    (model-input pixels x steps x models) is over its bound, or whose memory is over APP_MEMORY_MB (the models run
    one after the other: one's memory)."""
    check(lambda p: p.check_outputs(APP_MAX_OUTPUT_PIXELS), plan)
    need = plan.memory(activation_bytes(model), synth.tasks.TILE_BATCH_PIXELS) / 2**20
    if need > APP_MEMORY_MB:
        raise refused(
            f"this request would hold about {need:,.0f} MB of memory ({plan.images} image(s) of {plan.side}x{plan.side} "
            f"for PGD, outputs of {sum(w * h for w, h in plan.outputs) / 1e6:.1f} MP); one request may use "
            f"{APP_MEMORY_MB:,} MB here (SYNTH_APP_MEMORY_MB): use a smaller image or factor, or fewer samples"
        )
    work = plan.pixel_steps * n_models
    limit = APP_MAX_WORK * (GPU_WORK_FACTOR if torch.cuda.is_available() else 1)
    if work > limit:
        raise refused(
            f"this request is {work / 1e6:.0f} M pixel-steps of PGD ({plan.images} image(s) of "
            f"{plan.side}x{plan.side} x {plan.settings.steps} steps x {n_models} model(s)); one request may use "
            f"{limit / 1e6:.0f} M here: use fewer steps, a smaller image or factor, or untick the standard model",
        )


def number(value, kind=float):
    """An Advanced field's value: None (empty: the preset's value) or a number of `kind`."""
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise refused(f"expected a number, got {value!r}") from None


def handler(tab: Tab, describe: dict[str, str], n_outputs: int):
    """`run` for `tab`, with a signature naming its inputs in the order of `describe` (name -> what it is: the
    order the event's input components are given in, from the same mapping). Gradio's API page, gradio_client and
    the MCP tool use the names and descriptions; every input has a default, so a call may leave any out."""
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
