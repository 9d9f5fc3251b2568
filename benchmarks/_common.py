"""What every benchmark records beside its figures: the machine, the versions, the command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def environment() -> dict:
    from gankit.bench import environment as gankit_environment
    env = gankit_environment()
    env["command"] = " ".join([os.path.basename(sys.executable)] + sys.argv)
    return env


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**environment(), **payload}, indent=2) + "\n")
