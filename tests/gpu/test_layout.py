"""The UE8M0 packing kernels (layout.cuh) against the torch paths they replaced: the same
functions on CPU copies of the inputs (and the torch ops on the GPU) are the oracle. Also: every
output element is written, no host sync, the current stream, CUDA-graph capture, and the one
kernel DeepGEMM's test_layout.py times by name."""
from __future__ import annotations

import random

import pytest
import torch

from deep_gemm.testing import bench_kineto
from deep_gemm.utils import (
    ceil_to_ue8m0,
    get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor,
    get_mn_major_tma_aligned_packed_ue8m0_tensor,
    get_mn_major_tma_aligned_tensor,
)
from deep_gemm.utils.layout import _pack_k_grouped_torch


def pack(sf: torch.Tensor, ks: list[int], gran_k: int) -> torch.Tensor:
    layout = torch.tensor(ks, dtype=torch.int32, device=sf.device)
    return get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, layout, ks, gran_k, 32)


def random_scales(*shape: int, seed: int = 0) -> torch.Tensor:
    """Power-of-two scales of both signs (the sign bit is not part of the byte) over a wide exponent range."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    magnitude = torch.exp2(torch.randint(-100, 100, shape, device="cuda", generator=gen).float())
    sign = torch.randint(0, 2, shape, device="cuda", generator=gen).float() * 2 - 1
    return ceil_to_ue8m0(torch.rand(shape, device="cuda", generator=gen) * magnitude) * sign


def scales(ks: list[int], mn: int, gran_k: int, seed: int = 0) -> torch.Tensor:
    return random_scales(sum(-(-k // gran_k) for k in ks), mn, seed=seed)


def poison_allocator(shape: tuple[int, int]) -> None:
    """Leave the caching allocator a block of -1s of the output's size, which the output likely reuses."""
    torch.full(shape, -1, dtype=torch.int32, device="cuda")


def reference(sf: torch.Tensor, ks: list[int], gran_k: int) -> torch.Tensor:
    return pack(sf.cpu(), ks, gran_k).cuda()


def check(mn: int, ks: list[int], gran_k: int, seed: int = 0) -> None:
    sf = scales(ks, mn, gran_k, seed)
    expected = reference(sf, ks, gran_k)
    assert torch.equal(_pack_k_grouped_torch(sf, [-(-k // gran_k) for k in ks]), expected)
    poison_allocator(tuple(expected.shape))
    packed = pack(sf, ks, gran_k)
    assert packed.is_cuda and packed.dtype == torch.int32 and packed.is_contiguous()
    assert packed.shape == expected.shape
    assert torch.equal(packed, expected), f"mn={mn} ks={ks} gran_k={gran_k}"


def random_ks(groups: int, avg_k: int, gran_k: int, seed: int, aligned: bool) -> list[int]:
    rng = random.Random(seed)
    ks = [max(0, int(rng.uniform(0.5, 1.5) * avg_k)) for _ in range(groups)]
    return [-(-k // gran_k) * gran_k for k in ks] if aligned else ks


# DeepGEMM's test_layout shapes (mn 4096 / 7168; 16 x 2048, 8 x 4096, 72 x 384, 128 x 256).
@pytest.mark.parametrize("mn", [4096, 7168])
@pytest.mark.parametrize("groups, avg_k", [(16, 2048), (8, 4096), (72, 384), (128, 256)])
@pytest.mark.parametrize("gran_k", [32, 128])
def test_upstream_shapes(mn, groups, avg_k, gran_k):
    check(mn, random_ks(groups, avg_k, gran_k, seed=groups, aligned=True), gran_k)


@pytest.mark.parametrize("mn", [1, 2, 3, 5, 7, 13, 100, 129, 1023, 4097, 7170])
@pytest.mark.parametrize("ks, gran_k", [
    ([128], 128),                                  # one group, one scale row
    ([5 * 128], 128),                              # one group, a partial last packed row
    ([3 * 128 + 1, 0, 129, 4 * 128, 0], 128),      # k not a multiple of gran_k or 4 gran_k, empty groups
    ([32 * 13, 32, 31, 32 * 8], 32),
    ([0, 0, 0], 128),                              # nothing to pack
])
def test_odd_shapes(mn, ks, gran_k):
    check(mn, ks, gran_k, seed=mn)


@pytest.mark.parametrize("groups", [255, 256, 257, 300, 513, 1000])
def test_many_groups(groups):
    """More than 256 groups: one launch per 256, each starting where the last ended."""
    for mn in (12, 131):
        check(mn, random_ks(groups, 300, 128, seed=groups, aligned=False), 128, seed=groups)


def test_empty_groups_at_a_launch_boundary():
    ks = [0] * 256 + [640, 0, 128] + [0] * 300 + [1]
    check(20, ks, 128)


def test_misaligned_sf():
    """A view 4 bytes into its storage: the kernel takes its one-column path, not float4 loads."""
    ks, gran_k, mn = [640, 384], 128, 64
    rows = 8
    storage = scales([gran_k * (rows + 1)], mn, gran_k).view(-1)
    sf = storage[1:1 + rows * mn].view(rows, mn)
    assert sf.data_ptr() % 16 != 0 and sf.is_contiguous()
    assert torch.equal(pack(sf, ks, gran_k), reference(sf, ks, gran_k))


def test_no_sync_and_current_stream():
    ks, gran_k, mn = [1024, 640, 128], 128, 4096
    sf = scales(ks, mn, gran_k)
    expected = reference(sf, ks, gran_k)
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.cuda.stream(stream):
            torch.cuda._sleep(int(2e7))  # the launch must queue behind this on `stream`
            packed = get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, layout, ks, gran_k, 32)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stream.synchronize()
    assert torch.equal(packed, expected)


def test_cuda_graph():
    ks, gran_k, mn = [1024, 0, 200, 128], 128, 256
    sf = scales(ks, mn, gran_k)
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    pack(sf, ks, gran_k)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        packed = get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, layout, ks, gran_k, 32)
    fresh = scales(ks, mn, gran_k, seed=1)
    sf.copy_(fresh)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(packed, reference(fresh, ks, gran_k))


def test_bench_kineto_finds_one_kernel():
    """What DeepGEMM's test_layout.py divides by: one kernel whose name holds 'pack_fp32_into_ue8m0'."""
    ks, gran_k, mn = random_ks(16, 2048, 128, seed=1, aligned=True), 128, 4096
    sf = scales(ks, mn, gran_k)
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    seconds = bench_kineto(lambda: get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(
        sf, layout, ks, gran_k, gran_k), "pack_fp32_into_ue8m0", suppress_kineto_output=True)
    assert 0 < seconds < 1e-3


# ---- get_mn_major_tma_aligned_packed_ue8m0_tensor ------------------------------------------

def check_mn_major(sf: torch.Tensor) -> None:
    expected = get_mn_major_tma_aligned_packed_ue8m0_tensor(sf.cpu())
    poison_allocator((expected.untyped_storage().nbytes() // 4, 1))
    packed = get_mn_major_tma_aligned_packed_ue8m0_tensor(sf)
    assert packed.is_cuda and packed.dtype == torch.int32
    assert packed.shape == expected.shape and packed.stride() == expected.stride()
    assert torch.equal(packed.cpu(), expected), f"shape {list(sf.shape)} strides {sf.stride()}"


# DeepGEMM's test_layout shapes: per-token scales of K = 128 / 7168 / 7296, K-major as cast or MN-major.
@pytest.mark.parametrize("mn", [4096, 4097, 8192])
@pytest.mark.parametrize("sf_k", [1, 56, 57])
@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("mn_major", [False, True])
def test_mn_major_upstream_shapes(mn, sf_k, groups, mn_major):
    sf = random_scales(groups, mn, sf_k, seed=mn + sf_k)
    sf = sf if groups > 1 else sf[0]
    check_mn_major(get_mn_major_tma_aligned_tensor(sf) if mn_major else sf)


@pytest.mark.parametrize("mn", [1, 2, 3, 5, 31, 33, 130])
@pytest.mark.parametrize("sf_k", [1, 2, 3, 4, 5, 8, 9])
def test_mn_major_odd_shapes(mn, sf_k):
    check_mn_major(random_scales(mn, sf_k, seed=mn * 10 + sf_k))
    check_mn_major(random_scales(3, mn, sf_k, seed=mn * 10 + sf_k).transpose(-1, -2).contiguous().transpose(-1, -2))


def test_mn_major_any_strides():
    base = random_scales(6, 40, 30)
    check_mn_major(base[::2, 3:, ::3])        # every stride > 1, an offset
    check_mn_major(base[1].T.contiguous().T)  # MN-major, not TMA-aligned
    check_mn_major(base[:, :, 4].unsqueeze(-1).expand(6, 40, 7))  # a zero K stride
    check_mn_major(base[0:1].expand(4, 40, 30))                   # a zero batch stride


def test_mn_major_empty():
    for shape in [(0, 5), (5, 0), (2, 0, 3), (0, 4, 4)]:
        check_mn_major(random_scales(*shape))


def test_mn_major_no_sync_and_current_stream():
    sf = random_scales(2, 4096, 57)
    expected = get_mn_major_tma_aligned_packed_ue8m0_tensor(sf.cpu())
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.cuda.stream(stream):
            torch.cuda._sleep(int(2e7))
            packed = get_mn_major_tma_aligned_packed_ue8m0_tensor(sf)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stream.synchronize()
    assert torch.equal(packed.cpu(), expected)


@pytest.mark.parametrize("mn_major", [False, True])
def test_mn_major_bench_kineto_finds_one_kernel(mn_major):
    """DeepGEMM's test_layout.py times this one by 'pack_fp32_into_ue8m0' too."""
    sf = random_scales(4, 4096, 56)
    sf = get_mn_major_tma_aligned_tensor(sf) if mn_major else sf
    seconds = bench_kineto(lambda: get_mn_major_tma_aligned_packed_ue8m0_tensor(sf), "pack_fp32_into_ue8m0",
                           suppress_kineto_output=True)
    assert 0 < seconds < 1e-3
