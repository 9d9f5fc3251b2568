"""Checkpoints: atomic save and exact resume.

A checkpoint holds both models, both optimizers, the step, the configuration, the data
source's position and every random-number state the run uses (the global torch, CUDA,
numpy and Python states, and the run's own data and noise generators), so that N steps in
one go and N/2 steps + resume + N/2 steps give bitwise-identical weights.

Files are written by ``rundir.atomic_write_bytes`` (a temporary name in the same folder,
renamed into place), so a crash mid-write never leaves a half checkpoint under a
checkpoint's name. They are read with ``torch.load(weights_only=True)``: no
arbitrary code runs when a checkpoint is opened.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GankitError
from ..rundir import atomic_write_bytes, checkpoint_dir, checkpoint_name, list_checkpoints

FORMAT = "gankit-checkpoint"
VERSION = 2
MAGIC = b"GANKITCK"  # file = MAGIC + 64 hex chars of SHA-256(body) + body (torch.save bytes)

def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every random state: global torch (and CUDA), numpy, Python, and the named generators."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    ns = state["numpy"]
    np.random.set_state({
        "bit_generator": ns["bit_generator"],
        "state": {"key": ns["key"].numpy().astype(np.uint32), "pos": ns["pos"]},
        "has_gauss": ns["has_gauss"],
        "gauss": ns["gauss"],
    })
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, payload: dict[str, Any], keep: int = 3, name: str | None = None) -> Path:
    """Write ``payload`` as ``RUN/checkpoints/step_NNNNNN.pt`` and keep the newest ``keep``
    (or, with ``name``, as ``RUN/checkpoints/NAME``, outside the rotation)."""
    ckpt_dir = checkpoint_dir(run_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = ckpt_dir / (name or checkpoint_name(int(payload["step"])))
    body = buf.getvalue()
    atomic_write_bytes(path, MAGIC + hashlib.sha256(body).hexdigest().encode() + body)
    if name:
        return path
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint, its checksum verified; a file that is not one is a :class:`GankitError`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise GankitError(f"checkpoint {str(path)!r} cannot be read: {exc.strerror}") from None
    if raw[:len(MAGIC)] == MAGIC:
        digest, body = raw[len(MAGIC):len(MAGIC) + 64].decode(errors="replace"), raw[len(MAGIC) + 64:]
        if hashlib.sha256(body).hexdigest() != digest:
            raise GankitError(f"checkpoint {str(path)!r} is damaged (checksum mismatch: truncated or altered)")
    else:
        body = raw
    try:
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise GankitError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}); "
                          "it is damaged or not a gankit checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GankitError(f"{str(path)!r} is not a gankit checkpoint")
    if payload.get("version") != VERSION:
        raise GankitError(f"checkpoint {str(path)!r} has format version {payload.get('version')}, "
                          f"this gankit reads version {VERSION}")
    return payload


def load_latest_good(run_dir: Path, map_location="cpu", warn=None) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint that reads back intact; damaged newer ones are reported through
    ``warn`` (one line each) and skipped, never deleted."""
    found = list_checkpoints(run_dir)
    if not found:
        latest_checkpoint(run_dir)  # raises the "no checkpoint" error
    problems = []
    for path in reversed(found):
        try:
            payload = load_checkpoint(path, map_location)
        except GankitError as exc:
            problems.append(str(exc))
            if warn:
                warn(f"gankit: warning: {exc}; trying the one before")
            continue
        return path, payload
    raise GankitError(f"no intact checkpoint in {str(run_dir)!r}: " + "; ".join(problems))


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest checkpoint of a run, or a :class:`GankitError` saying there is none."""
    found = list_checkpoints(run_dir)
    if not found:
        raise GankitError(f"no checkpoint in {str(run_dir)!r}; there is nothing to resume or sample "
                          "(train first, or point at a run directory that has checkpoints/)")
    return found[-1]
