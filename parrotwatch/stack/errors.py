from __future__ import annotations

from pathlib import Path


class StackError(RuntimeError):
    """A component did not start; the message says why and where its log is."""


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text[-lines:])
