"""Fixtures for the fleet tests; tools/image and tools/fleet go on sys.path (fleetutil)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetutil import make_pyenv


@pytest.fixture
def fake_pyenv(tmp_path: Path) -> Path:
    return make_pyenv(tmp_path / "pyenv", ["3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"])


@pytest.fixture
def pyproject(tmp_path: Path):
    def write(requires_python: str | None = ">=3.10,<3.14") -> Path:
        path = tmp_path / "pyproject.toml"
        body = '[project]\nname = "x"\nversion = "1"\n'
        if requires_python is not None:
            body += f'requires-python = "{requires_python}"\n'
        path.write_text(body)
        return path

    return write
