"""Helpers shared by the fleet tests (a plain module: tests/ has no packages)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for sub in ("tools/image", "tools/fleet"):
    path = str(REPO / sub)
    if path not in sys.path:
        sys.path.insert(0, path)


def make_pyenv(root: Path, versions: list[str]) -> Path:
    """A pyenv root with empty bin/pythonX.Y files: enough for host_interpreter()."""
    for version in versions:
        major, minor = version.rstrip("t").split(".")[:2]
        exe = root / "versions" / version / "bin" / f"python{major}.{minor}"
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("")
    return root
