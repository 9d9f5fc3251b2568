"""``gankit report RUN``: one self-contained ``report.html`` (pictures embedded as data URIs).

It holds the configuration, a metric table (the last evaluation in ``metrics.jsonl`` and
``eval.json`` when present), the loss curves, the sample grids, and the 1-D/2-D pictures.
The page runs one small script that checks its own pictures decoded, and writes the result
into the document title (``report ok`` or ``report broken: …``) so that a browser test can
read it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..errors import GankitError

PICTURES = (("samples.png", "Samples"), ("discriminator.png", "Discriminator"), ("losses.png", "Losses"))


def _img(path: Path, alt: str, ident: str = "") -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    idattr = f' id="{ident}"' if ident else ""
    return (f'<figure><img{idattr} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(alt)}</figcaption></figure>')


def _table(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_report(run_path: str | Path, out: str | Path | None = None) -> Path:
    from ..runs import info

    d = info(run_path)
    run = Path(run_path)
    out = Path(out) if out else run / "report.html"
    metrics = {}
    if d["last_eval"]:
        metrics.update({k: v for k, v in d["last_eval"].items()})
    ev = run / "eval.json"
    if ev.is_file():
        try:
            metrics.update({f"eval: {k}": v for k, v in json.loads(ev.read_text()).items() if k != "run"})
        except json.JSONDecodeError:
            raise GankitError(f"{ev} is not valid JSON; delete it or run gankit eval again") from None
    last = d["last_metrics"]
    parts = [f"<h1>gankit run {html.escape(run.name)}</h1>",
             f"<p>{d['steps_done']} of {d['steps_planned']} steps done; checkpoints: "
             f"{html.escape(', '.join(d['checkpoints']) or 'none')}</p>"]
    if metrics:
        parts += ["<h2>Metrics</h2>", _table(metrics)]
    if last:
        parts += ["<h2>Last logged step</h2>", _table(last)]
    pics = []
    for name, title in PICTURES:
        if (run / name).is_file():
            pics.append(_img(run / name, title, ident="grid" if name == "samples.png" else ""))
    grids = sorted((run / "samples").glob("step_*.png")) + sorted((run / "plots").glob("samples_step_*.png"))
    if pics:
        parts += ["<h2>Pictures</h2>", '<div class="row">' + "".join(pics) + "</div>"]
    if grids:
        shown = grids if len(grids) <= 6 else grids[:: max(1, len(grids) // 6)][:6]
        parts += ["<h2>Progress</h2>", '<div class="row">' + "".join(_img(p, p.stem.replace("_", " ")) for p in shown)
                  + "</div>"]
    parts += ["<h2>Configuration</h2>", _table(d["config"])]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>report loading</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 13px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #555; }}
img {{ max-width: 560px; image-rendering: pixelated; }}
</style></head><body>
{''.join(parts)}
<script>
window.addEventListener("load", function () {{
  var bad = Array.prototype.filter.call(document.images,
                                        function (i) {{ return !(i.complete && i.naturalWidth > 0); }});
  document.title = bad.length ? "report broken: " + bad.length + " pictures" : "report ok";
}});
</script>
</body></html>
"""
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
