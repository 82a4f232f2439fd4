"""The build image pre-installs exactly the build requirements pyproject.toml declares.

The fleet builds with `--no-isolation` (see [tool.cibuildwheel]), so the image's
copy of each requirement is the one that builds the wheels.
"""
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def image_pins(python_version: str) -> dict[str, str]:
    env = default_environment() | {"python_version": python_version, "python_full_version": python_version + ".0"}
    pins = {}
    for line in (ROOT / "tools/image/requirements-cpython.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            pins[req.name] = str(req.specifier)
    return pins


def test_build_system_requirements_are_in_the_image():
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for python_version in ("3.10", "3.13"):
        pins = image_pins(python_version)
        for text in build_system:
            req = Requirement(text)
            assert pins.get(req.name) == str(req.specifier), (
                f"pyproject.toml builds with {text}, the image's CPython {python_version} has "
                f"{req.name}{pins.get(req.name, ' (missing)')}: update tools/image/requirements-cpython.in")


def test_fleet_builds_without_isolation():
    cibw = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    assert "--no-isolation" in cibw["build-frontend"]
