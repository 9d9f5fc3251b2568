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


def parse_overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE …`` -> config values (YAML-parsed; dashes in keys read as underscores)."""
    import yaml
    return {k.replace("-", "_"): yaml.safe_load(v) for k, _, v in (kv.partition("=") for kv in pairs)}


def preset_config(preset: str | None, *layers: dict):
    """The configuration ``gankit train --preset PRESET --set …`` trains: the preset's options
    (none for ``None``), then each mapping of ``layers`` over them in turn, completed where
    none of them sets an option with the model's and the data set's own defaults (gankit's
    ``with_own_defaults``, as the command applies them); validated."""
    from gankit import Config
    from gankit.config import load_preset, with_own_defaults
    given = dict(load_preset(preset)) if preset else {}
    for layer in layers:
        given.update(layer)
    return Config.from_dict(with_own_defaults(given)[0]).validate()


def train_complete(cfg, out, **kwargs):
    """``gankit.train`` that ends the benchmark when a signal stopped the run: a run cut
    short by SIGINT/SIGTERM returns normally (checkpointed, ``interrupted`` set), and its
    scores must not be recorded as the configuration's."""
    from gankit import train
    run = train(cfg, out=out, **kwargs)
    if run.interrupted:
        raise SystemExit(f"stopped by a signal at step {run.step}; nothing recorded for this run")
    return run


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**environment(), **payload}, indent=2) + "\n")


def score_fid(run_dir, checkpoint, weights: str, extractor: str, n: int = 10_000, bn_stats: str = "auto") -> dict:
    """The FID (``extractor``: ``classifier`` for the domain FID, ``inception`` for the
    standard one) of ``n`` samples of one generator of a checkpoint against the test set,
    with the class shares of the samples; nothing written to the run. ``bn_stats``: G's
    BatchNorm statistics as saved (``running``), recomputed (``standing``), or as the run
    was trained to use them (``auto``, what ``gankit eval`` does)."""
    from gankit.runs import evaluate_run
    ev = evaluate_run(run_dir, ["fid"], n=n, extractor=extractor, checkpoint=str(checkpoint), weights=weights,
                      write=False, bn_stats=bn_stats)
    keep = ("fid", "class_shares", "class_kl", "extractor", "class_judge", "weights", "bn_stats")
    return {k: ev[k] for k in keep if k in ev}


def train_and_score(cfg, run_dir: str | Path, scores: dict | None = None) -> dict:
    """Train ``cfg`` into ``run_dir`` (removed afterwards) and score the last checkpoint with
    the domain FID of 10,000 samples against the test set (gankit's classifier features) and
    the samples' class shares. ``scores`` ``None``: the generator ``gankit eval`` scores, its
    figures beside ``train_seconds``; a mapping name -> (weights, bn_stats) (see
    :func:`score_fid`): each of those generators, its figures under its name."""
    import shutil
    import time

    t0 = time.perf_counter()
    train_complete(cfg, run_dir, progress=False)
    row = {"train_seconds": round(time.perf_counter() - t0, 1)}

    def domain(weights: str, bn_stats: str) -> dict:
        r = score_fid(run_dir, "latest", weights, "classifier", bn_stats=bn_stats)
        return {"domain_fid": r.pop("fid"), **r}

    if scores is None:
        row.update(domain("auto", "auto"))
    else:
        row.update({name: domain(weights, bn_stats) for name, (weights, bn_stats) in scores.items()})
    shutil.rmtree(run_dir)
    return row
