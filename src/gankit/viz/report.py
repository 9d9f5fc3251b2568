"""``gankit report RUN [RUN2 …]``: one self-contained HTML page of a run, or of several
runs side by side.

The page holds, for each run: where it came from (date, versions, command, device,
precision, threads), one table of metrics with readable names and units (the last logged
values and the last ``gankit eval``), every logged value and the learning rates against the
step as vector graphics (SVG: sharp at any zoom), generated images beside real ones, the
run's own pictures, and only the configuration that applies to its model. With several
runs, the configuration differences, the metrics in one table, the curves overlaid and the
grids side by side. Pictures are embedded (data URIs, inline SVG); the page runs one small
script that checks its pictures decoded and writes the result into the title (``report
ok`` or ``report broken: …``) for a browser test.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..errors import GankitError
from ..rundir import EVAL, atomic_write_text, display

# metric -> (readable name, unit, format)
NAMES = {
    "modes": ("modes captured", "", "{:.0f}"), "high_quality": ("high-quality samples", "%", "{:.1%}"),
    "reverse_kl": ("reverse KL to uniform over modes", "nats", "{:.4f}"), "fid": ("Fréchet distance", "", "{:.3f}"),
    "kid": ("KID (MMD², cubic kernel)", "", "{:.5f}"), "kid_std": ("KID spread over subsets", "", "{:.5f}"),
    "precision": ("precision (k-NN manifolds)", "", "{:.3f}"), "recall": ("recall (k-NN manifolds)", "", "{:.3f}"),
    "parzen": ("Parzen log-likelihood", "nats", "{:.1f}"), "parzen_se": ("Parzen standard error", "nats", "{:.1f}"),
    "parzen_sigma": ("Parzen σ", "", "{:.3f}"), "value": ("Ṽ (value of the game)", "nats", "{:.4f}"),
    "loss_d": ("L_D = −Ṽ", "nats", "{:.4f}"), "loss_g": ("L_G", "nats", "{:.4f}"),
    "d_real": ("mean D(x), real", "", "{:.3f}"), "d_fake": ("mean D(G(z)), generated", "", "{:.3f}"),
    "grad_norm_d": ("gradient norm of D", "", "{:.4g}"), "grad_norm_g": ("gradient norm of G", "", "{:.4g}"),
    "lr_d": ("learning rate of D", "", "{:.4g}"), "lr_g": ("learning rate of G", "", "{:.4g}"),
    "examples_per_s": ("training speed", "examples/s", "{:,.0f}"), "wall_time": ("wall time", "s", "{:,.0f}"),
    "class_kl": ("KL of class shares to uniform", "nats", "{:.4f}"), "classes_present": ("classes present", "", "{}"),
    "class_accuracy": ("conditional accuracy (samples of class c judged c)", "%", "{:.1%}"),
    "class_fid_mean": ("per-class Fréchet distance, mean over classes", "", "{:.3f}"),
    "energy": ("energy distance", "", "{:.4g}"), "energy_std": ("energy distance spread over subsets", "", "{:.2g}"),
    "eval_seconds": ("evaluation time", "s", "{:.1f}"), "loss_scale": ("fp16 loss scale", "", "{:g}"),
}
CURVES = (("losses", ("loss_d", "loss_g", "value")), ("discriminator outputs", ("d_real", "d_fake")),
          ("gradient norms", ("grad_norm_d", "grad_norm_g")), ("learning rates", ("lr_d", "lr_g")),
          ("speed", ("examples_per_s",)))
OWN_PICTURES = (("samples.png", "samples (generated)"), ("discriminator.png", "D(x)"), ("losses.png", "losses"))


def fmt(key: str, v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float) and key in NAMES:
        return NAMES[key][2].format(v)
    if isinstance(v, float):
        return repr(v) if abs(v) >= 1e-4 or v == 0 else f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(fmt("", x) for x in v[:12]) + (" …" if len(v) > 12 else "")
    return str(v)


def readable(key: str) -> str:
    name, unit, _ = NAMES.get(key, (key, "", ""))
    return f"{name} ({unit})" if unit and unit != "%" else name


def applicable_config(cfg: dict, image: bool) -> dict:
    """The options that apply to this run: its model's, its optimiser's, its schedule's,
    image options for images, and stabilisers only where they are on."""
    skip = set()
    model_opts = {"mlp": ("hidden", "depth"), "dcgan": ("width",)}
    for model, opts in model_opts.items():
        if cfg.get("model") != model:
            skip |= set(opts)
    if not image:
        skip |= {"image_size", "resize", "channels", "augment", "data_dir"}
    skip |= {"beta1", "beta2"} if cfg.get("optimizer") == "sgd" else {"momentum", "momentum_final", "momentum_ramp"}
    if cfg.get("lr_schedule") != "exponential":
        skip |= {"lr_decay", "lr_min"}
    if not cfg.get("ema_kimg"):
        skip |= {"ema_kimg", "ema_rampup"}
    if not (cfg.get("r1") or cfg.get("r2")):
        skip |= {"r1", "r2", "reg_every"}
    for key, off in (("pack", 1), ("spectral_norm", False), ("augment", ""), ("metrics", ""), ("best_metric", "")):
        if cfg.get(key) == off:
            skip.add(key)
    return {k: v for k, v in cfg.items() if k not in skip}


# ---------------------------------------------------------------------- pieces of HTML
def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(data: bytes, alt: str, ident: str = "") -> str:
    idattr = f' id="{ident}"' if ident else ""
    return (f'<figure><img{idattr} alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(alt)}</figcaption></figure>')


def _svg(fig) -> str:
    """A matplotlib figure as inline SVG (vector: sharp at any size), closed afterwards."""
    import matplotlib.pyplot as plt
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return '<div class="svg">' + text[text.index("<svg"):] + "</div>"


def curves(runs: list[dict]) -> str:
    """Every logged value against the step, one panel per group, the runs overlaid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    evals = sorted({k for r in runs for row in r["rows"] for k, v in row.items()
                    if k in NAMES and isinstance(v, (int, float)) and not any(k in ks for _, ks in CURVES)
                    and k not in ("wall_time", "eval_seconds", "kid_std", "parzen_se", "parzen_sigma")})
    groups = [g for g in CURVES if any(k in row for r in runs for row in r["rows"] for k in g[1])]
    groups += [(readable(k), (k,)) for k in evals]
    if not groups:
        return "<p>No logged values.</p>"
    cols = 3
    fig, axes = plt.subplots((len(groups) + cols - 1) // cols, cols, figsize=(13, 3.3 * ((len(groups) + 2) // 3)),
                             squeeze=False)
    for ax, (title, keys) in zip(axes.flat, groups):
        for r in runs:
            for k in keys:
                pts = [(row["step"], row[k]) for row in r["rows"] if isinstance(row.get(k), (int, float))
                       and "step" in row]
                if pts:
                    label = (f"{r['name']}: " if len(runs) > 1 else "") + readable(k)
                    ax.plot(*zip(*pts), label=label, lw=1.2, marker="." if len(pts) < 30 else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    return _svg(fig)


# ---------------------------------------------------------------------- one run's material
def collect(run_path: str | Path) -> dict:
    """What the page shows of one run (read from its directory; nothing is trained)."""
    from ..runs import info
    d = info(run_path)
    path = Path(run_path)
    ev = path / EVAL
    evaluation = {}
    if ev.is_file():
        try:
            evaluation = json.loads(ev.read_text())
        except json.JSONDecodeError:
            raise GankitError(f"{display(ev)} is not valid JSON; delete it or run gankit eval again") from None
    from ..runs import Run
    rows = Run.open(path).metrics()
    image = (path / "samples").is_dir() or (d["config"].get("model") in ("dcgan", "mnist-paper"))
    return {"name": path.name, "path": path, "info": d, "rows": rows, "eval": evaluation, "image": image,
            "runtime": d.get("runtime") or {}}


def real_grid(run: dict, n: int = 64) -> bytes | None:
    """A grid of ``n`` training images of an image run (None where they cannot be read)."""
    if not run["image"]:
        return None
    try:
        import torch

        from ..config import Config
        from ..data import make_source
        from .grid import grid_png
        source = make_source(Config.from_dict(run["info"]["config"]), torch.device("cpu"))
        x = source.peek(n, torch.Generator().manual_seed(0))
        lo, hi = getattr(source, "value_range", (0.0, 1.0)) or (0.0, 1.0)
        return grid_png(((x - lo) / (hi - lo)).clamp(0, 1))
    except (GankitError, OSError, ValueError, KeyError):
        return None


def provenance(run: dict) -> list[list[str]]:
    rt = run["runtime"]
    rows = [["run", str(run["path"])], ["steps", f"{run['info']['steps_done']} of {run['info']['steps_planned']}"],
            ["checkpoints", ", ".join(run["info"]["checkpoints"]) or "none"]]
    for key, label in (("date", "started"), ("gankit", "gankit"), ("torch", "torch"), ("command", "command"),
                       ("device", "device"), ("precision", "precision"), ("threads", "threads"),
                       ("cpu_kernels", "CPU kernels (gankit.ops)"), ("processes", "processes")):
        if key in rt:
            rows.append([label, fmt(key, rt[key])])
    return rows


def sampler(run: dict, weights: str | None = None) -> str:
    """Which generator drew a run's samples: ``weights`` as ``gankit eval`` recorded it, or,
    for what training logged and drew, the one training samples from (its EMA generator
    when it has one, with recomputed BatchNorm statistics under ``bn_stats: standing``)."""
    cfg = run["info"]["config"]
    ema = (weights == "ema") if weights else bool(cfg.get("ema_kimg"))
    name = "EMA generator" if ema else "G as trained"
    standing = run["eval"].get("bn_stats") if weights else cfg.get("bn_stats")
    return name + (", standing statistics" if standing == "standing" else "")


def metric_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One table: a row per metric, a column per run (the last logged value and, where a
    ``gankit eval`` was run, its value), each column naming the generator it scored."""
    keys: list[str] = []
    for r in runs:
        for src in (r["rows"][-1:] if r["rows"] else []) + ([r["eval"]] if r["eval"] else []):
            keys += [k for k, v in src.items() if k in NAMES and k not in keys and not isinstance(v, list)]
    header = ["metric"]
    for r in runs:
        logged = sampler(r)
        evaluated = sampler(r, r["eval"].get("weights", "raw")) if r["eval"] else ""
        header += [f"{r['name']}: last logged ({logged})", f"{r['name']}: gankit eval ({evaluated or '–'})"] \
            if len(runs) > 1 else \
            ["last logged (step " + str(r["rows"][-1].get("step", "?") if r["rows"] else "–") + f", {logged})",
             "gankit eval" + (f" (step {r['eval'].get('step')}, {r['eval'].get('n')} samples, {evaluated})"
                              if r["eval"] else "")]
    rows = []
    for k in keys:
        row = [readable(k)]
        for r in runs:
            last = next((x[k] for x in reversed(r["rows"]) if k in x), None)
            row += [fmt(k, last) if last is not None else "–", fmt(k, r["eval"][k]) if k in r["eval"] else "–"]
        rows.append(row)
    return header, rows + class_rows(runs)


def class_rows(runs: list[dict]) -> list[list[str]]:
    """A row per class of a conditional run's evaluation: its conditional accuracy."""
    names = next((r["eval"].get("classes") for r in runs if r["eval"] and r["eval"].get("classes")), None)
    if not names:
        return []
    rows = []
    for c, name in enumerate(names):
        for key, label, form in (("class_accuracy_per_class", "conditional accuracy", "{:.1%}"),
                                 ("class_fid_per_class", "Fréchet distance", "{:.3f}")):
            row = [f"{label}, class {name}"]
            for r in runs:
                per = (r["eval"] or {}).get(key) or []
                row += ["–", form.format(per[c]) if c < len(per) else "–"]
            if any(v != "–" for v in row[1:]):
                rows.append(row)
    return rows


def pictures(run: dict, ident: bool) -> str:
    figs = []
    real = real_grid(run)
    for name, title in OWN_PICTURES:
        p = run["path"] / name
        if p.is_file():
            title = f"samples ({sampler(run)})" if name == "samples.png" else title
            figs.append(_png(p.read_bytes(), title, "grid" if ident and name == "samples.png" else ""))
            if name == "samples.png" and real is not None:
                figs.append(_png(real, "real training images"))
    return '<div class="row">' + "".join(figs) + "</div>" if figs else "<p>No pictures.</p>"


def config_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One run: the options that apply to it. Several: only those that differ."""
    cfgs = [applicable_config(r["info"]["config"], r["image"]) for r in runs]
    keys = [k for k in runs[0]["info"]["config"] if any(k in c for c in cfgs)]
    if len(runs) > 1:
        keys = [k for k in keys if len({json.dumps(r["info"]["config"].get(k)) for r in runs}) > 1]
    return ["option", *[r["name"] for r in runs]], [[k, *[fmt(k, r["info"]["config"].get(k)) for r in runs]]
                                                      for k in keys]


# ---------------------------------------------------------------------- the page
def write_report(run_paths, out: str | Path | None = None) -> Path:
    """Write the page for one run (``RUN/report.html``) or a comparison of several (``out``
    needed, default ``report.html`` in the first run)."""
    paths = [run_paths] if isinstance(run_paths, (str, Path)) else list(run_paths)
    runs = [collect(p) for p in paths]
    out = Path(out) if out else Path(paths[0]) / "report.html"
    title = f"gankit run {runs[0]['name']}" if len(runs) == 1 else "gankit: " + " vs ".join(r["name"] for r in runs)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for r in runs:
        parts += [f"<h2>Provenance{': ' + html.escape(r['name']) if len(runs) > 1 else ''}</h2>",
                  _table(["", ""], provenance(r))]
    header, rows = metric_rows(runs)
    parts += ["<h2>Metrics</h2>", _table(header, rows) if rows else "<p>No metrics logged yet.</p>"]
    parts += ["<h2>Curves</h2>", curves(runs)]
    for i, r in enumerate(runs):
        parts += [f"<h2>Samples{': ' + html.escape(r['name']) if len(runs) > 1 else ''}</h2>", pictures(r, i == 0)]
    header, rows = config_rows(runs)
    parts += ["<h2>Configuration" + (" differences" if len(runs) > 1 else "") + "</h2>",
              _table(header, rows) if rows else "<p>The runs share their configuration.</p>"]
    atomic_write_text(out, PAGE.format(title=html.escape(title), body="\n".join(parts)))
    return out


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>report loading</title>
<meta name="description" content="{title}">
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 13px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #555; }}
img {{ width: 420px; image-rendering: pixelated; }}
.svg svg {{ width: 100%; height: auto; }}
</style></head><body>
{body}
<script>
window.addEventListener("load", function () {{
  var bad = Array.prototype.filter.call(document.images,
                                        function (i) {{ return !(i.complete && i.naturalWidth > 0); }});
  document.title = bad.length ? "report broken: " + bad.length + " pictures" : "report ok";
}});
</script>
</body></html>
"""
