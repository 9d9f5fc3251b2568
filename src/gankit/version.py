"""gankit's version, and the command line that started this process (a module of its own,
so that anything may import it)."""

import sys
from pathlib import Path

__version__ = "0.1.0"


def command_line(argv: list[str] | None = None) -> str:
    """The command as the user typed it, for provenance records: ``gankit train …`` from the
    console script, ``python -m gankit train …`` when run as a module (whose ``argv[0]`` is
    the path of ``gankit/__main__.py``), the script's name otherwise."""
    argv = sys.argv if argv is None else argv
    head = Path(argv[0]).name if argv and argv[0] else "python"
    if head == "__main__.py" and Path(argv[0]).parent.name == "gankit":
        head = "python -m gankit"
    return " ".join([head, *argv[1:]])
