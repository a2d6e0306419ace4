"""Headless-browser smoke test: open the app, visit every tab, run one task, take screenshots.

Needs Debian's chromium (/usr/bin/chromium) and Playwright's Python package (.ci/run installs both); skipped,
with the reason, where they are missing. Screenshots go to $SCREENSHOT_DIR (default: a temp folder).
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("gradio")

import app  # noqa: E402

TABS = ["Generate", "Inpaint", "Translate", "Super-resolve", "Sketch -> image", "Paint features", "Visualize a class"]


@pytest.fixture(scope="module")
def url():
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield app.demo.local_url
    finally:
        app.demo.close()


def test_every_tab_and_one_run(url, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="networkidle")
        assert "robust classifier" in page.content()
        for tab in TABS:
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"tab_{tab.split()[0].lower().replace('-', '_')}.png"))
        # run one task end to end: Generate with the fast preset
        page.get_by_role("tab", name="Generate").click()
        panel = page.locator("[role=tabpanel]:visible")
        page.get_by_label("fast").first.check()  # the preset radio sits above the tabs, shared by all
        panel.get_by_role("button", name="Generate", exact=True).click()
        panel.locator("img[alt='cat #3 (seed 0)']").wait_for(timeout=120_000)
        page.wait_for_function("() => !document.querySelector('[role=tabpanel] .progress-text')", timeout=120_000)
        page.wait_for_timeout(500)
        assert panel.locator("img[alt^='cat #']").count() == 4
        page.screenshot(path=str(shots / "generate_result.png"), full_page=True)
        browser.close()


def test_examples_follow_the_model_dropdown(url, tmp_path):
    """On the Translate tab: the embedded CIFAR-10 model's cached examples; after picking the horse/zebra model's
    standard twin, that family's examples, which fill the inputs and leave the model as it is."""
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="networkidle")
        page.get_by_role("tab", name="Translate").click()
        panel = page.locator("[role=tabpanel]:visible")
        assert panel.get_by_text("Examples (cifar10-resnet20-l2-eps0.5, fast preset; cached)").is_visible()
        cached = panel.locator("tr.tr-body:visible")
        images = panel.locator("img:visible")
        for row in (0, 1, 0):  # the first click runs and caches each example; the third is read from the cache
            before = images.count()
            cached.nth(row).click()
            page.wait_for_function(f"() => document.querySelectorAll('[role=tabpanel] img').length > {before}")
            page.wait_for_function("() => !document.querySelector('[role=tabpanel] .progress-text')", timeout=120_000)
            page.wait_for_timeout(500)
        assert page.locator(".toast-body.error").count() == 0 and "Error" not in panel.inner_text()
        model = page.get_by_label("Model", exact=True)
        model.click()
        model.fill("horse2zebra-resnet18-half-standard")
        page.keyboard.press("Enter")
        page.get_by_text("Examples (click, then Translate)").first.wait_for(state="visible", timeout=30_000)
        assert not panel.get_by_text("Examples (cifar10-resnet20-l2-eps0.5, fast preset; cached)").is_visible()
        rows = panel.locator("tr.tr-body:visible")
        assert rows.count() == 2 and "zebra.jpg" in rows.nth(1).locator("img").get_attribute("src")
        assert rows.nth(0).inner_text().strip() == "zebra"  # a target the first model has no class of
        rows.nth(1).click()  # the zebra -> horse example
        target = panel.get_by_label("Target class / domain")
        page.wait_for_function("t => t.value === 'horse'", arg=target.element_handle(), timeout=30_000)
        assert model.input_value() == "horse2zebra-resnet18-half-standard"  # the example left the model alone
        page.screenshot(path=str(shots / "examples_horse2zebra.png"), full_page=True)
        browser.close()
