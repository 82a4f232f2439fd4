"""The sdist: `python -m build --sdist`, then an install of it with torch present and no build
isolation (what a from-source build such as vLLM's does) builds _C and imports.

The install builds the runtime and _C from scratch in the installer's temporary directory:
their bytes must equal a build of the same sources in another directory (the sdist unpacked,
setup.py build_c there), which is what lets merge-wheels take the runtime from wheels built in
different jobs or directories.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from buildutil import REPO, need_uv, run

pytestmark = pytest.mark.slow

SMOKE = REPO / "tools" / "fleet" / "smoke_wheel.py"
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    result = run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, REPO])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (tarball,) = out.glob("deep_gemm-*.tar.gz")
    return tarball


def test_sdist_holds_every_source_the_build_reads(sdist):
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        members = {name.removeprefix(top + "/") for name in tar.getnames()}
    tracked = subprocess.run(["git", "-C", REPO, "ls-files", "csrc", "deep_gemm", "requirements/torch.txt",
                              "setup.py", "pyproject.toml", "LICENSE", "README.md"],
                             capture_output=True, text=True, check=True).stdout.split()
    missing = sorted(name for name in tracked if (REPO / name).is_file() and name not in members)
    assert not missing, f"{sdist.name} lacks {missing}"
    assert not [name for name in members if name.endswith((".so", ".o"))], "built objects in the sdist"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sdist_installs_builds_and_imports(sdist, tmp_path):
    site = tmp_path / "site-packages"
    result = run([need_uv(), "pip", "install", "--python", sys.executable, "--no-build-isolation", "--no-deps",
                  "--target", site, sdist])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    installed = site / "deep_gemm"
    assert (installed / f"_C{EXT_SUFFIX}").is_file() and (installed / "libdeep_gemm_runtime.so").is_file()
    assert (installed / "include" / "deep_gemm").is_dir(), "the kernel headers were not installed"

    env = dict(os.environ, PYTHONPATH=str(site))
    result = run([sys.executable, SMOKE], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "smoke: ok" in result.stdout

    unpacked = tmp_path / "unpacked"
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    here = tmp_path / "elsewhere"
    result = run([sys.executable, "setup.py", "build_c", "--python", sys.executable, "--output-dir", here], cwd=source)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("libdeep_gemm_runtime.so", f"_C{EXT_SUFFIX}"):
        assert sha256(installed / name) == sha256(here / name), (
            f"{name} built from the sdist by the installer differs from a build of the same sources in "
            f"{source}: the build is not reproducible across directories")
