"""Soak: train for a long time with a checkpoint about every minute, recording the trainer's
resident memory (RSS) over time; then stop it with SIGINT, as a user would.

    python benchmarks/soak.py --minutes 30                       # ring8 MLP, the issue's protocol
    python benchmarks/soak.py --minutes 30 --args "--preset mnist-dcgan"

Writes benchmarks/results/soak.json: RSS samples (every 10 s), the growth from the first
minute to the end, checkpoints written, and the exit status.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--args", default="", help="extra gankit train arguments")
    ap.add_argument("--steps-per-minute", type=int, default=3000,
                    help="checkpoint interval in steps (about a minute of the default run here)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    a = ap.parse_args()
    run = Path(tempfile.mkdtemp(prefix="gankit-soak-")) / "run"
    cmd = [sys.executable, "-m", "gankit", "train", "--out", str(run), "--steps", "100000000",
           "--lr-schedule", "constant", "--checkpoint-every", str(a.steps_per_minute),
           "--eval-every", str(a.steps_per_minute), "--log-every", "1000", "--quiet", *shlex.split(a.args)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0, samples = time.time(), []
    while time.time() - t0 < a.minutes * 60 and p.poll() is None:
        r = rss_mib(p.pid)
        if r is not None:
            samples.append((round(time.time() - t0, 1), round(r, 1)))
        time.sleep(10)
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=600)
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    after_1min = [r for t, r in samples if t >= 60]
    result = {"minutes": a.minutes, "command": cmd, "exit_status": p.returncode, "stderr_tail": err[-500:],
              "rss_mib": samples, "checkpoints_kept": [c.name for c in ckpts],
              "rss_first_minute_mib": after_1min[0] if after_1min else None,
              "rss_end_mib": samples[-1][1] if samples else None,
              "rss_max_mib": max((r for _, r in samples), default=None)}
    if after_1min:
        result["growth_after_first_minute_mib"] = round(samples[-1][1] - after_1min[0], 1)
    write_json(a.out, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_mib", "command")}, indent=2))


if __name__ == "__main__":
    main()
