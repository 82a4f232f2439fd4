"""The UE8M0 packing kernels (layout.cuh) on the CPU: listed in _C.kernel_sources() under names
that DeepGEMM's bench_kineto looks for, compiled by NVRTC (and by ptxas without local memory),
and _C's argument checks; plus the torch path that CPU tensors (and the GPU tests' reference)
take for the K-grouped UE8M0 packer, on the edge cases the kernel also covers."""
from __future__ import annotations

import re
import struct

import pytest
import torch
from ptxas import needs_nvcc, report, spill_stores, stack_frames

from deep_gemm import _C
from deep_gemm.utils import (
    ceil_to_ue8m0,
    get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor,
    get_mn_major_tma_aligned_packed_ue8m0_tensor,
)

SOURCES = {name: source for name, source in _C.kernel_sources() if "fp32_into_ue8m0" in name}
K_GROUPED = "k_grouped_pack_fp32_into_ue8m0"
MN_MAJOR = "transpose_and_pack_fp32_into_ue8m0"
FUNCTION = "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor"


def entry_of(source: str) -> str:
    (entry,) = re.findall(r'extern "C" __global__ void (?:__launch_bounds__\([^)]*\)\s*)?(\w+)\(', source)
    return entry


def test_layout_kernels_are_listed():
    assert set(SOURCES) == {K_GROUPED, MN_MAJOR}
    # DeepGEMM's test_layout.py times both with bench_kineto(..., 'pack_fp32_into_ue8m0'): the
    # profiler's kernel name is the entry's.
    assert entry_of(SOURCES[K_GROUPED]) == "deep_gemm_k_grouped_pack_fp32_into_ue8m0"
    assert entry_of(SOURCES[MN_MAJOR]) == "deep_gemm_transpose_and_pack_fp32_into_ue8m0"
    assert re.search(r"static_assert\(sizeof\(layout::KGroupedPackArgs\) == \d+", SOURCES[K_GROUPED])
    assert re.search(r"static_assert\(sizeof\(layout::MnMajorPackArgs\) == \d+", SOURCES[MN_MAJOR])


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_layout_kernel_compiles(name, jit):
    result = jit.compile(SOURCES[name], name, entry=entry_of(SOURCES[name]))
    assert result["size"] > 0 and result["compiler"].startswith("nvrtc")


@needs_nvcc
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_layout_kernel_uses_no_local_memory(name, tmp_path):
    """The group offsets are indexed in the (__grid_constant__) parameters, not copied to a stack."""
    text = report(SOURCES[name], tmp_path)
    frames = stack_frames(text)
    assert frames and not any(frames) and not any(spill_stores(text)), text


@pytest.mark.parametrize("sf, ks, gran_k, error, message", [
    (torch.ones(2, 4, dtype=torch.int32), [256], 128, TypeError, "sf must have dtype Float"),
    (torch.ones(8), [256], 128, ValueError, r"sf must be 2-D \[sum\(ceil\(ks / gran_k\)\), MN\]"),
    (torch.ones(3, 4), [256], 128, ValueError, r"sf has 3 rows but ks_cpu needs sum\(ceil\(k / 128\)\) = 2"),
    (torch.ones(4, 2).T, [256], 128, ValueError, "sf must be contiguous"),
    (torch.ones(2, 4), [256], 128, ValueError, "sf must be a CUDA tensor"),
    (torch.ones(2, 4), [256], 0, ValueError, "gran_k must be positive"),
])
def test_c_entry_checks_arguments(sf, ks, gran_k, error, message):
    with pytest.raises(error, match=f"{FUNCTION}: {message}"):
        _C.k_grouped_packed_ue8m0(sf, ks, gran_k)


@pytest.mark.parametrize("sf, error, message", [
    (torch.ones(2, 4, dtype=torch.int32), TypeError, "sf must have dtype Float"),
    (torch.ones(8), ValueError, r"sf must be 2-D \[MN, SF_K\] or 3-D \[G, MN, SF_K\], got shape \[8\]"),
    (torch.ones(2, 2, 2, 2), ValueError, "sf must be 2-D"),
    (torch.ones(70000, 1, 4), ValueError, r"sf has shape \[70000, 1, 4\]: G and ceil\(SF_K / 4\) must be at most"),
    (torch.ones(4, 2).T, ValueError, "sf must be a CUDA tensor"),
])
def test_mn_major_c_entry_checks_arguments(sf, error, message):
    with pytest.raises(error, match=f"get_mn_major_tma_aligned_packed_ue8m0_tensor: {message}"):
        _C.mn_major_packed_ue8m0(sf)


def test_c_entry_rejects_negative_k():
    with pytest.raises(TypeError, match="argument 'ks'"):
        _C.k_grouped_packed_ue8m0(torch.ones(2, 4), [-1], 128)


def test_python_checks_ks():
    layout = torch.zeros(2, dtype=torch.int32)
    with pytest.raises(ValueError, match=r"ks_cpu\[1\] must be >= 0, got -128"):
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(torch.ones(1, 4), layout, [256, -128], 128, 128)
    with pytest.raises(TypeError, match=r"ks_cpu\[0\] must be an int, got float"):
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(torch.ones(2, 4), layout, [256.0, 0], 128, 128)


def packed_int(scales: list[float]) -> int:
    value = 0
    for i, s in enumerate(scales):
        value |= ((struct.unpack("<I", struct.pack("<f", s))[0] >> 23) & 0xFF) << (8 * i)
    return struct.unpack("<i", struct.pack("<I", value))[0]


# Uneven groups (k not a multiple of gran_k, nor of 4 gran_k), empty ones, one column.
@pytest.mark.parametrize("mn, ks, gran_k", [
    (1, [128], 128),
    (3, [0, 5 * 128 + 1, 0, 3 * 32, 4 * 128], 128),
    (5, [32 * 9, 1, 0], 32),
    (7, [0, 0], 128),
    (0, [1024, 128], 128),
])
def test_torch_path_edge_cases(mn, ks, gran_k):
    rows = [-(-k // gran_k) for k in ks]
    sf = ceil_to_ue8m0(torch.rand(sum(rows), mn) * 100)
    sf[::2] *= -1  # the sign bit is not part of the byte
    layout = torch.tensor(ks, dtype=torch.int32)
    packed = get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, layout, ks, gran_k, 32)
    assert packed.dtype == torch.int32 and packed.is_contiguous()
    assert packed.shape == (sum(-(-r // 4) for r in rows), mn)
    sf_row = packed_row = 0
    for r in rows:
        for p in range(-(-r // 4)):
            for col in range(mn):
                group_rows = range(sf_row + 4 * p, sf_row + min(4 * p + 4, r))
                assert packed[packed_row, col].item() == packed_int([sf[i, col].item() for i in group_rows])
            packed_row += 1
        sf_row += r


@pytest.mark.parametrize("shape, strides", [((0, 5), (1, 0)), ((5, 0), (1, 8)), ((2, 0, 3), (0, 1, 0)),
                                            ((0, 4, 4), (4, 1, 4))])
def test_mn_major_torch_path_empty(shape, strides):
    packed = get_mn_major_tma_aligned_packed_ue8m0_tensor(torch.ones(shape))
    assert packed.shape == shape[:-1] + (-(-shape[-1] // 4),) and packed.stride() == strides
