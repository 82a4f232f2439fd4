"""`setup.py build_c`: _C for a CPython that has no torch, from the one pinned torch.

The documented per-Python command (README, "Building _C for other CPythons"): it must give a
_C named for that CPython's EXT_SUFFIX that imports there once torch is installed, calls into
the runtime beside it, and refuse a CPython outside Requires-Python, naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildutil import REPO, run, torch_venv

# isort: split
from cpythons import CPython, CPythonError, build_cpythons, host_interpreter, read_requires_python

pytestmark = pytest.mark.slow

PYTHONS = build_cpythons(read_requires_python(REPO / "pyproject.toml"))


def other_interpreter() -> Path:
    """A host CPython of Requires-Python other than the one running the tests."""
    for py in PYTHONS:
        if (py.major, py.minor) == sys.version_info[:2] or py.free_threaded:
            continue
        try:
            _, prefix = host_interpreter(py)
        except CPythonError:
            continue
        return prefix / "bin" / f"python{py.major}.{py.minor}"
    pytest.skip(f"no host CPython of {', '.join(map(str, PYTHONS))} besides this one")


def build_c(*args) -> object:
    return run([sys.executable, "setup.py", "build_c", *args], cwd=REPO)


def test_build_c_for_a_cpython_without_torch(tmp_path):
    python = other_interpreter()
    assert run([python, "-c", "import torch"]).returncode != 0, f"{python} has torch: the test needs one without"
    suffix = run([python, "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"]).stdout.strip()
    out = tmp_path / "out"
    result = build_c("--python", python, "--output-dir", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"_C{suffix}", "libdeep_gemm_runtime.so"])

    venv = torch_venv(tmp_path, python)
    code = (f"import torch, _C; assert _C.__file__.endswith({suffix!r}), _C.__file__; "
            "sources = _C.kernel_sources(); assert sources, 'no kernel sources'; print('build_c ok', len(sources))")
    result = run([venv / "bin" / "python", "-c", code], cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "build_c ok" in result.stdout


def test_build_c_refuses_a_cpython_outside_requires_python():
    try:
        _, prefix = host_interpreter(CPython(3, 9))
    except CPythonError as exc:
        pytest.skip(str(exc))
    result = build_c("--python", prefix / "bin" / "python3.9")
    assert result.returncode != 0
    assert "is CPython 3.9." in result.stderr and "outside deep_gemm's Requires-Python" in result.stderr


def test_build_c_names_an_interpreter_it_cannot_run(tmp_path):
    result = build_c("--python", tmp_path / "python-nonesuch")
    assert result.returncode != 0
    assert f"--python {tmp_path / 'python-nonesuch'}: cannot run it" in result.stderr
