"""Everything that reads or writes a run directory, and the one atomic writer.

A run directory holds::

    config.yaml        the fully resolved configuration (feed it back with --config)
    metrics.jsonl      one JSON object per logged step
    runtime.json       what the run actually used: device, precision, threads, CPU kernels
    checkpoints/       step_NNNNNN.pt, the newest few, and best.pt
    eval.json          the last `gankit eval`
    samples.png, discriminator.png, losses.png, plots/, samples/, tensorboard/

Every file gankit writes whole (checkpoints, configuration, evaluation results) goes
through :func:`atomic_write_bytes`: a temporary file in the same folder, fsync, rename, so
that a crash never leaves a half-written file under a real name.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from .config import Config, load_config
from .errors import GankitError

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
RUNTIME = "runtime.json"
EVAL = "eval.json"
CKPT_DIR = "checkpoints"
BEST = "best.pt"
_CKPT_NAME = re.compile(r"^step_(\d{6,})\.pt$")


# ---------------------------------------------------------------------- writing
def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename. A failure (a full
    disk, a read-only folder) is a :class:`GankitError` naming ``path``, and leaves the
    file that was there, if any, as it was.

    A path that names something other than a regular file (``/dev/stdout``, a named pipe)
    is written in place: a rename would replace the device or pipe with a file. A symbolic
    link to a file is followed, so that the file it names is replaced, not the link."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode   # follows links
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except BrokenPipeError:   # `--out /dev/stdout | head`: the command line ends quietly
            raise
        except OSError as exc:
            raise GankitError(f"cannot write {display(path)}: {exc.strerror or exc}") from None
        return
    if mode is not None and path.is_symlink():
        path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise GankitError(f"cannot write {display(path)}: {exc.strerror or exc}; free some space or choose "
                          "another location (the previous file, if any, is intact)") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def display(path: str | Path) -> str:
    """A path for a message: quoted, any bytes that are not UTF-8 escaped."""
    return repr(os.fsdecode(path)).encode("utf-8", "backslashreplace").decode("utf-8")


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def write_config(run_dir: Path, cfg: Config) -> None:
    atomic_write_text(Path(run_dir) / CONFIG, cfg.to_yaml_text())


def read_config(run_dir: Path) -> Config:
    return load_config(Path(run_dir) / CONFIG)


def write_runtime(run_dir: Path, info: dict) -> None:
    write_json(Path(run_dir) / RUNTIME, info)


def read_runtime(run_dir: Path) -> dict:
    """``runtime.json`` as a dict (empty for runs written before it existed or if unreadable)."""
    try:
        d = json.loads((Path(run_dir) / RUNTIME).read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


# ---------------------------------------------------------------------- metrics rows
class MetricsLog:
    """``metrics.jsonl``: appended one row per logged step; rows cut short by a crash are skipped."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / METRICS

    def rows(self, upto: int | None = None) -> list[dict]:
        return read_rows(self.path, upto)

    def append(self, row: dict) -> None:
        try:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        except OSError as exc:
            raise GankitError(f"cannot write {display(self.path)}: {exc.strerror or exc}; free some space "
                              "and resume the run (its checkpoints are intact)") from None

    def truncate(self, step: int) -> list[dict]:
        """Drop the rows after ``step`` (steps a resumed or rolled-back run will redo); the kept rows."""
        kept = self.rows(upto=step)
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept


def read_rows(path: Path, upto: int | None = None) -> list[dict]:
    rows = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(row, dict) and (upto is None or row.get("step", 0) <= upto):
                rows.append(row)
    return rows


# ---------------------------------------------------------------------- checkpoints
def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.pt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CKPT_DIR


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Step checkpoints of a run, oldest first (``best.pt`` is not among them)."""
    return list(checkpoint_steps(run_dir).values())


def checkpoint_steps(run_dir: Path) -> dict[int, Path]:
    """Step checkpoints of a run by their step, oldest first (``best.pt`` is not among them)."""
    ckpt_dir = checkpoint_dir(run_dir)
    if not ckpt_dir.is_dir():
        return {}
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return dict(sorted(found))


def best_checkpoint(run_dir: Path) -> Path | None:
    p = checkpoint_dir(run_dir) / BEST
    return p if p.is_file() else None


# ---------------------------------------------------------------------- naming and creation
def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def next_run_dir(root: Path, cfg: Config) -> Path:
    """``root/NNNNN-data-model``, numbered after the highest existing run."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name.split("-")[0]) for p in root.iterdir() if p.name.split("-")[0].isdigit()]
    return root / f"{(max(nums) + 1) if nums else 0:05d}-{cfg.data.replace(':', '_').replace('/', '_')}-{cfg.model}"


def check_new_run_dir(run_dir: Path, locked: bool = False) -> None:
    """A new run may go to ``run_dir``: absent, or an empty folder that holds no run
    (``locked``: this process holds its lock)."""
    if not run_dir.exists():
        return
    if not locked and in_use(run_dir):
        raise GankitError(f"{display(run_dir)} is in use by another gankit process; wait for it to finish, "
                          "or choose another --out")
    if (is_run_dir(run_dir) or (run_dir / CKPT_DIR).exists()) and not list_checkpoints(run_dir):
        raise GankitError(f"{display(run_dir)} holds a run that stopped before its first checkpoint, so there "
                          "is nothing to resume; delete that folder to reuse it, or choose another --out")
    if is_run_dir(run_dir) or (run_dir / CKPT_DIR).exists():
        raise GankitError(f"{display(run_dir)} already holds a run; pass --resume to continue it, "
                          "or choose another --out")
    if not run_dir.is_dir():
        raise GankitError(f"--out {str(run_dir)!r} exists and is not a directory")
    if any(p.name != LOCK for p in run_dir.iterdir()):
        raise GankitError(f"--out {str(run_dir)!r} is a non-empty directory; choose a new or empty one")


def check_output_location(run_dir: Path, n_params: int, keep: int) -> None:
    """Before training: the run directory can be written, and its disk has room for the
    checkpoints (weights and two optimizer moments in float32, ``keep`` + 2 of them, plus
    64 MiB for pictures and logs)."""
    probe = Path(run_dir).absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise GankitError(f"cannot write under {str(probe)!r} (permission denied or not a folder); "
                          "choose another --out")
    need = n_params * 4 * 3 * (keep + 2) + 64 * 2**20
    free = shutil.disk_usage(probe).free
    if free < need:
        raise GankitError(f"not enough disk space at {str(probe)!r}: a run needs about {need / 2**20:.0f} MiB "
                          f"for its checkpoints, {free / 2**20:.0f} MiB are free; free some space or choose "
                          "another --out")


LOCK = ".lock"


class RunLock:
    """An exclusive lock on a run directory, held by the process that trains into it (an
    ``flock`` on ``RUN/.lock``, released when the process ends, however it ends): a second
    ``gankit train`` into the same directory refuses instead of interleaving its files."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fh = None

    def acquire(self) -> "RunLock":
        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            raise GankitError(f"cannot write in {display(self.path.parent)}: {exc.strerror}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise GankitError(f"{display(self.path.parent)} is in use by another gankit process; wait for it to "
                              "finish, or choose another --out") from None
        self.fh = fh
        return self

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def in_use(run_dir: Path) -> bool:
    """Whether another process holds the run directory's lock now."""
    if not (Path(run_dir) / LOCK).is_file():
        return False
    try:
        RunLock(run_dir).acquire().release()
    except GankitError:
        return True
    return False


def create_run_dir(run_dir: Path) -> None:
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot create run directory {str(run_dir)!r}: {exc.strerror}") from None


def open_run_dir(path: str | Path) -> Path:
    """``path`` as an existing run directory, or a :class:`GankitError` saying what it is."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir() or not is_run_dir(path):
        raise GankitError(f"{str(path)!r} is not a gankit run directory (it has no {CONFIG})")
    return path
