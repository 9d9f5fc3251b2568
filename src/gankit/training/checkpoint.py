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
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.images import available_memory
from ..errors import GankitError, shorten
from ..rundir import atomic_write_bytes, checkpoint_dir, checkpoint_name, display, list_checkpoints

FORMAT = "gankit-checkpoint"
VERSION = 3                  # 3: a plain torch.save file, its SHA-256 in a sidecar
READABLE_VERSIONS = (2, 3)   # 2: MAGIC + 64 hex chars of SHA-256(body) + body
MAGIC = b"GANKITCK"
REQUIRED = ("step", "config", "G", "D", "opt_g", "opt_d", "data_state", "rng", "data_shape")

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
    (or, with ``name``, as ``RUN/checkpoints/NAME``, outside the rotation).

    The file is what ``torch.save`` writes (``torch.load(path, weights_only=True)`` opens
    it); its SHA-256 goes to ``NAME.sha256`` beside it, in ``sha256sum`` format."""
    ckpt_dir = checkpoint_dir(run_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = ckpt_dir / (name or checkpoint_name(int(payload["step"])))
    body = buf.getvalue()
    atomic_write_bytes(path, body)
    atomic_write_bytes(sidecar(path), f"{hashlib.sha256(body).hexdigest()}  {path.name}\n".encode())
    if name:
        return path
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        sidecar(old).unlink(missing_ok=True)
    return path


def drop_optimizer_states(path: Path) -> Path:
    """Rewrite checkpoint ``path`` in place without its optimiser states (about half its
    size): a copy that samples and scores as before, and that ``gankit train --resume``
    refuses (``TrainingState.load_state_dict``). benchmarks/gpu_check.sh's ``SLIM=1``."""
    path = Path(path)
    payload = load_checkpoint(path)
    payload.update(opt_g={}, opt_d={})
    return save_checkpoint(path.parent.parent, payload, name=path.name)


def sidecar(path: Path) -> Path:
    """Where a checkpoint's SHA-256 is kept: ``NAME.pt.sha256``."""
    return Path(path).with_name(Path(path).name + ".sha256")


def read_verified(path: Path) -> bytes:
    """The bytes of a checkpoint, checked against its SHA-256 (in the sidecar, or in the
    header of checkpoints written before the sidecar existed); a :class:`GankitError` for a
    file that is missing, not a regular file, too large for memory, or altered."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise GankitError(f"checkpoint {display(path)} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise GankitError(f"checkpoint {display(path)} is not a regular file (a device, a folder or a pipe)")
    avail = available_memory()
    if avail is not None and st.st_size > 0.8 * avail:
        raise GankitError(f"checkpoint {display(path)} is {st.st_size / 2**30:.1f} GiB, more than the memory "
                          "available; it is not one of gankit's")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GankitError(f"checkpoint {display(path)} cannot be read: {exc.strerror}") from None
    if raw[:len(MAGIC)] == MAGIC:   # the format before version 3: MAGIC + hex digest + body
        digest, body = raw[len(MAGIC):len(MAGIC) + 64].decode(errors="replace"), raw[len(MAGIC) + 64:]
    else:
        body, digest = raw, None
        try:
            digest = sidecar(path).read_text()[:64]
        except (OSError, UnicodeDecodeError):
            pass   # no sidecar (a crash between the two writes): torch's zip reader still checks it
    if digest is not None and hashlib.sha256(body).hexdigest() != digest:
        raise GankitError(f"checkpoint {display(path)} is damaged (checksum mismatch: truncated or altered)")
    return body


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint, its checksum verified and its fields checked; a file that is not
    an intact gankit checkpoint is a :class:`GankitError`."""
    body = read_verified(path)
    try:
        payload = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise GankitError(f"checkpoint {display(path)} cannot be read ({type(exc).__name__}); "
                          "it is damaged or not a gankit checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GankitError(f"{display(path)} is not a gankit checkpoint")
    if payload.get("version") not in READABLE_VERSIONS:
        raise GankitError(f"checkpoint {display(path)} has format version {shorten(payload.get('version'))}, "
                          f"this gankit reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    missing = [k for k in REQUIRED if k not in payload]
    if missing or not all(isinstance(payload[k], dict) for k in ("G", "D", "opt_g", "opt_d", "config", "rng")):
        raise GankitError(f"checkpoint {display(path)} is damaged: "
                          + (f"missing {', '.join(missing)}" if missing else "a field of the wrong type"))
    return payload


def load_latest_good(run_dir: Path, map_location="cpu", warn=None) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint that reads back intact; damaged newer ones are reported through
    ``warn`` (one line each) once an intact one is found, and skipped, never deleted. When
    none is intact, one error says so."""
    found = list_checkpoints(run_dir)
    if not found:
        latest_checkpoint(run_dir)  # raises the "no checkpoint" error
    problems = []
    for path in reversed(found):
        try:
            payload = load_checkpoint(path, map_location)
        except GankitError as exc:
            problems.append(str(exc))
            continue
        for p in problems if warn else ():
            warn(f"{p}; using an earlier one")
        return path, payload
    raise GankitError(f"no intact checkpoint in {display(run_dir)}: all {len(problems)} are damaged "
                      f"(the newest: {problems[0]}); start a new run, or restore a copy of the checkpoints")


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest checkpoint of a run, or a :class:`GankitError` saying there is none."""
    found = list_checkpoints(run_dir)
    if not found:
        raise GankitError(f"no checkpoint in {display(run_dir)}: nothing to resume or sample (a run that "
                          "stopped before its first checkpoint leaves none; delete that folder or train anew "
                          "with another --out)")
    return found[-1]
