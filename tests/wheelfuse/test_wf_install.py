"""End to end: the merged wheel installs with pip, uv and installer into a venv of every
local CPython 3.10-3.13 and its extension imports; on 3.9, resolution refuses it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from wheelfuse.merge_cli import main as merge_main

SUPPORTED = ("cp310", "cp311", "cp312", "cp313")
UV = shutil.which("uv")


@pytest.fixture(scope="session")
def find_links(native_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = [native_wheels[a] for a in SUPPORTED if a in native_wheels]
    if not inputs:
        pytest.skip("no CPython 3.10-3.13 under /root/.pyenv/versions")
    directory = tmp_path_factory.mktemp("links")
    assert merge_main([*map(str, inputs), "-o", str(directory)]) == 0
    return directory


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Ignore machine-wide pip/uv configuration (e.g. extra find-links): only DIR may be seen.
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
    }
    env.pop("PIP_FIND_LINKS", None)
    env.pop("UV_FIND_LINKS", None)
    return subprocess.run(
        list(map(str, args)), check=check, capture_output=True, text=True, env=env
    )


def make_venv(python: Path, where: Path) -> Path:
    """A bare venv (no pip inside); uv makes one in milliseconds, venv is the fallback."""
    if UV:
        run(UV, "venv", "-q", "--python", python, where)
    else:
        run(python, "-m", "venv", "--without-pip", where)
    return where / "bin" / "python"


def install_with(
    tool: str, python: Path, venv_python: Path, find_links: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str] | None:
    if tool == "pip":
        # The interpreter's own pip, installing into the venv through resolution.
        return run(
            python,
            "-m",
            "pip",
            "--python",
            venv_python,
            "install",
            "--no-index",
            "--find-links",
            find_links,
            "tinyext",
            check=check,
        )
    if tool == "uv":
        if UV is None:
            pytest.skip("uv is not installed")
        return run(
            UV,
            "pip",
            "install",
            "--offline",
            "--no-index",
            "--find-links",
            find_links,
            "--python",
            venv_python,
            "tinyext",
            check=check,
        )
    # installer takes a given file (no tag check, like `uv pip install file.whl`).
    paths = json.loads(
        run(
            venv_python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"
        ).stdout
    )
    destination = SchemeDictionaryDestination(
        paths, interpreter=str(venv_python), script_kind="posix"
    )
    (wheel,) = find_links.glob("*.whl")
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"installer"})
    return None


@pytest.mark.parametrize("tool", ["pip", "uv", "installer"])
@pytest.mark.parametrize("abi", SUPPORTED)
def test_installs_and_imports(
    pythons: dict[str, Path], find_links: Path, tmp_path: Path, abi: str, tool: str
) -> None:
    if abi not in pythons:
        pytest.skip(f"no local CPython for {abi}")
    venv_python = make_venv(pythons[abi], tmp_path / "venv")
    install_with(tool, pythons[abi], venv_python, find_links)
    result = run(venv_python, "-c", "import tinyext; print(tinyext.hello())")
    assert result.stdout.strip() == f"spam 3.{abi[3:]}"


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_resolution_refuses_it_on_cp39(
    pythons: dict[str, Path], find_links: Path, tmp_path: Path, tool: str
) -> None:
    if "cp39" not in pythons:
        pytest.skip("no local CPython 3.9")
    venv_python = make_venv(pythons["cp39"], tmp_path / "venv")
    result = install_with(tool, pythons["cp39"], venv_python, find_links, check=False)
    assert result is not None and result.returncode != 0
    expected = "No matching distribution found for tinyext" if tool == "pip" else "`cp39`"
    assert expected in result.stdout + result.stderr
    assert run(venv_python, "-c", "import tinyext", check=False).returncode != 0
