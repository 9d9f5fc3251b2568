"""The worked examples of docs/extending.md run, in order, in a fresh folder, and each
registration takes effect; the registries are restored afterwards."""

import re
from pathlib import Path

from gankit.registries import DATA, LOSSES, METRICS, MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_extending_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    before = {r.kind: r.names() for r in (DATA, MODELS, LOSSES, METRICS)}
    namespace: dict = {"__name__": "extending_example"}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
        assert "triangle" in DATA and "tiny" in MODELS and "reverse-kl" in LOSSES and "mean_gap" in METRICS
        assert (tmp_path / "runs" / "tiny" / "checkpoints").is_dir()
    finally:
        for registry, name in ((DATA, "triangle"), (MODELS, "tiny"), (LOSSES, "reverse-kl"), (METRICS, "mean_gap")):
            registry.unregister(name)
    assert {r.kind: r.names() for r in (DATA, MODELS, LOSSES, METRICS)} == before
