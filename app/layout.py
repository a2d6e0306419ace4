"""The page: the shared controls (model, preset, standard-model comparison) above one tab per task, each tab's
Advanced fields and examples, and the events that keep class pickers, examples and Advanced values following the
model.

Every field reaches its parameter by name: a tab's event inputs and its handler's signature are both made from
one ordered mapping, `fields` in `build_tab` ({API parameter name: component})."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

import synth
from synth.models import DEFAULT_MODEL, MODELS

from . import share as app_share
from .models import class_choices, start_model
from .runner import handler
from .tabs import STANDARD, TABS, Tab
from .tools import tool_for
from .widgets import numeric

EXAMPLES = (
    Path(__file__).resolve().parents[1] / "examples"
)  # small photos per model family, and our drawings (examples/*README.md)
# Each model family's examples (photos of classes its models know) follow the Model dropdown. Their results are
# cached for the family's embedded robust model, the one they ran on; with another model of the family an example
# fills the inputs, and the tab's button runs it on that model.
EXAMPLE_MODELS = {
    "cifar10": "cifar10-resnet20-l2-eps0.5",
    "imagenet": "tiny-imagenet-resnet18-half-l2-eps1",
    "horse2zebra": "horse2zebra-resnet18-half-l2-eps3",
}


CONTROL_DOCS = {  # what the inputs every tab shares are (their order is `fields`, in build_tab)
    "model_name": "the classifier, a name from `python -m synth models` (the embedded models work offline)",
    "preset": "ours (default: measured improvements), paper (the authors' method) or fast (fewer steps)",
    "compare": "also run the standard (non-robust) twin of the model, for comparison",
    "steps": "PGD steps (empty: the preset's)",
    "eps": "L2 radius of the change, in [0,1]-pixel units (empty: the preset's)",
    "step_size": "PGD step length (empty: the preset's)",
}


# The Advanced panel's fields, in the order shown: {API parameter name: its component's maker}. Their maxima are
# the app's bounds; what a valid value is (eps > 0, whole steps) is checked once, by synth.Settings.
ADVANCED = {
    "steps": lambda: gr.Number(label="steps", value=None, precision=0, maximum=2000),
    "eps": lambda: gr.Number(label="eps (L2 radius, [0,1] pixels)", value=None, maximum=500),
    "step_size": lambda: gr.Number(label="step size", value=None, maximum=100),
}


@dataclass
class Shared:
    """The controls above the tabs, which every tab's event reads."""

    model: gr.Dropdown
    preset: gr.Radio
    compare: gr.Checkbox


@dataclass
class Built:
    """What a built tab gives the page, so that its parts follow the model: its class pickers ({component: blank
    allowed}), its Advanced fields ({name: component}) and its example sets ([(column, family, model or None)]);
    and what a link to it keeps."""

    pickers: dict = field(default_factory=dict)
    advanced: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)
    kept: dict = field(default_factory=dict)  # what a shared link keeps: {key: component} (fields, then outputs)


def advanced_fields():
    """The Advanced panel: the values the preset uses for this tab's task on the chosen model (filled when the page
    loads and whenever the model or preset changes); a number edited here overrides the preset's. Empty (as
    through the API, where they default to None) means the preset's value."""
    with gr.Accordion("Advanced: the preset's PGD settings for this model - edit to override", open=False), gr.Row():
        return {name: numeric(make()) for name, make in ADVANCED.items()}


def advanced_values(model_name, preset, task) -> dict:
    """{name: value} of the Advanced fields: what `task` uses on the model under `preset` (4 significant digits: what
    is shown is what runs); None each when the model is not at hand (the preset's value is used then)."""
    try:
        s = synth.settings(synth.load_model(model_name), task, preset)
    except (synth.ModelLoadError, ValueError):
        return dict.fromkeys(ADVANCED)
    return {name: s.steps if name == "steps" else float(f"{getattr(s, name):.4g}") for name in ADVANCED}


def build_tab(tab: Tab, shared: Shared) -> Built:
    """The tab's components and its event."""
    gr.Markdown(tab.doc)
    inputs = tab.inputs()
    advanced = advanced_fields()
    with gr.Row():
        go, stop = gr.Button(tab.title, variant="primary", scale=4), gr.Button("Stop", scale=1)
    stopped = gr.Markdown()  # says so when Stop ended a run: its outputs show a preview, not a result
    outputs = tab.outputs()
    if tab.slider:
        outputs.append(gr.ImageSlider(label="Before / after (robust model)", type="pil", format="png"))
    fields = {"model_name": shared.model, **inputs, "preset": shared.preset, "compare": shared.compare, **advanced}
    kept = {**fields, **{f"output{k}": o for k, o in enumerate(outputs)}}
    for o in outputs:  # (an event's input is an upload area unless told otherwise: the Share button reads them)
        o.interactive = False
    # a link that reopens the page on this tab as it is (inputs and results) while the server keeps the files
    with gr.Row(equal_height=True):
        share = gr.Button("Share a link to this result", size="md", scale=1)
        link = gr.Textbox(
            show_label=False, placeholder="the link shows here (and is copied)", buttons=["copy"], scale=3
        )
    share.click(
        lambda *values: app_share.save(tab.api_name, dict(zip(kept, values))),
        list(kept.values()),
        link,
        preprocess=False,
        api_visibility="private",
    ).then(None, link, link, js=app_share.LINK_JS)
    describe_all = {name: describe(name, c) for name, c in fields.items()}
    fn = handler(tab, describe_all, len(outputs))
    # MCP lists the tab's tool (app.tools: URLs in, one PNG out), not its page event (whose image components MCP
    # clients cannot call): the tool is made first, so that it takes the tab's name, and the event's function is
    # marked as no tool (Gradio's MCP server lists a function as a tool unless its _mcp_type says otherwise)
    robust = next(k for k, o in enumerate(outputs) if str(o.label).startswith("Robust model"))
    gr.api(tool_for(tab, fields, describe_all, robust), api_name=f"{tab.api_name}_tool", concurrency_id="pgd")
    fn._mcp_type = "page event"
    when_stopped = say_when_stopped(go, stop, stopped, tab.api_name)  # (its click first: the page marks the run)
    when_stopped(go.click(fn, list(fields.values()), outputs, api_name=tab.api_name, concurrency_id="pgd"))
    examples = add_examples(tab, inputs, outputs, fn)
    if tab.extra:
        tab.extra(shared.model, inputs, outputs)
    return Built({inputs[k]: blank for k, blank in tab.classes.items()}, advanced, examples, kept)


STOPPED = "**Stopped** before the end: what shows is the last preview (a partial result) or an earlier result."


def say_when_stopped(go, stop, note, name: str):
    """Stop cancels a run of the tab, and `note` says so when one was going: the page marks the tab's run from the
    click (a listener of `go` made before the run's, so it runs first) until it ends (`then` follows a finished,
    failed or cancelled run; a finished one clears the note). Returns what wires the run's event."""
    runs = "(window.synthRuns ??= new Set())"
    private = {"api_visibility": "private"}
    go.click(None, None, None, js=f"() => {{ {runs}.add('{name}'); }}", **private)

    def wire(event):
        event.then(None, note, note, js=f"(n) => ({runs}.delete('{name}') ? '' : n)", **private)
        stop.click(
            None, note, note, js=f"(n) => ({runs}.delete('{name}') ? {STOPPED!r} : n)", cancels=[event], **private
        )

    return wire


def describe(name: str, component) -> str:
    """What an input is, for the API page and the MCP tool: a shared control's own words, else its label and info."""
    return CONTROL_DOCS.get(name) or ", ".join(filter(None, [component.label, getattr(component, "info", None)]))


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
                    yield [shown[k] for k in keep] if len(keep) > 1 else shown[keep[0]]  # (one output: its value)

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
                info="embedded models work offline (CIFAR-10, 64 px ImageNet classes, horse/zebra, and the standard "
                "ImageNet imagenet-mobilenetv2-standard); the other imagenet-* models download from the Hub",
            )
            preset = gr.Radio(
                list(synth.PRESETS),
                value="ours",
                label="Preset",
                info="ours: measured improvements (docs/results.md); paper: the authors' method; fast: paper, "
                "fewer steps",
            )
            compare = gr.Checkbox(label="Also run the standard (non-robust) model", value=False)
        shared = Shared(model, preset, compare)
        built = {}
        with gr.Tabs() as tabs:
            for tab in TABS:
                with gr.Tab(tab.title, id=tab.api_name):
                    built[tab.task.__name__] = build_tab(tab, shared)
        follow_model(demo, tabs, shared, built)
    # all PGD events share one queue (concurrency_id "pgd"): one job at a time on a 2-vCPU box, a bounded line
    demo.queue(default_concurrency_limit=1, max_size=16)
    return demo


def follow_model(demo, tabs: gr.Tabs, shared: Shared, built: dict[str, Built]):
    """Class pickers and examples (`add_examples`) follow the model; every tab's Advanced fields (`built`: task name
    -> its Built) show what the model and preset will use; a page opened by a shared link (`?share=<id>`) comes
    back as it was kept. They follow the user's choices (`.input`), not every change: a link sets the model, and
    the classes, settings and outputs it keeps must not be reset after it."""
    pickers = {c: blank for b in built.values() for c, blank in b.pickers.items()}
    examples = [e for b in built.values() for e in b.examples]
    fields = [f for b in built.values() for f in b.advanced.values()]

    def classes(model_name, current: dict) -> dict:
        """{component: update}: the pickers' classes for the model (each keeps its class where the model has it);
        for a model that cannot be loaded (a Hub model offline), a line saying so and the embedded model's."""
        try:
            synth.load_model(model_name)
        except synth.ModelLoadError as e:
            gr.Warning(f"{e} - back to {DEFAULT_MODEL}")
            return {shared.model: DEFAULT_MODEL, **classes(DEFAULT_MODEL, current)}
        choices = class_choices(model_name)
        names = {v for _, v in choices}
        updates = {}
        for picker, blank in pickers.items():
            keep = current.get(picker)
            value = keep if keep in names or (blank and keep == "") else ("" if blank else choices[0][1])
            updates[picker] = gr.Dropdown(choices=([""] if blank else []) + choices, value=value)
        model = updates.get(shared.model, model_name)
        return {
            **updates,
            **{column: gr.Column(visible=shows_examples(model, fam, on)) for column, fam, on in examples},
        }

    def settings(model_name, preset_name) -> dict:
        """{component: value} of every tab's Advanced fields (None each when the model is not at hand)."""
        try:  # once, not once per tab: a failed load (a Hub model offline) is not cached and may wait on the network
            synth.load_model(model_name)
        except synth.ModelLoadError:
            return dict.fromkeys(fields)
        return {
            b.advanced[name]: value
            for task, b in built.items()
            for name, value in advanced_values(model_name, preset_name, task).items()
        }

    def pick_model(model_name, preset_name, *current):
        updates = classes(model_name, dict(zip(pickers, current)))
        return {**updates, **settings(updates.get(shared.model, model_name), preset_name)}

    def open_page(model_name, preset_name, request: gr.Request):
        """The Advanced fields for the model; with a shared link, its tab, model and values (raw, as kept)."""
        kept = app_share.load(request.query_params.get(app_share.PARAM)) if request else None
        if kept is None:
            return settings(model_name, preset_name)
        tab = next(b for t, b in zip(TABS, built.values()) if t.api_name == kept["tab"])
        values = {tab.kept[k]: v for k, v in kept["values"].items() if k in tab.kept}
        model_name, preset_name = values.get(shared.model, model_name), values.get(shared.preset, preset_name)
        # the link's values over the preset's settings; the pickers get the model's classes, keeping the link's
        return {
            **settings(model_name, preset_name),
            **values,
            **classes(model_name, values),
            tabs: gr.Tabs(selected=kept["tab"]),
        }

    columns = [column for column, _, _ in examples]
    followers = [shared.model, *pickers, *columns, *fields]
    shared.model.input(pick_model, [shared.model, shared.preset, *pickers], followers, api_visibility="private")
    shared.preset.input(settings, [shared.model, shared.preset], fields, api_visibility="private")
    page = [tabs, *followers, *(c for b in built.values() for c in b.kept.values())]
    demo.load(
        open_page, [shared.model, shared.preset], list(dict.fromkeys(page)), postprocess=False, api_visibility="private"
    )


@functools.cache
def get_demo() -> gr.Blocks:
    return build_demo()
