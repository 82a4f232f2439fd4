"""Integer helpers and the quantisation casts, with DeepGEMM's names, keywords and numerics.

The casts are plain torch code (any device). Their arithmetic follows DeepGEMM's
exactly, so the bits they produce are the ones its tests and users expect:
a block's scale is ``max(amax, 1e-4) / 448`` (``/ 6`` for FP4), optionally rounded up
to a power of two (UE8M0), and the data is ``x * (1 / scale)`` rounded to e4m3.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "align",
    "cast_back_from_fp4",
    "ceil_div",
    "ceil_to_ue8m0",
    "pack_ue8m0_to_int",
    "per_block_cast_to_fp8",
    "per_channel_cast_to_fp8",
    "per_custom_dims_cast_to_fp8",
    "per_token_cast_to_fp4",
    "per_token_cast_to_fp8",
    "transpose_packed_fp4",
    "unpack_ue8m0_from_int",
]

FP8_E4M3_MAX = 448.0
FP4_E2M1_MAX = 6.0
# A block's absolute maximum is floored here, so an all-zero block gets a finite scale.
AMAX_FLOOR = 1e-4
# e2m1 magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6} and the midpoints between them; a value
# exactly on a midpoint rounds down (its code is the number of midpoints below it).
_FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
_FP4_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
_FLOAT_EXPONENT_SHIFT = 23
_FLOAT_MANTISSA_MASK = (1 << _FLOAT_EXPONENT_SHIFT) - 1


def ceil_div(x: int, y: int) -> int:
    """x / y rounded up, for non-negative ints."""
    return (x + y - 1) // y


def align(x: int, y: int) -> int:
    """x rounded up to a multiple of y."""
    return ceil_div(x, y) * y


def _require_2d(function: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"{function} expects a 2-D tensor, got shape {tuple(x.shape)}")


def _require_gran_k(function: str, gran_k: int) -> None:
    if not isinstance(gran_k, int) or gran_k <= 0:
        raise ValueError(f"{function}: gran_k must be a positive int, got {gran_k!r}")


def _scale(amax: torch.Tensor, type_max: float, use_ue8m0: bool) -> torch.Tensor:
    scale = amax.clamp(min=AMAX_FLOOR) / type_max
    return ceil_to_ue8m0(scale) if use_ue8m0 else scale


def ceil_to_ue8m0(x: torch.Tensor) -> torch.Tensor:
    """|x| rounded up to a power of two (an fp32 tensor whose mantissa bits are zero).

    The exponent is clamped to [1, 254]: zeros become 2**-126, nothing becomes inf.
    """
    bits = x.abs().float().view(torch.int32)
    exponent = bits >> _FLOAT_EXPONENT_SHIFT  # the sign bit is clear after abs()
    exponent = exponent + ((bits & _FLOAT_MANTISSA_MASK) != 0).int()
    return (exponent.clamp(1, 254) << _FLOAT_EXPONENT_SHIFT).view(torch.float32)


def pack_ue8m0_to_int(x: torch.Tensor) -> torch.Tensor:
    """Power-of-two fp32 scales [..., 4n] -> their exponent bytes, four to an int32 [..., n]."""
    if x.dtype != torch.float32:
        raise TypeError(f"pack_ue8m0_to_int expects torch.float32 scales, got {x.dtype}")
    if x.dim() == 0 or x.size(-1) % 4 != 0:
        raise ValueError(f"pack_ue8m0_to_int needs a last dimension that is a multiple of 4, "
                         f"got shape {tuple(x.shape)}")
    bits = x.view(torch.int32)
    if not bool(((bits >= 0) & ((bits & _FLOAT_MANTISSA_MASK) == 0)).all()):
        raise ValueError("pack_ue8m0_to_int needs non-negative powers of two (see ceil_to_ue8m0)")
    return (bits >> _FLOAT_EXPONENT_SHIFT).to(torch.uint8).view(torch.int32)


def unpack_ue8m0_from_int(packed_sf: torch.Tensor) -> torch.Tensor:
    """Inverse of pack_ue8m0_to_int: int32 [..., n] -> fp32 powers of two [..., 4n]."""
    return (packed_sf.view(torch.uint8).to(torch.int32) << _FLOAT_EXPONENT_SHIFT).view(torch.float32)


def per_token_cast_to_fp8(x: torch.Tensor, use_ue8m0: bool = False, gran_k: int = 128,
                          use_packed_ue8m0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of [M, K] with one scale per (row, gran_k columns): (data [M, K], scales).

    Scales are fp32 [M, ceil(K / gran_k)] (powers of two with `use_ue8m0`), or with
    `use_packed_ue8m0` (needs `use_ue8m0`) int32 [M, ceil(K / gran_k) / 4] holding four
    exponent bytes each. A K that is not a multiple of gran_k is zero-padded for the
    scales. `use_ue8m0` defaults to False here (DeepGEMM has no default) so that
    one-argument calls of this package's earlier versions keep working (likewise in
    per_block_cast_to_fp8).
    """
    _require_2d("per_token_cast_to_fp8", x)
    _require_gran_k("per_token_cast_to_fp8", gran_k)
    if use_packed_ue8m0 and not use_ue8m0:
        raise ValueError("per_token_cast_to_fp8: use_packed_ue8m0=True needs use_ue8m0=True "
                         "(packing keeps exponents only)")
    m, k = x.shape
    padded = x.new_zeros((m, align(k, gran_k)))
    padded[:, :k] = x
    blocks = padded.view(m, -1, gran_k)
    scale = _scale(blocks.abs().float().amax(dim=2), FP8_E4M3_MAX, use_ue8m0)
    data = (blocks * (1.0 / scale.unsqueeze(2))).to(torch.float8_e4m3fn)
    data = data.view(m, -1)[:, :k].contiguous()
    return data, pack_ue8m0_to_int(scale) if use_packed_ue8m0 else scale


def per_channel_cast_to_fp8(x: torch.Tensor, use_ue8m0: bool,
                            gran_k: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of [K, N] with one scale per (gran_k rows, column): (data [K, N], fp32 [K / gran_k, N]).

    K must be a multiple of gran_k (the per-channel operands of the 1D1D kernels).
    """
    _require_2d("per_channel_cast_to_fp8", x)
    _require_gran_k("per_channel_cast_to_fp8", gran_k)
    k, n = x.shape
    if k % gran_k != 0:
        raise ValueError(f"per_channel_cast_to_fp8 needs the first dimension to be a multiple of gran_k = {gran_k}, "
                         f"got shape {tuple(x.shape)}")
    blocks = x.view(-1, gran_k, n)
    scale = _scale(blocks.abs().float().amax(dim=1), FP8_E4M3_MAX, use_ue8m0)
    data = (blocks * (1.0 / scale.unsqueeze(1))).to(torch.float8_e4m3fn)
    return data.view(k, n), scale


def per_block_cast_to_fp8(x: torch.Tensor, use_ue8m0: bool = False,
                          gran_k: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of [N, K] with one scale per gran_k x gran_k block: (data, fp32 [ceil(N/g), ceil(K/g)]).

    Edge blocks are scaled by their in-bounds part (the rest is zero padding).
    """
    _require_2d("per_block_cast_to_fp8", x)
    _require_gran_k("per_block_cast_to_fp8", gran_k)
    n, k = x.shape
    padded = x.new_zeros((align(n, gran_k), align(k, gran_k)))
    padded[:n, :k] = x
    blocks = padded.view(padded.size(0) // gran_k, gran_k, padded.size(1) // gran_k, gran_k)
    scale = _scale(blocks.abs().float().amax(dim=(1, 3), keepdim=True), FP8_E4M3_MAX, use_ue8m0)
    data = (blocks * (1.0 / scale)).to(torch.float8_e4m3fn).view_as(padded)[:n, :k].contiguous()
    return data, scale.view(blocks.size(0), blocks.size(2))


def per_custom_dims_cast_to_fp8(x: torch.Tensor, dims: Sequence[int],
                                use_ue8m0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """e4m3 copy of x with one scale per index of the dimensions `dims` (amax over all others).

    Returns (data shaped like x, fp32 scales squeezed of every size-1 dimension).
    """
    kept = {d % x.dim() for d in dims} if x.dim() else set()
    reduced = tuple(i for i in range(x.dim()) if i not in kept)
    scale = _scale(x.abs().float().amax(dim=reduced, keepdim=True), FP8_E4M3_MAX, use_ue8m0)
    return (x * (1.0 / scale)).to(torch.float8_e4m3fn), scale.squeeze()


def _fp4_codes(x: torch.Tensor) -> torch.Tensor:
    """e2m1 codes (sign bit 3, magnitude bits 0-2) of already-scaled values, as uint8."""
    midpoints = torch.tensor(_FP4_MIDPOINTS, dtype=torch.float32, device=x.device)
    magnitude = torch.bucketize(x.abs().float(), midpoints).to(torch.uint8)
    negative = (x < 0) & (magnitude != 0)  # no negative zero
    return magnitude | (negative.to(torch.uint8) << 3)


def _pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes [..., 2n] -> int8 [..., n]: even columns in the low nibble, odd in the high."""
    pairs = codes.view(*codes.shape[:-1], -1, 2)
    return ((pairs[..., 0] & 0x0F) | ((pairs[..., 1] & 0x0F) << 4)).view(torch.int8)


def _unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """int8 [..., n] -> uint8 codes [..., 2n] (inverse of _pack_nibbles)."""
    as_bytes = packed.view(torch.uint8)
    return torch.stack((as_bytes & 0x0F, as_bytes >> 4), dim=-1).view(*packed.shape[:-1], -1)


def per_token_cast_to_fp4(x: torch.Tensor, use_ue8m0: bool, gran_k: int = 128,
                          use_packed_ue8m0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """e2m1 copy of [M, K] (two codes per int8 byte, [M, K / 2]) with one scale per (row, gran_k).

    Scales are fp32 [M, ceil(K / gran_k)], or packed UE8M0 int32 with `use_packed_ue8m0`
    (the scale count padded to a multiple of 4 with 1.0, which covers no element).
    FP4 GEMMs are SM100 kernels; this cast runs anywhere.
    """
    _require_2d("per_token_cast_to_fp4", x)
    _require_gran_k("per_token_cast_to_fp4", gran_k)
    m, k = x.shape
    if k % 2 != 0:
        raise ValueError(f"per_token_cast_to_fp4 needs an even last dimension (two codes per byte), "
                         f"got shape {tuple(x.shape)}")
    if use_packed_ue8m0 and not use_ue8m0:
        raise ValueError("per_token_cast_to_fp4: use_packed_ue8m0=True needs use_ue8m0=True "
                         "(packing keeps exponents only)")
    padded = x.new_zeros((m, align(k, gran_k)))
    padded[:, :k] = x
    blocks = padded.view(m, -1, gran_k)
    scale = _scale(blocks.abs().float().amax(dim=2), FP4_E2M1_MAX, use_ue8m0)
    codes = _fp4_codes(blocks * (1.0 / scale.unsqueeze(2))).view(m, -1)
    packed = _pack_nibbles(codes)[:, :k // 2].contiguous()
    if not use_packed_ue8m0:
        return packed, scale
    missing = align(scale.size(-1), 4) - scale.size(-1)
    if missing:
        scale = torch.nn.functional.pad(scale, (0, missing), value=1.0)
    return packed, pack_ue8m0_to_int(scale)


def transpose_packed_fp4(a: torch.Tensor) -> torch.Tensor:
    """Packed e2m1 [M, K / 2] (int8) -> the packed transpose [K, M / 2]; M must be even."""
    if a.dtype != torch.int8:
        raise TypeError(f"transpose_packed_fp4 expects packed int8 FP4 data, got {a.dtype}")
    _require_2d("transpose_packed_fp4", a)
    if a.size(0) % 2 != 0:
        raise ValueError(f"transpose_packed_fp4 needs an even number of rows, got shape {tuple(a.shape)}")
    return _pack_nibbles(_unpack_nibbles(a).t().contiguous()).contiguous()


def cast_back_from_fp4(packed: torch.Tensor, sf: torch.Tensor, gran_k: int = 128,
                       use_packed_ue8m0: bool = False) -> torch.Tensor:
    """fp32 values of per_token_cast_to_fp4's output (data [M, K / 2], scales)."""
    if use_packed_ue8m0:
        sf = unpack_ue8m0_from_int(sf)
    codes = _unpack_nibbles(packed)
    values = torch.tensor(_FP4_VALUES, dtype=torch.float32, device=packed.device)[(codes & 0x07).long()]
    values = torch.where(((codes & 0x08) != 0) & ((codes & 0x07) != 0), -values, values)
    column_block = torch.arange(codes.size(-1), device=packed.device) // gran_k
    return values * sf[:, column_block]
