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
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    toy, img = d / "toy", d / "img"
    assert main(["train", "--out", str(toy), "--steps", "40", "--hidden", "16", "--depth", "1",
                 "--eval-every", "20", "--quiet"]) == 0
    assert main(["eval", str(toy), "--n", "300"]) == 0
    assert main(["train", "--out", str(img), "--data", "fake:1,28,28", "--model", "dcgan", "--width", "8",
                 "--steps", "6", "--eval-every", "3", "--lr-decay", "1.000004", "--lr-schedule", "exponential",
                 "--quiet"]) == 0
    return toy, img


@pytest.fixture(scope="module")
def report(runs):
    assert main(["report", str(runs[0])]) == 0
    return runs[0] / "report.html"


def test_report_is_self_contained(report):
    page = report.read_text()
    assert "<h2>Metrics</h2>" in page and "modes captured" in page and "<h2>Configuration</h2>" in page
    assert page.count("<h2>Metrics</h2>") == 1                  # one metric table
    assert 'id="grid"' in page and "<svg" in page               # samples, and curves as vector graphics
    assert "learning rate of G" in page and "high-quality samples" in page
    assert not re.search(r'src="(?!data:)', page)               # every picture embedded
    assert not re.search(r'(src|href)=["\']https?://', page)    # nothing fetched
    assert "torch" in page and "command" in page and "precision" in page   # provenance
    assert "<td>width</td>" not in page and "<td>hidden</td>" in page      # only the mlp's options


def test_image_report_shows_real_beside_generated_and_exact_values(runs):
    assert main(["report", str(runs[1])]) == 0
    page = (runs[1] / "report.html").read_text()
    assert "real training images" in page and "samples (G as trained)" in page
    assert "1.000004" in page                                   # not rounded to 1
    assert "<td>hidden</td>" not in page and "<td>width</td>" in page


def test_comparison_of_runs(runs, tmp_path):
    out = tmp_path / "cmp.html"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    page = out.read_text()
    assert "toy vs img" in page and "Configuration differences" in page
    assert "<td>model</td><td>mlp</td><td>dcgan</td>" in page
    assert "toy: last logged (G as trained)" in page and "img: last logged (G as trained)" in page
    assert "toy: gankit eval (G as trained)" in page and "img: gankit eval (–)" in page


def test_report_names_the_generator_of_every_figure(tmp_path):
    """A run with an EMA generator: its pictures, its logged metrics and its gankit eval come
    from the average, and the page says so; an eval of G as trained says that instead."""
    run = tmp_path / "ema"
    assert main(["train", "--out", str(run), "--steps", "40", "--hidden", "16", "--depth", "1", "--ema-kimg", "1",
                 "--eval-every", "20", "--quiet"]) == 0
    assert main(["eval", str(run), "--n", "300"]) == 0
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "samples (EMA generator)" in page
    assert "last logged (step 40, EMA generator)" in page and "300 samples, EMA generator)" in page
    assert main(["eval", str(run), "--n", "300", "--weights", "raw"]) == 0
    assert main(["report", str(run)]) == 0
    assert "300 samples, G as trained)" in (run / "report.html").read_text()


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
