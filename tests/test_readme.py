"""The README's Python example runs as written, and the README stays within its bounds."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["run"].step == 1000 and tuple(namespace["x"].shape) == (2500, 2)
    assert 0 <= namespace["scores"]["modes"] <= 8 and namespace["again"].config.steps == 1000


def test_readme_is_short_and_cites_only_what_the_repository_holds():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    root = README.parent
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if not link.startswith("http"):
            assert (root / link).exists(), link
