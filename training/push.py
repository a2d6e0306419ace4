"""Upload an exported folder: python -m training.push FOLDER --repo-id USER/NAME [--private]

Creates the model repo if needed and uploads the folder in one commit (huggingface_hub's HfApi; log in with
`hf auth login` or set HF_TOKEN).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import HfApi

REQUIRED = ("config.json", "model.safetensors", "README.md")


def push(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    api: HfApi | None = None,
    message: str = "Upload robust classifier (synth format)",
) -> str:
    folder = Path(folder)
    missing = [f for f in REQUIRED if not (folder / f).exists()]
    if missing:
        raise ValueError(
            f"{folder} is not an exported model folder: missing {', '.join(missing)} "
            "(make one with python -m training.export)"
        )
    if repo_id.count("/") != 1:
        raise ValueError(f"repo id must look like USER/NAME, got {repo_id!r}")
    api = api or HfApi()
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=message,
        allow_patterns=["*.json", "*.safetensors", "*.md"],
    )
    return str(getattr(info, "commit_url", url))


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.push", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("folder")
    p.add_argument("--repo-id", required=True)
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    try:
        print(push(args.folder, args.repo_id, args.private))
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
