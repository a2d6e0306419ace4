"""Robust-classifier image synthesis: a Gradio suite, one tab per task (UI only; the work is in `synth`).

    python app.py [--share] [--host 0.0.0.0] [--port 7860]

widgets.py (inputs checked as synth checks them), models.py (which model, its twin, its classes), tabs.py (a `Tab`
per task: inputs, outputs, how they become a call and how a result is shown), runner.py (one runner for every
tab: sizing, progress, previews, Stop, files), layout.py (the page and its events), tools.py (the MCP tools: a tab
each, images as URLs in, one PNG out), files.py (what the app writes, swept hourly), errors.py (a refusal: one line, no traceback),
share.py (the Share buttons' links: a tab's values kept, reopened by ?share=<id>). `app.demo` is built on first
use: importing the package probes nothing.
"""

from __future__ import annotations

import argparse

from .layout import build_demo, get_demo

__all__ = ["build_demo", "get_demo", "main"]


def __getattr__(name: str):
    """`app.demo` (what Gradio and Spaces look for) is built on first use: importing app probes nothing."""
    if name == "demo":
        return get_demo()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--share", action="store_true", help="create a public share link")
    ap.add_argument("--host", default=None, help="server name (0.0.0.0 to listen on all interfaces)")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    get_demo().launch(
        share=args.share, server_name=args.host, server_port=args.port, max_file_size="25mb", mcp_server=True
    )
