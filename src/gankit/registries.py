"""Named extension points: data sets, models, generator losses and metrics.

Each subsystem registers what it provides under a name (``data/``, ``models/``,
``objectives.py``, ``evaluate.py``); the configuration validates option values against
these registries without importing the subsystems, so that ``config`` depends on nothing
but this module. Importing :mod:`gankit` imports every subsystem, so the registries are
full before any configuration is validated. ``docs/extending.md`` shows how to add one of
each.

    from gankit.registries import MODELS

    @MODELS.register("tiny", doc="one hidden layer")
    def build_tiny(cfg, shape):
        return TinyG(...), TinyD(...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import GankitError, shorten


@dataclass(frozen=True)
class Entry:
    """One registered name: the object it stands for, a line of documentation, and
    whatever else the registry's users need to know about it (``meta``)."""

    name: str
    obj: Any
    doc: str = ""
    meta: dict = field(default_factory=dict)


class Registry:
    """A mapping of names to entries, filled by ``register`` (as a decorator or a call)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, obj: Any = None, *, doc: str = "", replace: bool = False, **meta):
        """Register ``obj`` as ``name``; without ``obj``, a decorator that registers what it decorates."""
        def add(o):
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True to replace it)")
            self._entries[name] = Entry(name, o, doc, dict(meta))
            return o
        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def listed(self) -> list[str]:
        """The names to offer a user: all but those registered with ``hidden=True`` (the
        placeholders of runs whose models or data were given in Python)."""
        return [n for n in self.names() if not self._entries[n].meta.get("hidden")]

    def entry(self, name: str) -> Entry:
        """The entry of ``name``, or a :class:`GankitError` listing the registered names."""
        if name not in self._entries:
            raise GankitError(f"unknown {self.kind} {shorten(name)}; choose one of: {', '.join(self.listed())}")
        return self._entries[name]

    def get(self, name: str) -> Any:
        return self.entry(name).obj


class DataRegistry(Registry):
    """Data sets are named (``ring8``, ``mnist``) or given as ``prefix:argument``
    (``folder:DIR``); a prefix entry is registered with ``prefix=True`` and may carry a
    ``check(spec)`` that validates the argument's syntax (files are read only at training)."""

    def names(self) -> list[str]:
        return [n for n, e in self._entries.items() if not e.meta.get("prefix")]

    def listed(self) -> list[str]:
        return [n for n in self.names() if not self._entries[n].meta.get("hidden")]

    def prefixes(self) -> list[str]:
        return [n for n, e in self._entries.items() if e.meta.get("prefix")]

    def lookup(self, spec: str) -> Entry:
        """The entry a data spec names: the spec itself, or its ``prefix:``."""
        if not isinstance(spec, str):
            raise GankitError(f"data must be a string, got {shorten(spec)}")
        e = self._entries.get(spec)
        if e is not None and not e.meta.get("prefix"):
            return e
        prefix, sep, arg = spec.partition(":")
        e = self._entries.get(prefix)
        if sep and arg and e is not None and e.meta.get("prefix"):
            return e
        raise GankitError(f"unknown data set {shorten(spec)}; {_path_hint(spec)}choose one of: "
                          f"{', '.join(sorted(self.listed()))}, or {', '.join(p + ':…' for p in self.prefixes())}")

    def check(self, spec: str) -> None:
        """Syntax of a data spec; raises :class:`GankitError` naming what is wrong."""
        e = self.lookup(spec)
        if e.meta.get("check"):
            e.meta["check"](spec)


def _path_hint(spec: str) -> str:
    """When a data spec without a prefix is an existing file or folder, the prefixes that
    read such a path (a user's first try is often the bare path)."""
    import os
    if os.path.isdir(spec):
        return f"it is a folder: give folder:{spec} (images), idx:{spec} (IDX files) or cifar10:{spec}; "
    if os.path.isfile(spec):
        ext = os.path.splitext(spec)[1].lower()
        if ext in (".npy", ".npz"):
            return f"it is a file: give npz:{spec} (images) or points:{spec} (N×d points); "
        if ext == ".csv":
            return f"it is a file: give points:{spec} (N×d points); "
    return ""


DATA = DataRegistry("data set")        # obj: build(cfg, device) -> a data source
MODELS = Registry("model")             # obj: build(cfg, data_shape) -> (G, D)
LOSSES = Registry("generator loss")    # obj: loss(fake_logits) -> scalar tensor
METRICS = Registry("metric")           # obj: compute(scorer) -> dict; meta: produces, lower_is_better


def metric_outputs() -> dict[str, bool]:
    """Every value a registered metric writes, and whether lower is better for it."""
    out: dict[str, bool] = {}
    for name in METRICS:
        e = METRICS.entry(name)
        out.update(e.meta.get("produces", {name: True}))
    return out


def parse_metric_list(text: str | list | tuple) -> list[str]:
    """``"fid,kid"`` (or a list) as registered metric names; an unknown one is a GankitError."""
    names = [m.strip() for m in text.split(",") if m.strip()] if isinstance(text, str) else list(text)
    for m in names:
        METRICS.entry(m)
    return names
