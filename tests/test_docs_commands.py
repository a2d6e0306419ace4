"""Every `python -m MODULE ...` command the README and docs show is accepted by that module's own argument parser
(parsed only: nothing runs). Usage lines with placeholders (`[...]`, `<...>`, `...`) and bare module names are left
out; the blocks that run as written are tested in test_cli.py and test_app.py."""

import argparse
import re
import runpy
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "training/README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]
NOT_OURS = ("pytest", "benchmarks.NAME", "pip")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        blocks = re.findall(r"```(?:bash|sh|shell)?\n(.*?)```", text, re.S)
        lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
        inline = re.findall(r"`(python -m [^`]+)`", re.sub(r"\s*\n\s*", " ", text))
        for cmd in [*inline, *lines]:
            cmd = re.split(r"\s(?:&&|\||;|>|#)\s?", cmd.strip())[0].strip()
            if not cmd.startswith("python -m ") or re.search(r"\[|<|\.\.\.|\bNAME\b", cmd):
                continue
            if cmd.split()[2] not in NOT_OURS and len(cmd.split()) > 3:  # (a bare `python -m X` names the module)
                found.append((doc, cmd))
    return sorted(set(found))


class Parsed(Exception):
    pass


@pytest.mark.parametrize(("doc", "command"), documented_commands())
def test_a_documented_command_parses(doc, command, monkeypatch):
    module, *args = shlex.split(command)[2:]
    original = argparse.ArgumentParser.parse_known_args
    depth = []

    def parse_then_stop(self, *a, **kw):  # the outermost parser's answer ends the run (a subcommand's is inside it)
        depth.append(1)
        try:
            result = original(self, *a, **kw)
        finally:
            depth.pop()
        if not depth:
            raise Parsed
        return result

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_then_stop)
    monkeypatch.setattr("sys.argv", [module, *args])
    with pytest.raises(Parsed):
        runpy.run_module(module, run_name="__main__", alter_sys=True)


def test_the_docs_show_commands():
    assert len(documented_commands()) > 40
