"""gankit report: a self-contained page that a browser renders without errors."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    run = d / "run"
    assert main(["train", "--out", str(run), "--steps", "40", "--hidden", "16", "--depth", "1",
                 "--eval-every", "20", "--quiet"]) == 0
    assert main(["report", str(run)]) == 0
    return run / "report.html"


def test_report_is_self_contained(report):
    page = report.read_text()
    assert "<h2>Metrics</h2>" in page and "modes" in page and "<h2>Configuration</h2>" in page
    assert 'id="grid"' in page
    assert not re.search(r'src="(?!data:)', page)          # every picture embedded
    assert "http://" not in page and "https://" not in page  # nothing fetched


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a gankit run directory" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
def test_report_in_headless_chromium(report, tmp_path):
    profile = tmp_path / "profile"
    url = report.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=5000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert "<title>report ok</title>" in dom.stdout, dom.stdout[:500]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}2", "--window-size=1200,900",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert img.shape == (900, 1200, 3)
    assert img.std() > 10       # not a blank page: text and pictures are drawn
