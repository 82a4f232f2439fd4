"""Plain `cibuildwheel --platform linux` in a fresh clone, as README tells a new user to run it.

No CONTAINERS_CONF, no CIBW_* variable, no tools/fleet: pyproject alone must select the CPythons
`make wheels` builds for the pinned torch here (`--print-build-identifiers`) and give one wheel
for each, with its CPython's _C and the runtime, which merge-wheels and check-wheel (over the
CPythons built) then accept. The clone is of the
committed HEAD (what a user gets). The pinned build-time torch is either mounted from the
fleet's cache (for speed, where `make wheels` left one) or, with no cache, fetched by
before-all itself (marker torch_fetch: ~620 MB from PyPI; `make test-cibuildwheel-fresh`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from buildutil import REPO, run

# isort: split
import build_image
import fleet

pytestmark = pytest.mark.slow
CONTAINER_ENGINE = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]["container-engine"]


def clean_env() -> dict[str, str]:
    """This environment without anything that configures podman or cibuildwheel."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("CIBW_", "CONTAINERS_", "DG_"))}


def fleet_torch_site() -> Path | None:
    link = fleet.DEFAULT_CACHE / "torch-site"
    return link.resolve() if (link / ".complete").is_file() else None


def plain_cibuildwheel(tmp_path: Path, torch_site: Path | None) -> list[Path]:
    cibw = Path(sys.executable).with_name("cibuildwheel")
    if not cibw.is_file():
        pytest.skip(f"no cibuildwheel beside {sys.executable} (make dev installs it)")
    image = "localhost/deep-gemm-build:latest"
    if not build_image.image_exists(image):
        pytest.skip(f"no {image}: build it with `.venv/bin/python tools/image/build_image.py` (README)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = clean_env()
    if torch_site is not None:
        # pyproject's podman settings, plus the mount
        args = [*CONTAINER_ENGINE["create-args"], f"--volume={torch_site}:/opt/torch-site:ro"]
        env["CIBW_CONTAINER_ENGINE"] = f"podman; create_args: {shlex.join(args)}; disable_host_mount: true"
    selected = run([cibw, "--platform", "linux", "--print-build-identifiers"], cwd=clone, env=env)
    assert selected.returncode == 0, selected.stderr
    want = fleet.local_pythons(fleet.torch_pin())
    assert selected.stdout.split() == [py.identifier for py in want], (
        "pyproject's [tool.cibuildwheel] build selects other CPythons than tools/fleet builds for the pinned torch")
    abis = sorted(py.abi for py in want)
    result = run([cibw, "--platform", "linux"], cwd=clone, env=env)
    log = result.stdout[-6000:] + result.stderr[-4000:]
    assert result.returncode == 0, log
    if torch_site is None:
        assert "Successfully installed" in result.stdout and "torch-" in result.stdout, (
            "before-all did not fetch the build-time torch:\n" + log)
    wheels = sorted((clone / "wheelhouse").glob("*.whl"))
    assert sorted(abi for w in wheels for abi in fleet.wheel_abis(w)) == abis, log
    assert "isolated environment" not in result.stdout, "the wheels were not built with the image's pinned tools"
    for wheel in wheels:
        abi = fleet.wheel_abis(wheel)[0]
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
        assert "deep_gemm/libdeep_gemm_runtime.so" in names
        assert any(n.startswith(f"deep_gemm/_C.cpython-{abi[2:]}-") for n in names), f"{wheel.name}: no _C for {abi}"
    return wheels


def merged_and_checked(wheels: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "dist"
    env = fleet.wheel_tool_env()
    result = run([*fleet.wheel_tool("merge-wheels"), *wheels, "-o", out], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (merged,) = out.glob("*.whl")
    # the wheels keep the project's Requires-Python (tools/fleet narrows it to its torch's CPythons)
    built = fleet.subset_range(fleet.local_pythons(fleet.torch_pin()))
    result = run([*fleet.wheel_tool("check-wheel"), merged, "--python-range", built], env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_cibuildwheel_with_the_fleets_torch_cache(tmp_path):
    site = fleet_torch_site()
    if site is None:
        pytest.skip(f"no build-time torch cached under {fleet.DEFAULT_CACHE} (make wheels makes it); "
                    "the no-cache path is test_plain_cibuildwheel_fetches_torch")
    merged_and_checked(plain_cibuildwheel(tmp_path, site), tmp_path)


@pytest.mark.torch_fetch
def test_plain_cibuildwheel_fetches_torch(tmp_path):
    merged_and_checked(plain_cibuildwheel(tmp_path, None), tmp_path)
