"""Helpers shared by the packaging tests (a plain module, imported by name like tests/fleet/fleetutil.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for sub in ("tools/image", "tools/fleet"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def need_uv() -> str:
    """The dev env's uv (beside this interpreter), else one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    uv = str(beside) if beside.is_file() else shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (make dev installs it into .venv)")
    return uv


def torch_venv(base: Path, python: Path) -> Path:
    """A fresh venv of *python* with the pinned torch (from uv's cache, else PyPI)."""
    import torches  # tools/fleet: the one reader of the torch pin

    uv = need_uv()
    venv = base / f"venv-{python.name}"
    result = run([uv, "venv", "--python", python, venv])
    assert result.returncode == 0, result.stderr
    result = run([uv, "pip", "install", "--python", venv / "bin" / "python", f"torch=={torches.default_torch()}"])
    assert result.returncode == 0, f"installing torch into {venv} failed:\n{result.stderr[-3000:]}"
    return venv
