"""Share links: a tab's inputs and outputs as the page holds them, kept as a small JSON file (`files.links_dir`, swept
hourly like the images it names); the page's address with `?share=<id>` reopens the page on that tab with them.

Not Gradio's DeepLinkButton: its snapshot is the server's copy of the page, which loses every component an event has
updated (class pickers after a model change, outputs after a `gr.skip()`; gradio-app/gradio#11202) and never knows
the tab shown. Values travel unprocessed (`preprocess=False` / `postprocess=False`): what the browser sent is what
the link gives back, file references included - each checked to be a file this server serves."""

from __future__ import annotations

import json
import os
import re
import uuid

import gradio as gr

from .errors import refused
from .files import links_dir, served

LINK = re.compile(r"[0-9a-f]{32}")
PARAM = "share"  # the query parameter: ?share=<id>
MAX_LINK_BYTES = 1_000_000  # a link is references and short values (~2 KB); anything larger is not ours
# the address the Share button shows and copies: this page with ?share=<id> (built in the browser, which knows the
# address it was opened at: a Space's *.hf.space page, a local port, a proxy)
LINK_JS = f"""(id) => {{
    if (!id) return "";
    const url = new URL(window.location.href);
    url.search = "";
    url.searchParams.set("{PARAM}", id);
    navigator.clipboard?.writeText(url.toString()).catch(() => {{}});
    return url.toString();
}}"""


def _files(value):
    """Every file path a raw component value refers to."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            yield value["path"]
        for v in value.values():
            yield from _files(v)
    elif isinstance(value, list):
        for v in value:
            yield from _files(v)


def save(tab: str, values: dict) -> str:
    """Keep `values` ({component key: raw value}) of `tab`; returns the link's id."""
    if not any(v not in (None, "", [], {}) for v in values.values()):
        raise refused("nothing to share yet")
    files = {p for v in values.values() for p in _files(v)}
    if not all(served(p) for p in files):
        raise refused("a file this page refers to is not one this server serves (or it has expired): run it again")
    for p in files:
        os.utime(p)  # the hourly sweeps go by age: the files a link names are kept an hour from the link
    link = uuid.uuid4().hex
    (links_dir() / f"{link}.json").write_text(json.dumps({"tab": tab, "values": values}))
    return link


def load(link: str | None, warn: bool = True) -> dict | None:
    """{'tab': ..., 'values': {...}} of a link, or None when there is none or it has expired (said in a warning)."""
    if not link:
        return None
    path = links_dir() / f"{link}.json"
    why = None
    if not LINK.fullmatch(link) or not path.is_file() or path.stat().st_size > MAX_LINK_BYTES:
        why = "this shared link has expired (links are kept an hour) or is not one of this app's"
    else:
        kept = json.loads(path.read_text())
        if any(not served(p) for v in kept["values"].values() for p in _files(v)):
            why = "the images of this shared link have expired (they are kept an hour)"
    if why and warn:
        gr.Warning(why)
    return None if why else kept
