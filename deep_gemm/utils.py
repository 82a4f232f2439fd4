"""Layout, casting and testing helpers with DeepGEMM's names and conventions.

These are plain torch operations (not hot paths): they prepare operands in the
layouts the kernels expect and compare results in tests.
"""
from __future__ import annotations

import torch

FP8_E4M3_MAX = 448.0
_SCALE_BLOCK = 128
# Floor of a block's absolute maximum, so an all-zero block gets a finite scale.
_AMAX_FLOOR = 1e-4


def ceil_div(x: int, y: int) -> int:
    return (x + y - 1) // y


def align(x: int, y: int) -> int:
    return ceil_div(x, y) * y


def get_tma_aligned_size(x: int, element_size: int) -> int:
    """`x` elements rounded up so that a row of them spans a multiple of 16 bytes (TMA's unit)."""
    if 16 % element_size != 0:
        raise ValueError(f"element size {element_size} does not divide TMA's 16-byte alignment")
    return align(x, 16 // element_size)


def get_mn_major_tma_aligned_tensor(x: torch.Tensor) -> torch.Tensor:
    """Scales [..., MN, K/128] in the layout the kernels read with TMA.

    The MN dimension becomes the contiguous one and each K-block's column is
    padded to 16 bytes: strides (1, align(MN, 4)) for fp32 (plus a batch stride
    for 3-D inputs). Returns `x` itself when it already has that layout.
    """
    if x.dim() not in (2, 3):
        raise ValueError(f"expected 2-D [MN, K/128] or 3-D [G, MN, K/128] scales, got shape {tuple(x.shape)}")
    mn, k_blocks = x.shape[-2], x.shape[-1]
    aligned = get_tma_aligned_size(mn, x.element_size())
    if x.stride(-2) == 1 and (k_blocks == 1 or x.stride(-1) == aligned) and (x.dim() == 2 or x.stride(0) == aligned * k_blocks):
        return x
    out = torch.empty((*x.shape[:-2], k_blocks, aligned), dtype=x.dtype, device=x.device)
    out = out.transpose(-1, -2)[..., :mn, :]
    out.copy_(x)
    return out


# DeepGEMM 1.x name of the same transform.
get_col_major_tma_aligned_tensor = get_mn_major_tma_aligned_tensor


def per_token_cast_to_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of a [M, K] activation with one fp32 scale per (row, 128-column block).

    Returns (data [M, K], scales [M, K/128]); data * scale approximates x.
    """
    if x.dim() != 2 or x.shape[1] % _SCALE_BLOCK != 0:
        raise ValueError(f"per_token_cast_to_fp8 expects a 2-D tensor whose last dimension is a multiple of 128, "
                         f"got shape {tuple(x.shape)}")
    m, k = x.shape
    blocks = x.view(m, k // _SCALE_BLOCK, _SCALE_BLOCK).float()
    amax = blocks.abs().amax(dim=2).clamp(min=_AMAX_FLOOR)
    data = (blocks * (FP8_E4M3_MAX / amax.unsqueeze(2))).to(torch.float8_e4m3fn)
    return data.view(m, k), amax / FP8_E4M3_MAX


def per_block_cast_to_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of a [N, K] weight with one fp32 scale per 128x128 block.

    Returns (data [N, K], scales [ceil(N/128), ceil(K/128)]); edge blocks are
    scaled by their in-bounds part only.
    """
    if x.dim() != 2:
        raise ValueError(f"per_block_cast_to_fp8 expects a 2-D tensor, got shape {tuple(x.shape)}")
    n, k = x.shape
    padded = x.new_zeros(align(n, _SCALE_BLOCK), align(k, _SCALE_BLOCK))
    padded[:n, :k] = x
    blocks = padded.view(padded.shape[0] // _SCALE_BLOCK, _SCALE_BLOCK, padded.shape[1] // _SCALE_BLOCK, _SCALE_BLOCK)
    amax = blocks.abs().float().amax(dim=(1, 3), keepdim=True).clamp(min=_AMAX_FLOOR)
    data = (blocks.float() * (FP8_E4M3_MAX / amax)).to(torch.float8_e4m3fn)
    return data.view_as(padded)[:n, :k].contiguous(), (amax / FP8_E4M3_MAX).view(blocks.shape[0], blocks.shape[2])


def calc_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    """DeepGEMM's similarity error: 1 - 2<x, y> / (|x|^2 + |y|^2), in float64.

    0 for identical tensors; kernels pass at < 1e-3 against an FP32 reference.
    """
    x, y = x.double(), y.double()
    denominator = (x * x + y * y).sum()
    if denominator == 0:
        return 0.0
    return float(1 - 2 * (x * y).sum() / denominator)
