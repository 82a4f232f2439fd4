"""The JIT layer on a Hopper GPU: load, launch with clusters and large shared memory."""
from __future__ import annotations

import pytest
import torch

from deep_gemm import _C

# Each block fills 200 KiB of dynamic shared memory (needs the opt-in attribute), then
# thread 0 writes blockIdx.x * 100 + its rank in the cluster + the last word it stored.
SOURCE = r"""
extern "C" __global__ void deep_gemm_kernel(int* out, unsigned long long words) {
    extern __shared__ int smem[];
    for (unsigned long long i = threadIdx.x; i < words; i += blockDim.x)
        smem[i] = static_cast<int>(i);
    __syncthreads();
    unsigned rank;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    if (threadIdx.x == 0)
        out[blockIdx.x] = blockIdx.x * 100 + static_cast<int>(rank) + 1000 * (smem[words - 1] == words - 1);
}
"""
SHARED = 200 * 1024


def launch(out: torch.Tensor, cluster_x: int, grid: int = 8) -> None:
    _C.jit_launch("jit_launch_test", SOURCE, (grid, 1, 1), (128, 1, 1), SHARED, cluster_x,
                  [out.data_ptr(), SHARED // 4], torch.cuda.current_stream().cuda_stream)


@pytest.mark.parametrize("cluster_x", [1, 2, 4])
def test_launch_with_cluster_and_large_shared_memory(cluster_x):
    out = torch.full((8,), -1, dtype=torch.int32, device="cuda")
    launch(out, cluster_x)
    torch.cuda.synchronize()
    expected = [1000 + b * 100 + b % cluster_x for b in range(8)]
    assert out.tolist() == expected


def test_bad_launch_is_named():
    out = torch.empty(8, dtype=torch.int32, device="cuda")
    with pytest.raises(ValueError, match=r"grid.x \(3\) must be a positive multiple of cluster_x \(2\)"):
        launch(out, 2, grid=3)
    with pytest.raises(RuntimeError, match="cuModuleGetFunction\\('missing'\\)"):
        _C.jit_launch("no_such_entry", SOURCE, (1, 1, 1), (32, 1, 1), entry="missing")
