"""The build image pre-installs exactly the build requirements pyproject.toml declares.

The fleet builds with `--no-isolation` (see [tool.cibuildwheel]), so the image's
copy of each requirement is the one that builds the wheels.
"""
import shlex
import tomllib

from packaging.markers import default_environment
from packaging.requirements import Requirement

from fleetutil import REPO as ROOT  # puts tools/fleet on sys.path

# isort: split
import torches

CIBW_LINUX = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["linux"]


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


def test_before_all_fetches_the_torch_the_fleet_locks():
    """Plain cibuildwheel's before-all installs the build-time torch with pip for the CPython and
    platform tools/fleet locks it for (torches.SITE_PYTHON / SITE_PLATFORM), from the same lock."""
    fetch = next(cmd for cmd in CIBW_LINUX["before-all"] if "--target /opt/torch-site" in cmd)
    args = shlex.split(fetch.split("||", 1)[1])
    python_version = args[args.index("--python-version") + 1]
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    arch, _, glibc = torches.SITE_PLATFORM.partition("-")
    assert python_version == torches.SITE_PYTHON
    assert platforms[0] == f"{glibc}_{arch}", f"pip fetches for {platforms[0]}, the lock is for {torches.SITE_PLATFORM}"
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:"):
        assert flag in args
    lock = args[args.index("-r") + 1]
    assert lock.startswith(f"tools/fleet/{torches.SITE_LOCKS.name}/torch-"), lock
    assert torches.site_lock(torches.default_torch()).is_file()
