"""The layout and cast helpers, on the CPU."""
import pytest
import torch

import deep_gemm
from deep_gemm import (
    calc_diff,
    get_mn_major_tma_aligned_tensor,
    get_tma_aligned_size,
    per_block_cast_to_fp8,
    per_token_cast_to_fp8,
)


def test_integer_helpers():
    assert deep_gemm.ceil_div(129, 128) == 2
    assert deep_gemm.align(129, 128) == 256
    assert get_tma_aligned_size(5, 4) == 8
    assert get_tma_aligned_size(5, 2) == 8
    with pytest.raises(ValueError, match="element size 3"):
        get_tma_aligned_size(5, 3)


@pytest.mark.parametrize("m", [1, 4, 5, 130])
def test_mn_major_layout(m):
    x = torch.randn(m, 3)
    y = get_mn_major_tma_aligned_tensor(x)
    assert y.shape == x.shape and torch.equal(x, y)
    assert y.stride() == (1, get_tma_aligned_size(m, 4))
    assert get_mn_major_tma_aligned_tensor(y) is y


def test_mn_major_layout_batched():
    x = torch.randn(2, 5, 3)
    y = get_mn_major_tma_aligned_tensor(x)
    assert torch.equal(x, y) and y.stride() == (24, 1, 8)
    with pytest.raises(ValueError, match="expected 2-D"):
        get_mn_major_tma_aligned_tensor(torch.randn(5))


def test_per_token_cast_round_trip():
    x = torch.randn(7, 384) * 10
    data, scales = per_token_cast_to_fp8(x)
    assert data.dtype == torch.float8_e4m3fn and scales.shape == (7, 3)
    back = data.float() * scales.repeat_interleave(128, dim=1)
    assert calc_diff(back, x) < 1e-3
    with pytest.raises(ValueError, match="multiple of 128"):
        per_token_cast_to_fp8(torch.randn(2, 100))


def test_per_block_cast_round_trip_with_edges():
    x = torch.randn(200, 300)
    data, scales = per_block_cast_to_fp8(x)
    assert data.shape == (200, 300) and scales.shape == (2, 3)
    expanded = scales.repeat_interleave(128, 0).repeat_interleave(128, 1)[:200, :300]
    assert calc_diff(data.float() * expanded, x) < 1e-3


def test_zero_blocks_keep_finite_scales():
    _, scales = per_token_cast_to_fp8(torch.zeros(2, 128))
    assert torch.isfinite(scales).all() and (scales > 0).all()


def test_calc_diff():
    x = torch.randn(100)
    assert calc_diff(x, x) == pytest.approx(0.0, abs=1e-12)
    assert calc_diff(x, -x) == pytest.approx(2.0)
    assert calc_diff(torch.zeros(3), torch.zeros(3)) == 0.0
