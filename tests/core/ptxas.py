"""ptxas's report on a generated kernel source, for the tests that check what NVRTC does not
say: MMAs kept asynchronous, accumulators in registers, nothing on a stack. nvcc compiles the
source as the JIT would (the shipped headers, sm_90a) with `-Xptxas -v`."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deep_gemm import _loader

PATHS = _loader.jit_paths()  # what the JIT itself uses: the shipped headers, the nvcc fallback
NVCC = shutil.which("nvcc") or (str(Path(PATHS["cuda_home"], "bin", "nvcc")) if PATHS["cuda_home"] else None)
needs_nvcc = pytest.mark.skipif(NVCC is None or not Path(NVCC).exists(),
                                reason="needs nvcc (CUDA toolkit) for ptxas's report")
# ptxas's notes about MMAs made synchronous behind the source's back.
SERIALISED = re.compile(r"C7514|C7517|C7515|C7520|serialized|is injected")


def report(source: str, tmp_path: Path) -> str:
    """ptxas's verbose output for `source` (which must compile)."""
    (tmp_path / "kernel.cu").write_text(source)
    result = subprocess.run(
        [NVCC, "-std=c++17", "-arch=sm_90a", "-cubin", "-Xptxas", "-v", "-I", str(PATHS["include_dir"]),
         "-o", str(tmp_path / "kernel.cubin"), str(tmp_path / "kernel.cu")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stderr


def serialised_notes(text: str) -> list[str]:
    return [line for line in text.splitlines() if SERIALISED.search(line)]


def stack_frames(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"(\d+) bytes stack frame", text)]


def spill_stores(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"(\d+) bytes spill stores", text)]
