"""End to end: the merged wheel installs with pip, uv and installer into a venv of every
local CPython 3.10-3.13 and its extension imports; on 3.9, resolution refuses it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import installer
import pytest
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from wheelfuse.merge_cli import main as merge_main

SUPPORTED = ("cp310", "cp311", "cp312", "cp313")
NAME = "tinyext"
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
    return subprocess.run(list(map(str, args)), check=check, capture_output=True, text=True, env=env)


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
        run(venv_python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))").stdout
    )
    destination = SchemeDictionaryDestination(paths, interpreter=str(venv_python), script_kind="posix")
    (wheel,) = find_links.glob("*.whl")
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"installer"})
    return None


@pytest.mark.parametrize("tool", ["pip", "uv", "installer"])
@pytest.mark.parametrize("abi", SUPPORTED)
def test_installs_and_imports(pythons: dict[str, Path], find_links: Path, tmp_path: Path, abi: str, tool: str) -> None:
    if abi not in pythons:
        pytest.skip(f"no local CPython for {abi}")
    venv_python = make_venv(pythons[abi], tmp_path / "venv")
    install_with(tool, pythons[abi], venv_python, find_links)
    result = run(venv_python, "-c", "import tinyext; print(tinyext.hello())")
    assert result.stdout.strip() == f"spam 3.{abi[3:]}"


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_resolution_refuses_it_on_cp39(pythons: dict[str, Path], find_links: Path, tmp_path: Path, tool: str) -> None:
    if "cp39" not in pythons:
        pytest.skip("no local CPython 3.9")
    venv_python = make_venv(pythons["cp39"], tmp_path / "venv")
    result = install_with(tool, pythons["cp39"], venv_python, find_links, check=False)
    assert result is not None and result.returncode != 0
    expected = "No matching distribution found for tinyext" if tool == "pip" else "`cp39`"
    assert expected in result.stdout + result.stderr
    assert run(venv_python, "-c", "import tinyext", check=False).returncode != 0


# --- installer differential: pip, uv and installer --validate-record all -------------------

# Files each installer writes about itself, and bytecode (compiling is switched off for all).
INSTALLER_OWN = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json", "uv_cache.json"}


@pytest.fixture(scope="session")
def rich_wheel(kit, built_extensions: dict[str, tuple[str, bytes]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fat wheel that uses every part of the format installers handle differently: a
    script to rewrite, data, headers, purelib and platlib, a nested package, an
    executable file, non-ASCII names."""
    directory = tmp_path_factory.mktemp("rich")
    inputs = []
    for abi in SUPPORTED:
        if abi not in built_extensions:
            continue
        suffix, binary = built_extensions[abi]
        data = "tinyext-1.0.data"
        files = {
            f"{NAME}/__init__.py": kit.INIT_PY,
            f"{NAME}/_spam{suffix}": binary,
            f"{NAME}/sub/__init__.py": b"",
            f"{NAME}/sub/caf\u00e9.txt": "caf\u00e9\n".encode(),
            f"{NAME}/run.sh": b"#!/bin/sh\necho run\n",
            f"{data}/scripts/tinyext-tool": b"#!python\nimport tinyext\nprint(tinyext.hello())\n",
            f"{data}/data/share/tinyext/notes.txt": b"notes\n",
            f"{data}/headers/spam.h": b"/* spam */\n",
            f"{data}/purelib/tinyext_pure.py": b"X = 1\n",
            f"{data}/platlib/tinyext_plat.py": b"Y = 2\n",
        }
        inputs.append(
            kit.make_wheel(
                directory / "in",
                f"{abi}-{abi}-manylinux_2_17_x86_64",
                files,
                executable=[f"{NAME}/_spam{suffix}", f"{NAME}/run.sh", f"{data}/scripts/tinyext-tool"],
            )
        )
    if not inputs:
        pytest.skip("no CPython 3.10-3.13 under /root/.pyenv/versions")
    assert merge_main([*map(str, inputs), "-o", str(directory / "out")]) == 0
    (wheel,) = (directory / "out").glob("*.whl")
    return wheel


def installed_tree(venv: Path) -> dict[str, tuple[bool, str]]:
    """Every file of the venv: path -> (executable, sha256 with the venv's path masked)."""
    tree = {}
    for path in sorted(venv.rglob("*")):
        relative = path.relative_to(venv)
        # uv locks the venv it installs into with a `.lock` file at its root.
        if path.is_dir() or "__pycache__" in relative.parts or str(relative) == ".lock":
            continue
        if relative.parent.name.endswith(".dist-info") and relative.name in INSTALLER_OWN:
            continue
        data = path.read_bytes().replace(str(venv).encode(), b"<venv>")
        tree[str(relative)] = (bool(path.stat().st_mode & 0o111), hashlib.sha256(data).hexdigest())
    return tree


def install_file(tool: str, python: Path, venv_python: Path, wheel: Path) -> None:
    if tool == "pip":
        run(python, "-m", "pip", "--python", venv_python, "install", "--no-deps", "--no-compile", wheel)
    elif tool == "uv":
        if UV is None:
            pytest.skip("uv is not installed")
        run(UV, "pip", "install", "--offline", "--no-deps", "--python", venv_python, wheel)
    else:
        # installer's own CLI, run by the venv's interpreter (installer is pure Python).
        installer_home = Path(installer.__file__).parent.parent
        env_path = str(wheel.parent / "installer-only")
        if not Path(env_path).exists():
            shutil.copytree(installer_home / "installer", Path(env_path) / "installer")
        result = subprocess.run(
            [str(venv_python), "-m", "installer", "--validate-record", "all", "--no-compile-bytecode", str(wheel)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": env_path},
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("abi", SUPPORTED)
def test_installers_give_identical_trees(pythons: dict[str, Path], rich_wheel: Path, tmp_path: Path, abi: str) -> None:
    if abi not in pythons:
        pytest.skip(f"no local CPython for {abi}")
    trees = {}
    for tool in ("pip", "uv", "installer"):
        venv_python = make_venv(pythons[abi], tmp_path / tool)
        install_file(tool, pythons[abi], venv_python, rich_wheel)
        assert run(venv_python, "-c", "import tinyext; print(tinyext.hello())").stdout.strip() == f"spam 3.{abi[3:]}"
        trees[tool] = installed_tree(tmp_path / tool)
    # The one known difference: installer puts `.data/headers` where sysconfig's "include"
    # points (<venv>/include/python3.X/<name>/), pip and uv in pip's venv location
    # (<venv>/include/site/python3.X/<name>/). Map it, so everything else must agree.
    minor = f"python3.{abi[3:]}"
    trees["installer"] = {
        p.replace(f"include/{minor}/", f"include/site/{minor}/", 1): v for p, v in trees["installer"].items()
    }
    assert any(p.endswith("/tinyext/sub/caf\u00e9.txt") for p in trees["pip"])
    assert any(p.startswith("bin/tinyext-tool") for p in trees["pip"])
    for tool in ("uv", "installer"):
        only_pip = sorted(set(trees["pip"]) - set(trees[tool]))
        only_other = sorted(set(trees[tool]) - set(trees["pip"]))
        assert (only_pip, only_other) == ([], []), tool
        differ = sorted(p for p in trees["pip"] if trees["pip"][p] != trees[tool][p])
        assert differ == [], (tool, differ)
