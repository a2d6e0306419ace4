"""What a "Share a link to this result" link (gr.DeepLinkButton) still opens after the app restarts.

python -m benchmarks.bench_deep_link [--port 7871]

Starts `app.py` in a subprocess, runs a generation through gradio_client, takes the session's deep link (what the
button copies), then reopens the link: at once, after a restart of the app on the same disk (a local server, or a
Space with persistent storage under GRADIO_TEMP_DIR), and after a restart on an empty disk (a Space's restart: a
new container). Prints whether Gradio accepts the link, whether the page comes back with the run's values (the
generation's caption text) and whether the result image it points to is still served.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]


def start(port: int, temp_dir: str) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_TEMP_DIR=temp_dir, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def reopen(url: str, link: str, caption: str) -> tuple[str, str, str]:
    """(Gradio's verdict on the link, whether the run's values are on the page, the result image's HTTP status)."""
    config = httpx.get(url + "config", params={"deep_link": link}, timeout=30).json()
    values = [c.get("props", {}).get("value") for c in config["components"]]
    restored = any(isinstance(v, str) and caption in v for v in values)
    images = [
        v[0]["image"]["url"] for v in values if isinstance(v, list) and v and isinstance(v[0], dict) and "image" in v[0]
    ]
    status = httpx.get(images[0], timeout=30).status_code if images else "-"
    return config.get("deep_link_state", "?"), "yes" if restored else "no", str(status)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7871)
    args = ap.parse_args()
    url = f"http://127.0.0.1:{args.port}/"
    disk = tempfile.mkdtemp(prefix="deep-link-")
    rows = []
    proc = start(args.port, disk)
    try:
        client = Client(url, verbose=False)
        _, _, info = client.predict(
            model_name="cifar10-resnet20-l2-eps0.5", label="cat", n=1, seed=11, preset="fast", api_name="/generate"
        )
        link = httpx.get(url + "gradio_api/deep_link", params={"session_hash": client.session_hash}).text.strip('"')
        rows.append(("same server, at once", *reopen(url, link, info)))
    finally:
        stop(proc)
    proc = start(args.port, disk)
    try:
        rows.append(("app restarted, same disk", *reopen(url, link, info)))
    finally:
        stop(proc)
    proc = start(args.port, tempfile.mkdtemp(prefix="deep-link-empty-"))
    try:
        rows.append(("app restarted, empty disk (a Space restart)", *reopen(url, link, info)))
    finally:
        stop(proc)
    print(f"deep link {link}\n")
    print(f"| {'reopened':45} | link    | values back | result image |")
    print(f"|{'-' * 47}|---------|-------------|--------------|")
    for case, state, restored, status in rows:
        print(f"| {case:45} | {state:7} | {restored:11} | {status:12} |")


if __name__ == "__main__":
    main()
