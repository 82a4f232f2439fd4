"""Shared fixtures for the JIT tests: a fresh JIT state per test and sample kernels."""
from __future__ import annotations

from pathlib import Path

import pytest

from deep_gemm import _C, _loader

# One warpgroup MMA on e4m3 operands: needs sm_90a, compiles without a GPU.
WGMMA_SOURCE = r"""
#include <cuda_bf16.h>
#include <cuda_fp8.h>

extern "C" __global__ void deep_gemm_kernel(float* out, unsigned long long desc_a,
                                            unsigned long long desc_b) {
    float d[8] = {0};
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]),
          "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "l"(desc_a), "l"(desc_b), "r"(1));
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    for (int i = 0; i < 8; ++i)
        out[threadIdx.x * 8 + i] = d[i];
}
"""


class Jit:
    """_C initialised with a private cache directory (and optionally other paths)."""

    def __init__(self, cache_dir: Path) -> None:
        self.C = _C
        self.paths = dict(_loader.jit_paths(), cache_dir=str(cache_dir))
        self.cache_dir = cache_dir

    def init(self, **changes: str) -> None:
        """(Re-)initialise, which also empties the in-memory cache."""
        self.paths.update(changes)
        _C.init(**self.paths)

    def compile(self, source: str = WGMMA_SOURCE, name: str = "test_kernel", **kwargs) -> dict:
        return _C.jit_compile(name, source, **kwargs)

    def entries(self) -> list[Path]:
        return sorted(Path(_C.jit_cache_dir(), "cubin").rglob("*.entry"))


@pytest.fixture
def jit(tmp_path):
    """A fresh JIT state over tmp_path/cache; the import-time state is restored after."""
    state = Jit(tmp_path / "cache")
    state.init()
    yield state
    _C.init(**_loader.jit_paths())


@pytest.fixture
def wgmma_source() -> str:
    return WGMMA_SOURCE
