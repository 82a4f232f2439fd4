"""deep_gemm on a free-threaded CPython: _C keeps the GIL off, and threads call it at once.

Uses a free-threaded interpreter from tools/cpython's cache (3.13t today: the 3.14 source is
not reachable from here, see tools/cpython/README.md) and skips, saying how to build one, when
there is none. Builds a deep_gemm wheel for it against the one pinned torch, installs it with
that torch into a fresh venv, then runs scripts/free_threaded_calls.py there.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import build_cpython as bc
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "scripts" / "free_threaded_calls.py"
TORCH_PIN = next(line for line in (ROOT / "requirements/torch.txt").read_text().splitlines() if line.startswith("torch"))


def free_threaded_python() -> Path:
    for version in sorted(bc.SOURCES, reverse=True):
        plan = bc.make_plan(version, True)
        if bc.cached(plan) is not None:
            return plan.python
    pytest.skip("no free-threaded CPython in tools/cpython's cache; build one with "
                "`python tools/cpython/build_cpython.py --version 3.13 --free-threaded --print-prefix`")


def uv(*args, **kw):
    return subprocess.run([sys.executable, "-m", "uv", *map(str, args)], capture_output=True, text=True, **kw)


def test_import_keeps_the_gil_off_and_threads_share_c(tmp_path):
    python = free_threaded_python()
    torch_site = Path(__import__("torch").__file__).resolve().parents[1]
    source = tmp_path / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", source], input=archive, check=True)
    built = uv("build", "--wheel", "--python", python, "-o", tmp_path / "dist", source,
               env=os.environ | {"DG_TORCH_SITE": str(torch_site)})
    assert built.returncode == 0, built.stderr[-3000:]
    venv = tmp_path / "venv"
    assert uv("venv", "-q", "-p", python, venv).returncode == 0
    wheel = next((tmp_path / "dist").glob("deep_gemm-*.whl"))
    installed = uv("pip", "install", "-q", "-p", venv / "bin" / "python", TORCH_PIN, wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    run = subprocess.run([venv / "bin" / "python", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                         env=os.environ | {"DG_JIT_CACHE_DIR": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["gil_after_import"] is False and report["gil_at_end"] is False, report
    assert report["errors"] == [] and report["compiled"] == report["threads"] == 16, report
