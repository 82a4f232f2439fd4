"""deep_gemm.utils and deep_gemm.testing on the CPU: DeepGEMM's layout rules and cast numerics.

The references here are written element by element from DeepGEMM's definitions (a block's
scale is max(amax, 1e-4) / 448, optionally rounded up to a power of two; data is
x * (1 / scale) rounded to e4m3; TMA-aligned scales have strides (1, align(MN, 4)) and a
batch stride of align(MN, 4) * SF_K), not with the vectorised code under test.
"""
from __future__ import annotations

import math
import random
import struct

import pytest
import torch

import deep_gemm
from deep_gemm.testing import assert_bitwise_equal, calc_diff, count_bytes
from deep_gemm.utils import (
    ceil_to_ue8m0,
    get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor,
    get_mn_major_tma_aligned_packed_ue8m0_tensor,
    get_mn_major_tma_aligned_tensor,
    get_tma_aligned_size,
    pack_ue8m0_to_int,
    per_block_cast_to_fp8,
    per_channel_cast_to_fp8,
    per_custom_dims_cast_to_fp8,
    per_token_cast_to_fp4,
    per_token_cast_to_fp8,
    transform_sf_into_required_layout,
    transpose_packed_fp4,
    unpack_ue8m0_from_int,
)


def f32(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


def ref_scale(block: torch.Tensor, type_max: float, use_ue8m0: bool) -> torch.Tensor:
    scale = f32(max(block.abs().float().max().item(), 1e-4)) / type_max
    if use_ue8m0:
        mantissa, exponent = math.frexp(scale.item())  # scale = mantissa * 2**exponent, mantissa in [0.5, 1)
        scale = f32(2.0 ** (exponent - 1 if mantissa == 0.5 else exponent))
    return scale


def ref_cast(block: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (block.float() * (1.0 / scale)).to(torch.float8_e4m3fn)


def bits(x: torch.Tensor) -> torch.Tensor:
    return x.view(torch.uint8) if x.element_size() == 1 else x.view(torch.int32)


def test_integer_helpers():
    assert deep_gemm.ceil_div(129, 128) == 2 and deep_gemm.align(129, 128) == 256
    assert get_tma_aligned_size(5, 4) == 8 and get_tma_aligned_size(5, 2) == 8 and get_tma_aligned_size(5, 1) == 16
    with pytest.raises(ValueError, match="element size 3"):
        get_tma_aligned_size(5, 3)


SHAPES = [(mn, sf_k) for mn in (1, 3, 4, 5, 64, 130, 4097) for sf_k in (1, 2, 7)]


@pytest.mark.parametrize("mn, sf_k", SHAPES)
@pytest.mark.parametrize("groups", [None, 1, 3])
@pytest.mark.parametrize("source", ["row-major", "mn-major", "aligned"])
def test_mn_major_tma_aligned_strides(mn, sf_k, groups, source):
    batch = () if groups is None else (groups,)
    x = torch.randn(*batch, mn, sf_k)
    if source == "mn-major":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    aligned = (mn + 3) // 4 * 4
    expected = (1, aligned) if groups is None else (aligned * sf_k, 1, aligned)
    if source == "aligned":
        x = torch.empty_strided(x.shape, expected).copy_(x)
    y = get_mn_major_tma_aligned_tensor(x)
    assert y.shape == x.shape and torch.equal(y, x) and y.stride() == expected
    assert (y is x) == (x.stride() == expected)
    assert get_mn_major_tma_aligned_tensor(y) is y
    assert deep_gemm.get_col_major_tma_aligned_tensor is get_mn_major_tma_aligned_tensor


def test_mn_major_tma_aligned_rejects():
    with pytest.raises(ValueError, match="must be 2-D"):
        get_mn_major_tma_aligned_tensor(torch.randn(5))
    with pytest.raises(TypeError, match="must have dtype torch.float32"):
        get_mn_major_tma_aligned_tensor(torch.randn(5, 2).half())


def ref_packed_int(scales: list[float]) -> int:
    """Four (or fewer, zero-padded) power-of-two scales -> their exponent bytes as one signed int32."""
    value = 0
    for i, s in enumerate(scales):
        value |= (struct.unpack("<I", struct.pack("<f", s))[0] >> 23) << (8 * i)
    return struct.unpack("<i", struct.pack("<I", value))[0]


@pytest.mark.parametrize("mn, sf_k", [(1, 1), (5, 3), (8, 4), (130, 9)])
@pytest.mark.parametrize("groups", [None, 2])
def test_packed_ue8m0_layout(mn, sf_k, groups):
    batch = () if groups is None else (groups,)
    sf = ceil_to_ue8m0(torch.rand(*batch, mn, sf_k) * 100)
    packed = get_mn_major_tma_aligned_packed_ue8m0_tensor(sf.transpose(-1, -2).contiguous().transpose(-1, -2))
    packed_k, aligned = (sf_k + 3) // 4, (mn + 3) // 4 * 4
    assert packed.dtype == torch.int32 and packed.shape == (*batch, mn, packed_k)
    assert packed.stride() == ((1, aligned) if groups is None else (aligned * packed_k, 1, aligned))
    flat_sf, flat_packed = sf.reshape(-1, mn, sf_k), packed.reshape(-1, mn, packed_k)
    for g in range(flat_sf.size(0)):
        for row in range(mn):
            for j in range(packed_k):
                assert flat_packed[g, row, j].item() == ref_packed_int(flat_sf[g, row, 4 * j:4 * j + 4].tolist())


def test_k_grouped_packed_ue8m0():
    random.seed(3)
    ks = [128 * random.randint(0, 9) for _ in range(6)]
    mn = 12
    _, sf = per_channel_cast_to_fp8(torch.randn(sum(ks), mn), use_ue8m0=True)
    packed = get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, torch.tensor(ks, dtype=torch.int32), ks,
                                                                    128, 128)
    assert packed.shape == (sum((k // 128 + 3) // 4 for k in ks), mn) and packed.is_contiguous()
    sf_row = packed_row = 0
    for k in ks:
        rows = k // 128
        for p in range((rows + 3) // 4):
            group_rows = range(sf_row + 4 * p, sf_row + min(4 * p + 4, rows))
            for col in range(mn):
                assert packed[packed_row, col].item() == ref_packed_int([sf[r, col].item() for r in group_rows])
            packed_row += 1
        sf_row += rows
    with pytest.raises(ValueError, match="SM100 K-grouped layout"):
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, torch.tensor(ks, dtype=torch.int32), ks, 128,
                                                               128, use_psum_layout=True)
    with pytest.raises(ValueError, match=r"sf has \d+ rows but ks_cpu needs"):
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf[1:], torch.tensor(ks, dtype=torch.int32), ks, 128)


def test_transform_sf_into_required_layout():
    m, n, k = 5, 300, 640
    sfa = torch.rand(m, 5)
    out = transform_sf_into_required_layout(sfa, m, k, (1, 128, 128), is_sfa=True)
    assert out.stride() == (1, 8) and torch.equal(out, sfa)
    assert transform_sf_into_required_layout(out, m, k, (1, 128)) is out
    sfb = torch.rand(3, 5)
    assert transform_sf_into_required_layout(sfb, n, k, (1, 128, 128), is_sfa=False) is sfb
    transposed = sfb.t().contiguous().t()
    assert transform_sf_into_required_layout(transposed, n, k, (128, 128)) is transposed
    per_channel_b = torch.rand(2, n, 5)
    assert transform_sf_into_required_layout(per_channel_b, n, k, (1, 1, 128), num_groups=2,
                                             is_sfa=False).stride() == (5 * 300, 1, 300)
    cases = [
        ((sfb, n, k, (1, 128, 128)), "a 3-int recipe needs is_sfa"),
        ((sfb, n, k, (128, 128)), None),
        ((sfb[:, :4], n, k, (128, 128)), r"must have shape \[ceil\(MN / 128\), ceil\(K / 128\)\] = \[3, 5\]"),
        ((torch.rand(3, 10)[:, ::2], n, k, (128, 128)), "row-major or transposed row-major"),
        ((torch.rand(m, 20), m, k, (1, 32)), "an SM100 recipe"),
        ((torch.ones(m, 2, dtype=torch.int32), m, k, (1, 128)), "an SM100 recipe"),
    ]
    for args, message in cases:
        if message is None:
            transform_sf_into_required_layout(*args)
            continue
        with pytest.raises(ValueError, match=message):
            transform_sf_into_required_layout(*args, **({"is_sfa": None} if len(args[3]) == 2 else {}))


@pytest.mark.parametrize("use_ue8m0", [False, True])
@pytest.mark.parametrize("m, k, gran_k", [(3, 384, 128), (2, 200, 128), (2, 96, 32)])
def test_per_token_cast_numerics(use_ue8m0, m, k, gran_k):
    torch.manual_seed(m + k)
    x = (torch.randn(m, k) * 7).bfloat16()
    x[0, :gran_k] = 0  # an all-zero block: the 1e-4 floor
    data, scales = per_token_cast_to_fp8(x, use_ue8m0=use_ue8m0, gran_k=gran_k)
    assert data.shape == (m, k) and scales.shape == (m, (k + gran_k - 1) // gran_k)
    for i in range(m):
        for j in range(scales.size(1)):
            block = x[i, j * gran_k:(j + 1) * gran_k]
            scale = ref_scale(block, 448.0, use_ue8m0)
            assert bits(scales[i, j]) == bits(scale)
            assert torch.equal(bits(data[i, j * gran_k:(j + 1) * gran_k]), bits(ref_cast(block, scale)))
    if use_ue8m0 and scales.size(1) % 4 == 0:
        _, packed = per_token_cast_to_fp8(x, use_ue8m0=True, gran_k=gran_k, use_packed_ue8m0=True)
        assert torch.equal(unpack_ue8m0_from_int(packed), scales)


@pytest.mark.parametrize("use_ue8m0", [False, True])
def test_per_block_and_per_channel_cast_numerics(use_ue8m0):
    torch.manual_seed(1)
    x = torch.randn(200, 300) * 3
    data, scales = per_block_cast_to_fp8(x, use_ue8m0=use_ue8m0)
    assert data.shape == (200, 300) and scales.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            block = x[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
            scale = ref_scale(block, 448.0, use_ue8m0)
            assert bits(scales[i, j]) == bits(scale)
            assert torch.equal(bits(data[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]), bits(ref_cast(block, scale)))
    y = torch.randn(256, 6)
    data, scales = per_channel_cast_to_fp8(y, use_ue8m0)
    assert scales.shape == (2, 6)
    for i in range(2):
        for col in range(6):
            block = y[i * 128:(i + 1) * 128, col]
            scale = ref_scale(block, 448.0, use_ue8m0)
            assert bits(scales[i, col]) == bits(scale)
            assert torch.equal(bits(data[i * 128:(i + 1) * 128, col].contiguous()), bits(ref_cast(block, scale)))
    data, scales = per_custom_dims_cast_to_fp8(y, (1,), use_ue8m0)
    assert scales.shape == (6,)
    assert all(bits(scales[c]) == bits(ref_scale(y[:, c], 448.0, use_ue8m0)) for c in range(6))


def test_ceil_to_ue8m0_and_packing():
    x = torch.tensor([1.0, 1.5, 0.75, 3e-3, 0.0, -2.0, 3.0e38])
    expected = [1.0, 2.0, 1.0, 2.0 ** -8, 2.0 ** -126, 2.0, 2.0 ** 127]
    assert ceil_to_ue8m0(x).tolist() == expected
    sf = torch.tensor([[1.0, 2.0, 0.5, 2.0 ** -126]])
    assert pack_ue8m0_to_int(sf).item() == ref_packed_int(sf[0].tolist())
    assert torch.equal(unpack_ue8m0_from_int(pack_ue8m0_to_int(sf)), sf)
    with pytest.raises(ValueError, match="powers of two"):
        pack_ue8m0_to_int(torch.tensor([[1.5, 1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="multiple of 4"):
        pack_ue8m0_to_int(torch.ones(1, 3))
    with pytest.raises(ValueError, match="needs use_ue8m0=True"):
        per_token_cast_to_fp8(torch.randn(2, 512), use_ue8m0=False, use_packed_ue8m0=True)


FP4_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


def test_fp4_cast_and_transpose():
    torch.manual_seed(2)
    x = torch.randn(4, 64) * 3
    packed, scales = per_token_cast_to_fp4(x, use_ue8m0=False, gran_k=32)
    assert packed.dtype == torch.int8 and packed.shape == (4, 32) and scales.shape == (4, 2)
    for i in range(4):
        for col in range(64):
            scale = ref_scale(x[i, (col // 32) * 32:(col // 32 + 1) * 32], 6.0, False)
            v = (x[i, col] * (1.0 / scale)).item()
            code = sum(abs(v) > b for b in FP4_MIDPOINTS)
            code |= 8 if v < 0 and code else 0
            byte = packed[i, col // 2].item() & 0xFF
            assert (byte >> 4 if col % 2 else byte & 0x0F) == code, (i, col)
    back = deep_gemm.cast_back_from_fp4(packed, scales, gran_k=32)
    assert calc_diff(back, x) < 0.02
    transposed = transpose_packed_fp4(packed)
    assert transposed.shape == (64, 2)
    assert torch.equal(transpose_packed_fp4(transpose_packed_fp4(packed)), packed)
    codes = lambda p: torch.stack((p.view(torch.uint8) & 15, p.view(torch.uint8) >> 4), -1).flatten(-2)  # noqa: E731
    assert torch.equal(codes(transposed), codes(packed).t())


def test_testing_helpers():
    x = torch.randn(100)
    assert calc_diff(x, x) == pytest.approx(0.0, abs=1e-12)
    assert calc_diff(x, -x) == pytest.approx(2.0)
    assert calc_diff(torch.zeros(3), torch.zeros(3)) == 0.0
    assert deep_gemm.calc_diff is calc_diff
    tensors = (torch.ones(3), (torch.ones(2, dtype=torch.bfloat16), None), [torch.ones(1, dtype=torch.int8)])
    assert count_bytes(*tensors) == 17
    assert_bitwise_equal(x, x.clone())
    y = x.clone()
    y[7] += 1
    with pytest.raises(AssertionError, match=r"index \(7,\)"):
        assert_bitwise_equal(x, y, "label")


def test_test_decorators(monkeypatch, capsys):
    from deep_gemm.testing import ignore_env, test_filter

    ran = []
    test_filter(lambda: False)(lambda: ran.append(1))()
    test_filter(lambda: True)(lambda: ran.append(2))()
    assert ran == [2] and "Filtered by" in capsys.readouterr().out
    monkeypatch.setenv("DG_TEST_ENV", "x")
    seen = []
    ignore_env("DG_TEST_ENV", lambda: True)(lambda: seen.append(__import__("os").environ.get("DG_TEST_ENV")))()
    assert seen == [None] and __import__("os").environ["DG_TEST_ENV"] == "x"


def test_layout_work_is_named_for_profilers():
    # DeepGEMM's tests time the layout helpers by their kernels' names (bench_kineto).
    _, sf = per_channel_cast_to_fp8(torch.randn(256, 8), use_ue8m0=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        get_mn_major_tma_aligned_tensor(sf.t().contiguous())  # row-major: re-laid out
        get_mn_major_tma_aligned_packed_ue8m0_tensor(sf.t())
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf, torch.tensor([256], dtype=torch.int32), [256], 128)
    names = {event.key for event in profile.key_averages()}
    assert {"transpose_fp32", "transpose_and_pack_fp32_into_ue8m0", "pack_fp32_into_ue8m0"} <= names


def test_bench_kineto_under_nvidia_tools(monkeypatch):
    # Under Nsight / compute-sanitizer (DG_USE_NVIDIA_TOOLS=1) nothing is profiled: 1 per name.
    from deep_gemm.testing import bench_kineto

    calls = []
    monkeypatch.setenv("DG_USE_NVIDIA_TOOLS", "1")
    assert bench_kineto(lambda: calls.append(1), "gemm_") == 1
    assert bench_kineto(lambda: calls.append(1), ("nvjet", "reduce")) == (1, 1)
    assert calls == []
    with pytest.raises(TypeError, match="kernel_names must be a str or a tuple"):
        bench_kineto(lambda: None, ["gemm_"])
