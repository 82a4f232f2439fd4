"""End to end: the merged fat wheel in dist/ (built by `make wheels`), as users get it.

- installs into a fresh venv of every CPython in Requires-Python, through resolution
  (`--no-index --find-links dist deep_gemm`), with uv and with pip; `import deep_gemm`
  then loads that CPython's _C and a call crosses into it (tools/fleet/smoke_wheel.py);
- an interpreter below Requires-Python (3.9) is refused at install time by both;
- vendored as host_pkg/third_party/deep_gemm (as vLLM does) it imports and works;
- removing one CPython's _C from the wheel makes check-wheel fail, naming that CPython;
- `twine check --strict` passes.

torch 2.11 comes from uv's cache (or PyPI) into each venv; deep_gemm comes only from dist/.
These skip, saying why, when dist/ has no wheel or the host lacks an interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fleetutil import REPO  # puts tools/image and tools/fleet on sys.path

# isort: split
import fleet
from cpythons import CPython, CPythonError, host_interpreter

pytestmark = pytest.mark.slow

# `make test-torch TORCH=X` sets DG_TEST_TORCH: the wheel `make wheels-torch TORCH=X` wrote
TORCH_VERSION = os.environ.get("DG_TEST_TORCH") or fleet.torch_pin()
DIST = fleet.output_dirs(TORCH_VERSION)[1]
SMOKE = REPO / "tools" / "fleet" / "smoke_wheel.py"
PYTHONS = fleet.local_pythons(TORCH_VERSION)
TORCH = f"torch=={TORCH_VERSION}"


def merged_wheel() -> Path:
    wheels = sorted(DIST.glob("deep_gemm-*.whl"))
    if not wheels:
        pytest.skip(f"no merged wheel in {DIST}: run `make wheels` (tools/fleet) first")
    if len(wheels) > 1:
        pytest.fail(f"{DIST} holds {len(wheels)} deep_gemm wheels; the fleet leaves exactly one")
    return wheels[0]


def interpreter(py: CPython) -> Path:
    try:
        version, prefix = host_interpreter(py)
    except CPythonError as exc:
        pytest.skip(str(exc))
    return prefix / "bin" / f"python{py.major}.{py.minor}"


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def need_uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    return uv


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """A find-links directory holding only the merged wheel."""
    d = tmp_path_factory.mktemp("links")
    shutil.copy2(merged_wheel(), d)
    return d


def torch_venv(base: Path, py: CPython) -> Path:
    """A fresh venv of *py* with the pinned torch (from uv's cache) but no deep_gemm."""
    uv = need_uv()
    venv = base / f"venv-{py.abi}"
    result = run([uv, "venv", "--seed", "--python", interpreter(py), venv])
    assert result.returncode == 0, result.stderr
    result = run([uv, "pip", "install", "--python", venv / "bin" / "python", TORCH])
    assert result.returncode == 0, f"installing {TORCH} into {venv} failed:\n{result.stderr[-3000:]}"
    return venv


def smoke(venv: Path, cwd: Path, env: dict | None = None) -> None:
    result = run([venv / "bin" / "python", SMOKE], cwd=cwd, env=env)
    assert result.returncode == 0, f"{venv}: smoke test failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "smoke: ok" in result.stdout


@pytest.mark.parametrize("py", PYTHONS, ids=str)
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_and_import(py, installer, wheel_dir, tmp_path):
    merged_wheel()
    venv = torch_venv(tmp_path, py)
    python = venv / "bin" / "python"
    if installer == "uv":
        cmd = [need_uv(), "pip", "install", "--python", python, "--no-index", "--find-links", wheel_dir, "deep_gemm"]
    else:
        cmd = [python, "-m", "pip", "install", "--no-index", "--find-links", wheel_dir, "deep_gemm"]
    # without the machine's pip configuration: its global constraints file caps torch at 2.14.1,
    # which would refuse a wheel for a newer torch (make test-torch TORCH=2.15.0) for that reason
    result = run(cmd, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    assert result.returncode == 0, f"{installer} refused the merged wheel on {py}:\n{result.stderr[-3000:]}"
    smoke(venv, cwd=tmp_path)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_python_39_is_refused(installer, wheel_dir, tmp_path):
    merged_wheel()
    uv = need_uv()
    py39 = CPython(3, 9)
    venv = tmp_path / "venv39"
    assert run([uv, "venv", "--seed", "--python", interpreter(py39), venv]).returncode == 0
    python = venv / "bin" / "python"
    if installer == "uv":
        cmd = [uv, "pip", "install", "--python", python, "--no-index", "--find-links", wheel_dir, "deep_gemm"]
    else:
        cmd = [python, "-m", "pip", "install", "--no-index", "--find-links", wheel_dir, "deep_gemm"]
    result = run(cmd)
    assert result.returncode != 0, f"{installer} installed the fat wheel on 3.9:\n{result.stdout}"
    assert run([python, "-c", "import deep_gemm"]).returncode != 0


def test_vendored_under_host_package(tmp_path):
    """vLLM-style vendoring: the wheel's deep_gemm/ copied to host_pkg/third_party/deep_gemm."""
    wheel = merged_wheel()
    py = PYTHONS[-1]
    venv = torch_venv(tmp_path, py)
    root = tmp_path / "app"
    target = root / "host_pkg" / "third_party"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("deep_gemm/"):
                z.extract(name, target)
    for init in (root / "host_pkg" / "__init__.py", target / "__init__.py"):
        init.write_text("")
    for so in (target / "deep_gemm").glob("*.so"):
        so.chmod(0o755)
    code = (
        "import host_pkg.third_party.deep_gemm as dg, sys, sysconfig; "
        "assert dg._C.__file__.endswith(sysconfig.get_config_var('EXT_SUFFIX')), dg._C.__file__; "
        "assert 'host_pkg' in dg.__file__; "
        "import torch; a = torch.zeros((64, 128), dtype=torch.bfloat16); "
        "b = torch.zeros((128, 128), dtype=torch.float8_e4m3fn); d = torch.empty((64, 128), dtype=torch.bfloat16)\n"
        "try:\n    dg.fp8_gemm_nt((a, torch.ones((64, 1))), (b, torch.ones((1, 1))), d)\n"
        "except TypeError as e:\n    assert 'a[0] must have dtype' in str(e), e\n"
        "else:\n    raise SystemExit('no TypeError from _C')\n"
        "print('vendored ok')"
    )
    env = dict(os.environ, PYTHONPATH=str(root))
    result = run([venv / "bin" / "python", "-c", code], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vendored ok" in result.stdout


def test_check_wheel_fails_without_one_c(tmp_path):
    """Drop one CPython's _C (and its RECORD line): check-wheel must refuse, naming it."""
    wheel = merged_wheel()
    victim_py = PYTHONS[1] if len(PYTHONS) > 1 else PYTHONS[0]
    marker = f"cpython-{victim_py.major}{victim_py.minor}-"
    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as dst:
        victims = [n for n in src.namelist() if n.startswith("deep_gemm/_C.") and marker in n]
        assert victims, f"{wheel.name} has no _C for {victim_py}"
        for info in src.infolist():
            if info.filename in victims:
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                data = b"".join(
                    line for line in data.splitlines(keepends=True) if not any(v.encode() in line for v in victims)
                )
            dst.writestr(info, data)
    good = run([*fleet.wheel_tool("check-wheel"), wheel], env=fleet.wheel_tool_env())
    assert good.returncode == 0, f"check-wheel rejects the unmodified wheel:\n{good.stdout}\n{good.stderr}"
    bad = run([*fleet.wheel_tool("check-wheel"), broken], env=fleet.wheel_tool_env())
    assert bad.returncode != 0, f"check-wheel accepted a wheel without {victims}:\n{bad.stdout}"
    assert victim_py.abi in bad.stdout + bad.stderr


def test_twine_check_passes():
    """The merged wheel's metadata renders and is uploadable (what PyPI checks first)."""
    wheel = merged_wheel()
    result = run([sys.executable, "-m", "twine", "check", "--strict", wheel])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
