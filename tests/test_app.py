"""The Gradio app in-process: every endpoint through gradio_client on the embedded model, plus errors."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

import app  # noqa: E402
import synth  # noqa: E402

FAST = dict(preset="fast", compare=False, steps=2, eps=None, step_size=None)
C10 = "cifar10-resnet20-l2-eps0.5"  # calls that name CIFAR-10 classes name the model too
# a subprocess's resident and peak memory in kB (its ru_maxrss would carry the forking pytest's peak across exec)
PEAK_KB = "kb = lambda key: int(next(ln for ln in open('/proc/self/status') if ln.startswith(key)).split()[1])\n"


@pytest.fixture(scope="module")
def client():
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, mcp_server=True)
    try:
        yield Client(app.demo.local_url, verbose=False)
    finally:
        app.demo.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 48, 3)) * 255).astype("uint8")).save(d / "photo.png")
    m = Image.new("L", (48, 40))
    m.paste(255, (10, 10, 30, 30))
    m.save(d / "mask.png")
    Image.fromarray((rng.random((8, 8, 3)) * 255).astype("uint8")).save(d / "small.png")
    (d / "notimage.png").write_text("hello")
    (d / "notes.txt").write_text("not a picture")
    return d


def editor(path):
    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path)), "id": None}


def test_generate(client):
    gallery, std, info = client.predict(
        model_name=C10, label="cat", n=2, seed=7, preset="fast", compare=True, steps=2, api_name="/generate"
    )
    assert len(gallery) == 2 and gallery[0]["image"].endswith(".png")
    assert "seed **7**" in info
    assert len(std) == 2  # the standard twin ran too


def test_inpaint_with_uploaded_mask(client, files):
    # keyword form, as in the README
    masked, out, std, before_after = client.predict(
        editor=editor(files / "photo.png"),
        uploaded_mask=handle_file(str(files / "mask.png")),
        steps=2,
        api_name="/inpaint",
    )
    assert Image.open(out).size == (48, 40) and out.endswith(".png")
    assert Image.open(masked).size == (48, 40)
    before, after = before_after  # the ImageSlider: the photo, then the result
    assert np.array_equal(np.asarray(Image.open(before).convert("RGB")), np.asarray(Image.open(files / "photo.png")))
    assert np.array_equal(np.asarray(Image.open(after)), np.asarray(Image.open(out)))


def test_the_fill_choice_reaches_inpaint(client, tmp_path):
    from test_texture_fill import centre_hole, detail, textured

    photo = textured()
    mask, m = centre_hole(photo, 75)
    photo.save(tmp_path / "p.png"), mask.save(tmp_path / "m.png")
    outs = {}
    for fill in ("preset", "smooth"):
        _, out, _, _ = client.predict(
            editor=editor(tmp_path / "p.png"),
            uploaded_mask=handle_file(str(tmp_path / "m.png")),
            fill=fill,
            steps=2,
            api_name="/inpaint",
        )
        outs[fill] = Image.open(out).convert("RGB")
    assert detail(outs["preset"], m) > 3 * detail(outs["smooth"], m)  # ours: the photo's texture; smooth: a blob


def test_a_large_photo_comes_back_lossless_and_written_once(client, tmp_path):
    rng = np.random.default_rng(1)
    photo = Image.fromarray((rng.random((1000, 1100, 3)) * 255).astype("uint8"))  # 1.1 MP: the app writes its PNGs
    photo.save(tmp_path / "big.png")
    mask = Image.new("L", photo.size)
    mask.paste(255, (500, 400, 560, 460))
    mask.save(tmp_path / "mask.png")
    _, out, _, (before, after) = client.predict(
        editor=editor(tmp_path / "big.png"),
        uploaded_mask=handle_file(str(tmp_path / "mask.png")),
        steps=2,
        api_name="/inpaint",
    )
    a, p = np.asarray(Image.open(out)), np.asarray(photo)
    outside = np.asarray(mask) == 0
    assert out.endswith(".png") and (a[outside] == p[outside]).all() and (a[~outside] != p[~outside]).any()
    assert np.array_equal(np.asarray(Image.open(after)), a) and np.array_equal(np.asarray(Image.open(before)), p)
    big = Image.new("RGB", (1200, 1000), "red")
    paths = app.runner.as_files((big, [(big, "caption")], Image.new("RGB", (8, 8)), "text"))
    assert paths[0] == paths[1][0][0] and isinstance(paths[2], Image.Image) and paths[3] == "text"  # one file
    assert paths[0].endswith(".png") and app.runner.as_files([Image.new("RGB", (8, 8))], preview=True)[0].endswith(
        ".jpg"
    )
    files = {}  # one run's: an image shown again is written once, and a new image never gets an old file
    masked = Image.new("RGB", (8, 8), "blue")
    shown = [app.runner.as_files((masked, Image.new("RGB", (8, 8), (10 * i, 0, 0))), True, files) for i in range(20)]
    assert len({m for m, _ in shown}) == 1 and len({p for _, p in shown}) == 20


def test_translate_sketch_visualize_superres_paint(client, files):
    out, _, before_after = client.predict(
        model_name=C10, image=handle_file(str(files / "photo.png")), target="dog", steps=2, api_name="/translate"
    )
    assert Image.open(out).size == (48, 40)
    out, _ = client.predict(
        model_name=C10, uploaded=handle_file(str(files / "photo.png")), label="ship", **FAST, api_name="/sketch"
    )
    assert Image.open(out).size == (48, 40)
    frames, _ = client.predict(
        model_name=C10, image=handle_file(str(files / "photo.png")), target="frog", **FAST, api_name="/visualize"
    )
    assert len(frames) == 5
    bic, out, report, _, _ = client.predict(
        model_name=C10,
        image=handle_file(str(files / "small.png")),
        factor=4,
        start="bicubic",
        original=handle_file(str(files / "small.png")),
        **FAST,
        api_name="/super_resolve",
    )
    assert Image.open(out).size == (32, 32) and Image.open(bic).size == (32, 32) and "PSNR" in report
    out, _, _ = client.predict(
        model_name=C10,
        editor=editor(files / "photo.png"),
        uploaded_mask=handle_file(str(files / "mask.png")),
        feature_k=3,
        **FAST,
        api_name="/paint",
    )
    assert Image.open(out).size == (48, 40)


@pytest.mark.parametrize(
    "endpoint,kwargs,msg",
    [
        ("/translate", lambda f: {"image": handle_file(str(f / "photo.png")), "target": "zebra"}, "unknown class"),
        ("/translate", lambda f: {"image": None, "target": "dog"}, "upload a photo"),
        ("/inpaint", lambda f: {"editor": editor(f / "photo.png"), "uploaded_mask": None}, "mask is empty"),
        ("/generate", lambda f: {"label": "caat", "n": 1, "seed": 0}, "did you mean"),
        ("/translate", lambda f: {"image": handle_file(str(f / "notes.txt")), "target": "dog"}, "not a readable image"),
        ("/super_resolve", lambda f: {"image": handle_file(str(f / "notes.txt")), "factor": 4}, "not a readable image"),
        ("/inpaint", lambda f: {"editor": editor(f / "notimage.png"), "uploaded_mask": None}, "not a readable image"),
    ],
)
def test_errors_are_clear(client, files, endpoint, kwargs, msg, capfd):
    capfd.readouterr()
    with pytest.raises(Exception, match=msg) as e:
        client.predict(model_name=C10, **kwargs(files), **FAST, api_name=endpoint)
    assert '""' not in str(e.value) and not str(e.value).startswith(("'", '"'))  # the message, not its repr
    assert "Traceback" not in capfd.readouterr().err  # a refusal is one line to the user, nothing in the server's log


def test_offline_hub_model_is_a_clear_error(client, files, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception, match="Hub|offline|cache"):
        client.predict(
            model_name="imagenet-resnet18-l2-eps3",
            image=handle_file(str(files / "photo.png")),
            target="goldfish",
            **FAST,
            api_name="/translate",
        )


def test_suggest_features_and_stack(files):
    photo = Image.open(files / "photo.png")
    value = {"background": photo, "layers": [], "composite": photo}
    dropdown, thumbs = app.tabs.do_suggest("cifar10-resnet20-l2-eps0.5", value, Image.open(files / "mask.png"))
    assert len(thumbs) == 6 and thumbs[0][0].size == photo.size and "feature" in thumbs[0][1]
    assert dropdown.value == int(thumbs[0][1].split()[1])
    assert app.tabs.stack_edit(thumbs[0][0])["background"] is thumbs[0][0]


def test_flooded_queue_serves_or_says_it_is_full(client):
    # more jobs than the queue holds (max_size 16, one PGD job at a time): the overflow gets a clear message,
    # everything accepted completes
    jobs = [
        client.submit("cifar10-resnet20-l2-eps0.5", "cat", 1, i, "ours", False, 80, None, None, api_name="/generate")
        for i in range(22)
    ]
    done, full = 0, 0
    for job in jobs:
        try:
            gallery, _, info = job.result()
            assert len(gallery) == 1 and "seed" in info
            done += 1
        except Exception as e:
            assert "queue is full" in str(e).lower(), e
            full += 1
    assert full >= 1 and done >= 16 and done + full == 22


def test_docs_client_calls_run_as_written(client, files, monkeypatch):
    """docs/app.md's gradio_client block, run as written (its Client pointed here, photo/mask from the fixtures)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    block = re.search(
        r"```python\n(from gradio_client import Client.*?)```", (root / "docs" / "app.md").read_text(), re.S
    )
    code = block.group(1).replace('"http://127.0.0.1:7860"', repr(app.demo.local_url))
    code = code.replace('"photo.png"', repr(str(files / "photo.png"))).replace(
        '"mask.png"', repr(str(files / "mask.png"))
    )
    monkeypatch.chdir(root)  # the examples/ paths
    env = {}
    exec(compile(code, "docs/app.md", "exec"), env)
    assert len(env["gallery"]) == 4 and Image.open(env["filled"]).size == (48, 40)
    assert len(env["frames"]) == 5 and Image.open(env["bicubic"]).size == (32, 32) and "PSNR" in env["psnr"]
    assert Image.open(env["out"]).size == (48, 40)  # the last call's: /paint on the photo


def test_advanced_fields_show_the_preset_values_and_reach_pgd(client, files, monkeypatch):
    s = synth.settings(synth.load_model(), "inpaint", "paper")
    shown = app.layout.advanced_values(synth.DEFAULT_MODEL, "paper", "inpaint")
    assert shown == dict(steps=720, eps=round(s.eps, 3), step_size=round(s.step_size, 5))
    assert set(app.layout.advanced_values("./no-such-model", "paper", "inpaint").values()) == {
        None
    }  # then the preset's
    seen = {}
    real = synth.tasks.pgd

    def spy(loss, x0, settings, **kw):
        seen.update(eps=settings.eps, steps=settings.steps, step_size=settings.step_size)
        return real(loss, x0, settings, **kw)

    monkeypatch.setattr(synth.tasks, "pgd", spy)
    photo = handle_file(str(files / "photo.png"))
    client.predict(model_name=C10, image=photo, target="dog", eps=0.25, steps=2, api_name="/translate")
    assert (seen["eps"], seen["steps"]) == (0.25, 2)
    client.predict(model_name=C10, image=photo, target="dog", preset="fast", api_name="/translate")
    fast = synth.settings(synth.load_model(C10), "translate", "fast")
    assert (seen["eps"], seen["steps"], seen["step_size"]) == (fast.eps, fast.steps, fast.step_size)


def test_every_field_reaches_the_parameter_of_its_name_in_any_order(monkeypatch):
    """The browser sends values in the event's input order; with the Advanced fields reordered each value still
    reaches the run's parameter of the same name."""
    monkeypatch.setattr(app.layout, "ADVANCED", dict(reversed(app.layout.ADVANCED.items())))
    demo = app.layout.build_demo()
    (dep,) = [f for f in demo.fns.values() if f.api_name == "translate"]
    by_label = {"steps": 3, "eps (L2 radius, [0,1] pixels)": 1.5, "step size": 0.25, "Model": C10, "Preset": "fast"}
    got = {}

    def run(tab, **kwargs):
        got.update(kwargs)
        yield None

    monkeypatch.setattr(app.runner, "run", run)
    list(dep.fn(*[by_label.get(c.label) for c in dep.inputs]))
    assert [c.label for c in dep.inputs][-3:] == ["step size", "eps (L2 radius, [0,1] pixels)", "steps"]
    assert (got["steps"], got["eps"], got["step_size"], got["model_name"], got["preset"]) == (3, 1.5, 0.25, C10, "fast")


def test_translate_between_domains_with_the_horse2zebra_model(client, files):
    h2z = "horse2zebra-resnet18-half-l2-eps3"
    out, _, _ = client.predict(
        model_name=h2z, image=handle_file(str(files / "photo.png")), target="zebra", steps=1, api_name="/translate"
    )
    assert Image.open(out).size == (48, 40)  # the photo's size, not the model's 128 px
    assert [v for _, v in app.models.class_choices(h2z)] == ["horse", "zebra"]  # what the target picker offers
    with pytest.raises(Exception, match="unknown class 'zebar'.*did you mean 'zebra'"):
        client.predict(
            model_name=h2z, image=handle_file(str(files / "photo.png")), target="zebar", api_name="/translate"
        )


# --------------------------------------------------------------------------------------------- hostile input
@pytest.fixture(scope="module")
def bad_files(files):
    from conftest import blank_png

    data = (files / "photo.png").read_bytes()
    Image.open(files / "photo.png").save(files / "photo.jpg", quality=95)
    jpg = (files / "photo.jpg").read_bytes()
    (files / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    blank_png(files / "bomb.png", 13000, 13000)
    rgba = Image.new("RGBA", (48, 40), (0, 0, 0, 0))  # a mask marked by transparency only
    rgba.paste((0, 0, 0, 255), (10, 10, 30, 30))
    rgba.save(files / "alpha_mask.png")
    Image.new("RGB", (300, 250), "gray").save(files / "big.png")
    assert data
    return files


@pytest.mark.parametrize(
    "endpoint,kwargs,msg",
    [
        (
            "/translate",
            lambda f: dict(model_name=C10, image=handle_file(str(f / "cut.jpg")), target="dog"),
            "not a readable image",
        ),
        ("/super_resolve", lambda f: dict(image=handle_file(str(f / "cut.jpg"))), "not a readable image"),
        (
            "/translate",
            lambda f: dict(model_name=C10, image=handle_file(str(f / "bomb.png")), target="dog"),
            "larger than 100 mega",
        ),
        ("/generate", lambda f: dict(seed=2**70), "seed must be a whole number"),
        ("/generate", lambda f: dict(seed="abc"), "Seed: expected a number, got 'abc'"),
        ("/generate", lambda f: dict(steps="many"), "steps: expected a number, got 'many'"),
        ("/generate", lambda f: dict(steps=3000), "steps: Value 3000 is greater than maximum value 2000"),
        (
            "/generate",
            lambda f: dict(eps=-1),
            "eps must be a finite number > 0, got -1",
        ),  # checked once, by synth.Settings
        ("/generate", lambda f: dict(steps=0), "steps must be a whole number from 1"),
        (  # 120 tiles of 32x32 x 2000 steps: over the bound
            "/super_resolve",
            lambda f: dict(image=handle_file(str(f / "photo.png")), factor=8, steps=2000),
            r"M pixel-steps of PGD \(208 image\(s\)",
        ),
        (  # the app's own output bound, before any work (no bicubic of it is made either)
            "/super_resolve",
            lambda f: dict(image=handle_file(str(f / "big.png")), factor=8),
            "output would be 2400x2000: over 4 megapixels",
        ),
    ],
)
def test_hostile_inputs_get_messages(client, bad_files, endpoint, kwargs, msg):
    with pytest.raises(Exception, match=msg):
        client.predict(**kwargs(bad_files), api_name=endpoint)


@pytest.mark.parametrize("kwargs", [dict(seed=float("nan")), dict(n=float("nan")), dict(steps=float("nan"))])
def test_nan_numbers_get_messages(kwargs):
    """NaN cannot travel in gradio_client's JSON, but a raw request can carry it: call the handler itself."""
    (fn,) = [f.fn for f in app.demo.fns.values() if f.api_name == "generate"]
    with pytest.raises(gr.Error, match="whole number|expected a number"):
        list(fn(**kwargs))


def test_a_photo_over_the_super_resolution_bound_is_still_worked_by_the_other_tabs(client, bad_files):
    """The app's 4-megapixel bound is on the images super-resolution makes, not on photos the size of an upload."""
    Image.new("RGB", (2600, 1800), "gray").save(bad_files / "photo_5mp.jpg")
    out, _, _ = client.predict(
        model_name=C10,
        image=handle_file(str(bad_files / "photo_5mp.jpg")),
        target="dog",
        steps=1,
        api_name="/translate",
    )
    assert Image.open(out).size == (2600, 1800)


def test_transparent_mask_upload(client, bad_files):
    masked, out, _, _ = client.predict(
        editor=editor(bad_files / "photo.png"),
        uploaded_mask=handle_file(str(bad_files / "alpha_mask.png")),
        steps=2,
        api_name="/inpaint",
    )
    m = np.asarray(Image.open(masked).convert("RGB")).astype(int)
    photo = np.asarray(Image.open(bad_files / "photo.png").convert("RGB")).astype(int)
    changed = (m != photo).any(-1)
    assert changed[10:30, 10:30].all() and not changed[:10].any()  # the opaque square, nothing else


def test_stop_stops_the_work(client, files):
    """Cancel (the Stop button) ends the PGD loop, whatever the tab: the process goes idle."""
    import time

    from gradio_client.utils import Status

    photo = handle_file(str(files / "photo.png"))
    job = client.submit(model_name=C10, image=photo, target="frog", steps=1900, api_name="/visualize")
    deadline = time.time() + 60
    while job.status().code != Status.PROGRESS and time.time() < deadline:
        time.sleep(0.1)
    assert job.status().code == Status.PROGRESS
    job.cancel()
    time.sleep(2)
    cpu = time.process_time()
    time.sleep(2)
    assert time.process_time() - cpu < 0.5  # a running PGD loop takes about a core


def test_uploads_and_results_are_kept_an_hour_then_removed(client, files, monkeypatch):
    """What Gradio's cache sweep (the demo's delete_cache) does to this demo's files, with its clock moved on."""
    from datetime import datetime, timedelta

    import gradio.route_utils as ru

    client.predict(
        model_name=C10, image=handle_file(str(files / "photo.png")), target="dog", steps=1, api_name="/translate"
    )
    kept = {f for s in app.demo.temp_file_sets for f in s}
    assert kept and all(Path(f).exists() for f in kept)
    frequency, age = app.demo.delete_cache
    for minutes, survive in ((50, True), (61, False)):

        class Later(datetime):
            @classmethod
            def now(cls, tz=None, minutes=minutes):
                return datetime.now(tz) + timedelta(minutes=minutes)

        monkeypatch.setattr(ru, "datetime", Later)
        ru.delete_files_created_by_app(app.demo, age)
        assert all(Path(f).exists() for f in kept) == survive, f"after {minutes} min"
    assert frequency <= 15 * 60  # the sweep runs at least every quarter hour


def test_mcp_lists_the_seven_tasks(client):
    import httpx

    schema = httpx.get(app.demo.local_url + "gradio_api/mcp/schema", timeout=30).json()
    tools = {t["name"]: t for t in schema if t["meta"]["mcp_type"] == "tool"}  # (the page's events are listed too)
    assert set(tools) == {"generate", "inpaint", "translate", "super_resolve", "sketch", "paint", "visualize"}
    inpaint = tools["inpaint"]
    assert "Upload a photo and paint over the region" in inpaint["description"]
    assert "upload_file_to_gradio" not in str(tools)  # Gradio's hint at a tool that is not there
    props = inpaint["inputSchema"]["properties"]
    assert {"photo", "mask", "label", "eps"} <= set(props) and "$ref" not in str(tools)
    assert "L2 radius" in props["eps"]["description"] and "data: URL" in props["photo"]["description"]


def _data_url(path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


MCP_CALLS = {  # tool: (its arguments besides FAST_TOOL, the size of the PNG it returns)
    "generate": (dict(label="cat", n=2, seed=0), (64, 32)),  # two samples side by side
    "inpaint": (dict(photo="photo", mask="mask", label="cat"), (48, 40)),
    "translate": (dict(image="photo", target="cat"), (48, 40)),
    "sketch": (dict(drawing="photo", label="ship"), (48, 40)),
    "paint": (dict(photo="photo", mask="mask", feature=3), (48, 40)),
    "visualize": (dict(image="photo", target="frog"), (32 * 5, 32)),  # five frames
}


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
def test_every_mcp_tool_through_the_official_sdk(client, files, transport):
    """The seven tools through the MCP Python SDK: images as data: URLs, and as a URL this server returned
    (generate -> super_resolve); each returns its PNG, inline and as a URL."""
    import asyncio
    import base64
    import re

    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    base = app.demo.local_url + "gradio_api/mcp/"
    fast = dict(model_name=C10, preset="fast", steps=2)

    def picture(result):
        assert not result.isError, result.content
        (image,) = [c for c in result.content if c.type == "image"]
        (url,) = re.findall(r"Image URL: (\S+)", " ".join(c.text for c in result.content if c.type == "text"))
        return Image.open(io.BytesIO(base64.b64decode(image.data))), url

    async def calls():
        connect = sse_client(base + "sse") if transport == "sse" else streamable_http_client(base)
        async with connect as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            sizes = {}
            for tool, (kwargs, _) in MCP_CALLS.items():
                args = {k: _data_url(files / f"{v}.png") if v in ("photo", "mask") else v for k, v in kwargs.items()}
                image, url = picture(await session.call_tool(tool, {**args, **fast}))
                sizes[tool] = image.size
            image, url = picture(await session.call_tool("generate", {"label": "cat", "n": 1, **fast}))
            chained, _ = picture(await session.call_tool("super_resolve", {"image": url, "factor": 2, **fast}))
            sizes["super_resolve"] = chained.size
            bad = await session.call_tool("translate", {"image": "photo.png", "target": "cat", **fast})
            return sizes, bad

    sizes, bad = asyncio.run(calls())
    assert sizes == {**{tool: size for tool, (_, size) in MCP_CALLS.items()}, "super_resolve": (64, 64)}
    assert bad.isError and "image: expected an http(s) URL" in bad.content[0].text


def test_docs_mcp_block_runs_as_written(client, monkeypatch):
    """docs/app.md's MCP block (the SDK, a data: URL in, the returned URL chained), its server pointed here."""
    import re

    root = Path(__file__).resolve().parents[1]
    block = re.search(r"```python\n(import asyncio, base64, re.*?)```", (root / "docs" / "app.md").read_text(), re.S)
    code = block.group(1).replace("http://127.0.0.1:7860/", app.demo.local_url)
    monkeypatch.chdir(root)  # examples/cat.png
    env = {}
    exec(compile(code, "docs/app.md", "exec"), env)
    assert not env["bigger"].isError and env["bigger"].content[0].type == "image"


def test_a_tool_reads_only_files_this_server_serves(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(secret)
    assert app.tools.served_file(f"http://127.0.0.1:7860/gradio_api/file={secret}") is None  # not served here
    assert app.tools.served_file("http://127.0.0.1:7860/gradio_api/file=/etc/passwd") is None
    with pytest.raises(gr.Error, match="could not read"):
        app.tools.fetch_image(f"http://127.0.0.1:1/gradio_api/file={secret}", "image")  # refused, not read


def test_importing_the_app_probes_nothing_and_builds_nothing():
    """`import app` neither asks the Hub for the start model nor builds the demo: both happen on first use."""
    import subprocess
    import sys

    code = (
        "import gradio as gr, synth.models\n"
        "def boom(*a, **k): raise SystemExit('probed the Hub at import')\n"
        "synth.models.available = boom\n"
        "built = []; gr.Blocks.__init__ = lambda self, *a, **k: built.append(1) or exec('raise SystemExit(3)')\n"
        "import app\n"
        "print('quiet', len(built))"
    )
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-500:]
    assert r.stdout.strip().splitlines()[-1] == "quiet 0"


@pytest.mark.parametrize("cached", [True, False])
def test_start_model_follows_the_hub_cache(tmp_path, cached):
    """Offline, the app opens on the ImageNet ResNet-50 when the Hub cache has it (a Space's preload_from_hub), else
    on the embedded model: the Model dropdown's first value and the API's default."""
    import os
    import subprocess
    import sys

    import torch
    from hub_cache import put
    from torchvision.models import resnet50

    cache = tmp_path / "hub"
    cache.mkdir()
    if cached:  # a random ResNet-50 in the madrylab layout, as preload_from_hub would leave the real one
        f = tmp_path / "resnet50_l2_eps3.ckpt"
        torch.save({"model": {"module.model." + k: v for k, v in resnet50().state_dict().items()}}, f)
        put(cache, "madrylab/robust-imagenet-models", {"resnet50_l2_eps3.ckpt": f})
    code = (
        "import app; p = app.demo.get_api_info()['named_endpoints']['/translate']['parameters']\n"
        "print(p[0]['parameter_default'], '|', p[2]['parameter_default'], '|', app.models.class_choices(app.models.start_model())[0][0])"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "home"))
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    model, target, first_choice = r.stdout.strip().splitlines()[-1].split(" | ")
    assert model == ("imagenet-resnet50-l2-eps3" if cached else "cifar10-resnet20-l2-eps0.5")
    assert target == "dog"  # the pickers follow: on ImageNet the Restricted-ImageNet super-class, else CIFAR's dog
    assert first_choice == ("dog (super-class: 118 classes)" if cached else "airplane")


@pytest.fixture
def silent_hub():
    """An HF_ENDPOINT that accepts connections and never answers (a Hub behind a dead proxy)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []

    def hold():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_hub_that_never_answers_costs_one_second_and_one_line(silent_hub, tmp_path):
    """Before: the app waited minutes on hf_hub_download's retries (6.5 min for the class picker here), the CLI 6.8
    min with a warning line per retry, and the picker showed CIFAR classes for an ImageNet model."""
    import os
    import subprocess
    import sys

    code = (
        "import time, synth, app.models\n"
        "t = time.monotonic(); start = app.models.start_model(); decided = time.monotonic() - t\n"
        "t = time.monotonic()\n"
        "try: synth.load_model('imagenet-resnet50-l2-eps3')\n"
        "except synth.ModelLoadError as e: line = str(e)\n"
        "print(start, round(decided, 2), round(time.monotonic() - t, 2), len(app.models.class_choices('imagenet-resnet50-l2-eps3')), line.count(chr(10)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=silent_hub, HF_HOME=str(tmp_path / "home"))
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    said, result = r.stdout.strip().splitlines()[-2:]
    start, decided, refused, choices, newlines = result.split()
    assert start == "cifar10-resnet20-l2-eps0.5" and said.startswith("synth app: opening on cifar10-resnet20-l2-eps0.5")
    assert float(decided) < 1.5  # the timeout (1 s) and the rest of the call
    assert float(refused) < 0.5  # the answer is kept: a load does not wait again
    assert choices == "0" and newlines == "0"  # no other model's classes; one line
    cli = [sys.executable, "-m", "synth", "generate", "--model", "imagenet-resnet50-l2-eps3", "--out", str(tmp_path)]
    r = subprocess.run(cli, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "no answer from" in r.stderr, r.stderr[-2000:]
    assert not list(tmp_path.glob("*.png"))  # never another model's samples


def test_a_huge_upload_is_reduced_while_decoded_or_refused_from_its_header(tmp_path):
    """Before, Gradio decoded any upload whole (a 98-megapixel RGBA PNG: 0.8 -> 3 GB). Now a JPEG is decoded at a
    reduced scale (PIL's draft) and anything else over APP_MAX_UPLOAD_PIXELS is refused from its header; the peak
    memory of taking a 54-megapixel JPEG stays far below its 160 MB of pixels."""
    import os
    import subprocess
    import sys

    from conftest import blank_png
    from gradio.data_classes import FileData

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((60, 90, 3)) * 255).astype("uint8")).resize((9000, 6000)).save(tmp_path / "big.jpg")
    png = blank_png(tmp_path / "big.png", 8000, 6250)  # 50 megapixels, declared
    upload = app.widgets.image_input("photo", 100)
    with pytest.raises(gr.Error, match="8000x6250: over the 40 megapixels this app takes"):
        upload.preprocess(FileData(path=str(png)))
    code = (
        "import app.widgets; from gradio.data_classes import FileData\n"
        f"{PEAK_KB}"
        "open('/proc/self/clear_refs', 'w').write('5')\n"  # the peak reset to what is resident now
        "before = kb('VmRSS')\n"
        f"im = app.widgets.image_input('photo', 100).preprocess(FileData(path={str(tmp_path / 'big.jpg')!r}))\n"
        "print(im.size, (kb('VmHWM') - before) // 1024)"
    )
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    size, peak_mb = r.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert size == "(4500, 3000)" and int(peak_mb) < 120, r.stdout  # decoded at half scale


def test_a_huge_photo_through_the_upload_path_stays_in_budget_and_its_memory_is_handed_back(tmp_path):
    """A 39-megapixel RGBA PNG (under the 40 MP and 25 MB the app takes) uploaded through Gradio's own upload path
    to Inpaint, in a fresh server process: the peak stays within the request budget (SYNTH_APP_MEMORY_MB), and
    afterwards the process is back near idle (it stayed 470 MB up before runs handed freed heap back)."""
    import os
    import subprocess
    import sys

    w, h = 7200, 5400
    rng = np.random.default_rng(0)
    blocks = (rng.random((h // 100, w // 100, 4)) * 255).astype("uint8")
    Image.fromarray(blocks).resize((w, h), Image.NEAREST).save(tmp_path / "big.png")
    mask = np.zeros((h, w), np.uint8)
    mask[2000:2500, 3000:3600] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert (tmp_path / "big.png").stat().st_size < 25 * 2**20
    code = (
        "import gc, time, app\n"
        "from gradio_client import Client, handle_file\n"
        f"{PEAK_KB}"
        "app.demo.launch(prevent_thread_lock=True, server_name='127.0.0.1', quiet=True, max_file_size='25mb')\n"
        "c = Client(app.demo.local_url, verbose=False)\n"
        "gc.collect(); open('/proc/self/clear_refs', 'w').write('5'); before = kb('VmRSS')\n"
        f"photo = {{'background': handle_file({str(tmp_path / 'big.png')!r}), 'layers': [], 'composite': None}}\n"
        f"c.predict(model_name={C10!r}, editor=photo, uploaded_mask=handle_file({str(tmp_path / 'mask.png')!r}),\n"
        "          preset='fast', steps=2, api_name='/inpaint')\n"
        "time.sleep(1); gc.collect()\n"
        "print('MB', (kb('VmHWM') - before) // 1024, (kb('VmRSS') - before) // 1024, flush=True)\n"
        "app.demo.close()\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    peak_mb, kept_mb = map(int, next(ln for ln in r.stdout.splitlines() if ln.startswith("MB ")).split()[1:])
    assert 100 < peak_mb < app.runner.APP_MEMORY_MB, r.stdout  # (100: the photo was decoded, 156 MB of pixels)
    assert kept_mb < 200, r.stdout


def test_shared_links_are_kept_an_hour_and_within_a_size(tmp_path, monkeypatch):
    """Gradio writes a folder per shared link (deep_links/<id>/state.json) and never removes it; each result the app
    writes sweeps them: older than an hour, then the oldest past DEEP_LINK_BYTES."""
    import os
    import time

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(app.files, "DEEP_LINK_BYTES", 3_000_000)
    links = tmp_path / "deep_links"
    for k, age in enumerate([7200, 50, 40, 30, 20, 10]):  # seconds ago; the first is two hours old
        (links / f"link{k}").mkdir(parents=True)
        with open(links / f"link{k}" / "state.json", "wb") as f:
            f.truncate(1_000_000)
        os.utime(links / f"link{k}", (time.time() - age,) * 2)
    app.runner.as_files((Image.new("RGB", (2, 2)),))
    assert sorted(p.name for p in links.iterdir()) == ["link3", "link4", "link5"]  # the newest 3 MB


def test_a_share_link_names_only_files_this_server_serves(tmp_path, monkeypatch):
    """A tab's Share button keeps the values the page sent (app.share; the browser test reopens them): a file
    reference outside what the server serves is refused, not kept for the next visitor to fetch; a link whose
    images have been swept, or a name that is not a link, opens the page as new."""
    import os

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    result = tmp_path / "abc" / "image.png"
    result.parent.mkdir()
    Image.new("RGB", (4, 4)).save(result)
    os.utime(result, (0, 0))  # an old file (Gradio's cache reuses files by content): the link renews it
    values = {"model_name": C10, "output0": {"path": str(result), "url": "/gradio_api/file=x"}, "label": "cat"}
    link = app.share.save("generate", values)
    assert app.share.load(link) == {"tab": "generate", "values": values}
    assert time.time() - result.stat().st_mtime < 60
    with pytest.raises(gr.Error, match="not one this server serves"):
        app.share.save("generate", {**values, "output0": {"path": "/etc/passwd"}})
    with pytest.raises(gr.Error, match="nothing to share yet"):
        app.share.save("generate", {"output0": None, "label": ""})
    assert app.share.load("../" + link) is None and app.share.load("0" * 32) is None
    result.unlink()
    assert app.share.load(link) is None


def test_super_classes_in_the_pickers_and_through_the_api(client, files, tmp_path):
    """On an ImageNet-class model the pickers offer the Restricted-ImageNet super-classes first, and a tab aims at
    one by its name."""
    from test_superclasses import tiny_imagenet_model

    d = tmp_path / "imagenet-classes"
    tiny_imagenet_model().save_pretrained(d)
    choices = app.models.class_choices(str(d))
    assert [v for _, v in choices[:9]] == ["dog", "cat", "frog", "turtle", "bird", "primate", "fish", "crab", "insect"]
    assert choices[0][0] == "dog (super-class: 118 classes)" and len(choices) == 1009
    tiny = "tiny-imagenet-resnet18-half-l2-eps1"  # the embedded model of 200 ImageNet classes: 6 of the 9 groups
    assert [v for _, v in app.models.class_choices(tiny)[:6]] == ["dog", "cat", "frog", "bird", "primate", "insect"]
    frames, _ = client.predict(
        model_name=tiny, image=handle_file(str(files / "photo.png")), target="insect", steps=2, api_name="/visualize"
    )
    assert frames[-1]["caption"] == "-> insect"


def test_zerogpu_is_asked_for_the_seconds_of_the_requests_work(tmp_path):
    """On ZeroGPU `@spaces.GPU(duration=...)` gets a callable: each run asks for its PGD work (model-input pixels x
    steps) at the measured rate, not a fixed duration. A stand-in `spaces` module records what is asked."""
    import os
    import subprocess
    import sys

    (tmp_path / "spaces.py").write_text(
        "asked = []\n"
        "def GPU(duration):\n"
        "    assert callable(duration)\n"
        "    def wrap(fn):\n"
        "        def run(*a, **k):\n"
        "            asked.append((k['pixel_steps'], duration(*a, **k)))\n"
        "            return fn(*a, **k)\n"
        "        return run\n"
        "    return wrap\n"
    )
    code = (
        "import app, spaces\n"
        "tab = next(t for t in app.tabs.TABS if t.api_name == 'generate')\n"
        "for steps in (2, 40):\n"
        "    for _ in app.runner.run(tab, 'cifar10-resnet20-l2-eps0.5', 'fast', True, steps, None, None,\n"
        "                     lambda *a, **k: None, label='cat', n=3, seed=0):\n"
        "        pass\n"
        "print(spaces.asked)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), root]), HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    asked = eval(r.stdout.strip().splitlines()[-1])
    assert [work for work, _ in asked] == [3 * 32 * 32 * 2] * 2 + [3 * 32 * 32 * 40] * 2  # robust model, then twin
    assert all(seconds == app.runner.gpu_seconds(None, pixel_steps=work) for work, seconds in asked)
    paper_inpaint = 224 * 224 * 720  # the paper's inpainting on a 224 px ImageNet model
    assert app.runner.gpu_seconds(None, pixel_steps=paper_inpaint) == app.runner.GPU_START_SECONDS + 6
    assert app.runner.gpu_seconds(None, pixel_steps=10**12) == app.runner.GPU_MAX_SECONDS


def test_every_example_fits_its_model_family_and_runs_on_its_embedded_model(client):
    """Each family's examples name files that ship and classes every model of the family knows (an ImageNet
    example's target is a class or super-class of the 64 px and the 1000-class models alike); each runs, with the
    fast preset, on the embedded model its results are cached for."""
    from test_superclasses import tiny_imagenet_model

    family_models = {
        "cifar10": [synth.load_model(app.layout.EXAMPLE_MODELS["cifar10"])],
        "imagenet": [synth.load_model(app.layout.EXAMPLE_MODELS["imagenet"]), tiny_imagenet_model()],
        "horse2zebra": [synth.load_model(app.layout.EXAMPLE_MODELS["horse2zebra"])],
    }
    ran = 0
    for tab in app.tabs.TABS:
        for fam, rows in tab.examples.items():
            for row in rows:
                for m in family_models[fam]:
                    for key in {"label", "target"} & set(row):
                        assert m.target_classes(row[key])  # raises for a class the model lacks
                files = {k: str(app.layout.EXAMPLES / v) for k, v in row.items() if str(v).endswith((".png", ".jpg"))}
                assert all(Path(f).is_file() for f in files.values())
                values = {**row, **{k: handle_file(f) for k, f in files.items()}, "steps": 2}
                model_name = app.layout.EXAMPLE_MODELS[fam]
                client.predict(model_name=model_name, preset="fast", **values, api_name=f"/{tab.api_name}")
                ran += 1
    assert ran >= 10 and {"cifar10", "imagenet", "horse2zebra"} <= {f for t in app.tabs.TABS for f in t.examples}


@pytest.mark.parametrize(
    "model_name, shown",
    [
        ("cifar10-resnet20-l2-eps0.5", ("cifar10", "cifar10-resnet20-l2-eps0.5")),
        ("cifar10-resnet20-standard", ("cifar10", None)),
        ("imagenet-resnet50-l2-eps3", ("imagenet", None)),
        ("tiny-imagenet-resnet18-half-l2-eps1", ("imagenet", "tiny-imagenet-resnet18-half-l2-eps1")),
        ("horse2zebra-resnet18-half-standard", ("horse2zebra", None)),
    ],
)
def test_one_example_set_shows_for_each_model(model_name, shown):
    """The examples follow the Model dropdown: the family's cached set on its embedded model, else the set that
    fills the inputs (a Hub model, a standard twin)."""
    sets = [(fam, on) for fam in app.layout.EXAMPLE_MODELS for on in (app.layout.EXAMPLE_MODELS[fam], None)]
    assert [s for s in sets if app.layout.shows_examples(model_name, *s)] == [shown]


MOBILENET = "imagenet-mobilenetv2-standard"
MOBILENET_CALLS = {  # endpoint: (its inputs besides the model and FAST, the output that is an image, its size)
    "generate": (dict(label="goldfish", n=1, seed=0), 0, (224, 224)),
    "inpaint": (dict(editor="photo", uploaded_mask="mask", label="cat"), 1, (48, 40)),
    "translate": (dict(image="photo", target="zebra"), 0, (48, 40)),
    "sketch": (dict(uploaded="photo", label="school bus"), 0, (48, 40)),
    "visualize": (dict(image="photo", target="fish"), 0, (224, 224)),
    "super_resolve": (dict(image="small", factor=4, start="bicubic", original="small"), 1, (32, 32)),
    "paint": (dict(editor="photo", uploaded_mask="mask", feature_k=1279), 0, (48, 40)),
}


@pytest.mark.parametrize("api_name", list(MOBILENET_CALLS))
def test_every_tab_runs_offline_on_the_embedded_imagenet_mobilenet(client, files, api_name, monkeypatch):
    """The embedded 1000-class MobileNetV2 in every tab, with the Hub out of reach (any download attempt fails)."""

    def no_hub(*args, **kwargs):
        raise AssertionError("the embedded model went to the Hub")

    monkeypatch.setattr(synth.loading, "hf_hub_download", no_hub)
    monkeypatch.setattr(synth.checks, "hf_hub_download", no_hub)
    kwargs, which, size = MOBILENET_CALLS[api_name]
    paths = {"photo": files / "photo.png", "mask": files / "mask.png", "small": files / "small.png"}
    files_in = {
        k: editor(paths[v]) if k == "editor" else handle_file(str(paths[v])) for k, v in kwargs.items() if v in paths
    }
    out = client.predict(model_name=MOBILENET, **{**kwargs, **files_in}, **FAST, api_name=f"/{api_name}")
    image = out[which]
    image = image[0]["image"] if isinstance(image, list) else image  # a gallery: its first picture
    assert Image.open(image).size == size


def test_result_images_do_not_look_like_inputs():
    """The Paint tab's result is read by Stack (an event input), which made Gradio draw it as an upload area."""
    results = [b for b in app.demo.blocks.values() if isinstance(b, gr.Image) and b.label == "Robust model"]
    assert results and all(b.interactive is not True for b in results)
    assert any(b.interactive is False for b in results)  # the one Stack reads says so


def test_a_request_over_the_memory_budget_is_refused_before_it_runs(monkeypatch):
    """Each request's memory (synth.Plan.memory: PGD's batch at the model's activations per image, and the task's
    images at full size) is checked against SYNTH_APP_MEMORY_MB before anything runs, in one line; the estimate is
    an upper bound of what a run holds (measured in a subprocess: the peak grows by 0.5-1x of it)."""
    import subprocess
    import sys

    from synth.planning import activation_bytes

    model = synth.load_model(C10)
    plan = synth.plan(synth.generate, model, "cat", 64, preset="fast")
    app.runner.check_work(plan, 2, model)  # 64 CIFAR samples: ~120 MB, well inside the default 2 GB
    monkeypatch.setattr(app.runner, "APP_MEMORY_MB", 50)
    with pytest.raises(gr.Error, match=r"about 1\d\d MB of memory .* one request may use 50 MB here"):
        app.runner.check_work(plan, 1, model)
    assert activation_bytes(model) == 4 * 475_146  # every layer's output for one 32 px image (cached on the model)
    code = (
        "import synth, synth.tasks\nfrom synth.planning import activation_bytes\n"
        "m = synth.load_model('imagenet-mobilenetv2-standard')\n"
        "need = synth.plan(synth.generate, m, 'goldfish', 16, steps=1).memory(activation_bytes(m), "
        "synth.tasks.TILE_BATCH_PIXELS)\n"
        f"{PEAK_KB}"
        "open('/proc/self/clear_refs', 'w').write('5')\n"  # the peak so far (loading) reset to what is resident
        "before = kb('VmRSS')\n"
        "synth.generate(m, 'goldfish', 16, steps=1)\n"
        "print((kb('VmHWM') - before) * 1024 / need)"
    )
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 0.5 < float(r.stdout.split()[-1]) <= 1.0, r.stdout
