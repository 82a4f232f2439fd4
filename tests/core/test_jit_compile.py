"""JIT compilation without a GPU: NVRTC, the nvcc fallback, errors, memory and disk caches."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BROKEN_SOURCE = r"""
extern "C" __global__ void deep_gemm_kernel(float* out) { out[0] = undefined_thing; }
"""


def test_nvrtc_compiles_wgmma(jit):
    start = time.perf_counter()
    result = jit.compile(name="wgmma_nvrtc")
    elapsed = time.perf_counter() - start
    assert result["compiler"].startswith("nvrtc 13.")
    assert result["from_cache"] is False
    assert result["size"] > 1000
    assert len(jit.entries()) == 1
    print(f"NVRTC compile of a wgmma kernel (incl. first-use dlopen): {elapsed * 1e3:.0f} ms")


def test_nvcc_forced(jit, monkeypatch):
    monkeypatch.setenv("DG_JIT_USE_NVCC", "1")
    jit.init()  # the compiler is chosen at the first compile after init
    result = jit.compile(name="wgmma_nvcc")
    assert result["compiler"].startswith("nvcc 13.")
    assert result["from_cache"] is False and result["size"] > 1000


def test_nvcc_fallback_when_nvrtc_cannot_load(jit, tmp_path, capfd):
    not_a_library = tmp_path / "libnvrtc.so.13"
    not_a_library.write_bytes(b"not an ELF file")
    jit.init(nvrtc_lib=str(not_a_library))
    result = jit.compile(name="wgmma_fallback")
    assert result["compiler"].startswith("nvcc 13.")
    err = capfd.readouterr().err
    assert "NVRTC unavailable" in err and str(not_a_library) in err


def test_no_compiler_at_all(jit, tmp_path):
    not_a_library = tmp_path / "libnvrtc.so.13"
    not_a_library.write_bytes(b"")
    jit.init(nvrtc_lib=str(not_a_library), cuda_home="")
    with pytest.raises(RuntimeError, match="no usable CUDA compiler.*NVRTC.*nvcc"):
        jit.compile(name="nothing")


@pytest.mark.parametrize("use_nvcc", ["0", "1"])
def test_compile_error_carries_the_log(jit, monkeypatch, use_nvcc):
    monkeypatch.setenv("DG_JIT_USE_NVCC", use_nvcc)
    jit.init()
    with pytest.raises(RuntimeError) as error:
        jit.compile(BROKEN_SOURCE, name="broken_kernel[1x2]")
    message = str(error.value)
    assert "broken_kernel[1x2]" in message
    assert ("nvcc 13." if use_nvcc == "1" else "nvrtc 13.") in message
    assert "undefined_thing" in message and "undefined" in message
    assert jit.entries() == []


def test_second_compile_is_served_from_memory_then_disk(jit):
    first = jit.compile(name="cached")
    assert first["from_cache"] is False
    start = time.perf_counter()
    again = jit.compile(name="cached")
    memo = time.perf_counter() - start
    assert again == dict(first, from_cache=True)
    jit.init()  # empties the memory cache: the disk cache answers
    from_disk = jit.compile(name="cached")
    assert from_disk == dict(first, from_cache=True)
    assert len(jit.entries()) == 1
    print(f"memoised jit_compile from Python: {memo * 1e6:.1f} us")


def test_cache_key_covers_source_entry_and_headers(jit, tmp_path):
    include = tmp_path / "include"
    (include / "deep_gemm").mkdir(parents=True)
    header = include / "deep_gemm" / "value.cuh"
    header.write_text("#define DG_TEST_VALUE 1.0f\n")
    source = '#include <deep_gemm/value.cuh>\nextern "C" __global__ void k(float* o) { o[0] = DG_TEST_VALUE; }\n'
    jit.init(include_dir=str(include))
    assert jit.compile(source, entry="k")["from_cache"] is False
    assert jit.compile(source + "\n", entry="k")["from_cache"] is False  # another source
    # A new release of the shipped headers must never reuse the old cubins.
    header.write_text("#define DG_TEST_VALUE 2.0f\n")
    jit.init()
    assert jit.compile(source, entry="k")["from_cache"] is False
    assert len(jit.entries()) == 3


def test_bad_input_is_named(jit, tmp_path):
    with pytest.raises(ValueError, match="invalid arch 'sm_9x0'"):
        jit.compile(name="bad_arch", arch="sm_9x0")
    with pytest.raises(ValueError, match="empty source"):
        jit.compile("", name="empty")
    with pytest.raises(ValueError, match="include_dir '.*missing' is not a directory"):
        jit.init(include_dir=str(tmp_path / "missing"))


def test_missing_entry_point_is_a_compile_success_not_a_crash(jit, wgmma_source):
    # The entry name only matters at load time (get_kernel, GPU); compiling still works.
    assert jit.compile(wgmma_source, name="other_entry", entry="not_there")["size"] > 0


@pytest.mark.slow  # processes importing torch
def test_works_with_torch_loaded_rtld_global(tmp_path):
    """Some launchers import torch with RTLD_GLOBAL; torch's exported std::filesystem
    copies then win symbol lookup (the JIT must not call them: it once crashed here)."""
    script = (
        "import os, sys\n"
        "sys.setdlopenflags(os.RTLD_GLOBAL | os.RTLD_NOW)\n"
        "import torch\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests/core']\n"
        "from conftest import WGMMA_SOURCE\n"
        "from deep_gemm import _C\n"
        "print(_C.jit_compile('rtld_global', WGMMA_SOURCE)['compiler'])\n"
    )
    repo = Path(__file__).resolve().parents[2]
    for use_nvcc in ["0", "1"]:
        env = dict(os.environ, DG_JIT_USE_NVCC=use_nvcc, DG_JIT_CACHE_DIR=str(tmp_path / use_nvcc))
        run = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(repo)],
                             capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("nvcc" if use_nvcc == "1" else "nvrtc")
