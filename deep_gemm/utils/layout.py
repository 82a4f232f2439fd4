"""Scale-factor layouts, with DeepGEMM's names, strides and checks (torch ops; on Hopper
the two UE8M0 packers are JIT kernels, layout.cuh).

The SM90 FP8 kernels read A's scales MN-major with each K-block's column padded to
16 bytes (TMA's unit), and B's 128x128-block scales row-major. The UE8M0 packers
produce the int32 layouts of DeepGEMM's SM100 kernels; they run anywhere.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

from .._loader import _C
from ..config import (
    get_k_alignment_for_contiguous_layout,
    get_m_alignment_for_contiguous_layout,
    get_mk_alignment_for_contiguous_layout,
    get_theoretical_mk_alignment_for_contiguous_layout,
    set_mk_alignment_for_contiguous_layout,
)
from .math import align, ceil_div

__all__ = [
    "get_col_major_tma_aligned_tensor",
    "get_k_alignment_for_contiguous_layout",
    "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor",
    "get_m_alignment_for_contiguous_layout",
    "get_mk_alignment_for_contiguous_layout",
    "get_mn_major_tma_aligned_packed_ue8m0_tensor",
    "get_mn_major_tma_aligned_tensor",
    "get_theoretical_mk_alignment_for_contiguous_layout",
    "get_tma_aligned_size",
    "set_mk_alignment_for_contiguous_layout",
    "transform_sf_into_required_layout",
]

TMA_ALIGNMENT_BYTES = 16


def _profiled(name: str):
    """A profiler range named like DeepGEMM's layout kernel, so timing code that looks for that
    kernel's name (DeepGEMM's bench_kineto in its tests) finds these torch ops under it."""
    return torch.profiler.record_function(name)


def get_tma_aligned_size(x: int, element_size: int) -> int:
    """`x` elements rounded up so that they span a multiple of 16 bytes (TMA's unit)."""
    if element_size <= 0 or TMA_ALIGNMENT_BYTES % element_size != 0:
        raise ValueError(f"element size {element_size} does not divide TMA's {TMA_ALIGNMENT_BYTES}-byte alignment")
    return align(x, TMA_ALIGNMENT_BYTES // element_size)


def _require_scales(function: str, sf: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
    if not isinstance(sf, torch.Tensor):
        raise TypeError(f"{function}: sf must be a torch.Tensor, got {type(sf).__name__}")
    if sf.dtype != dtype:
        raise TypeError(f"{function}: sf must have dtype {dtype}, got {sf.dtype}")
    if sf.dim() not in (2, 3):
        raise ValueError(f"{function}: sf must be 2-D [MN, SF_K] or 3-D [G, MN, SF_K], got shape {tuple(sf.shape)}")


def is_mn_major_tma_aligned(sf: torch.Tensor) -> bool:
    """Whether `sf` [(G,) MN, SF_K] already has the strides get_mn_major_tma_aligned_tensor returns."""
    *batch, mn, sf_k = sf.shape
    strides = sf.stride()
    aligned = get_tma_aligned_size(mn, sf.element_size())
    return strides[-2] == 1 and strides[-1] == aligned and (not batch or strides[0] == aligned * sf_k)


def get_mn_major_tma_aligned_tensor(sf: torch.Tensor) -> torch.Tensor:
    """fp32 scales [(G,) MN, SF_K] in the layout the kernels read with TMA.

    Strides (1, align(MN, 4)), with a batch stride of align(MN, 4) * SF_K for 3-D input
    (also for a single K-block and for MN = 1): MN-major, each K-block's column padded
    to 16 bytes. Returns `sf` itself when it already has exactly those strides.
    """
    _require_scales("get_mn_major_tma_aligned_tensor", sf)
    if is_mn_major_tma_aligned(sf):
        return sf
    *batch, mn, sf_k = sf.shape
    aligned = get_tma_aligned_size(mn, sf.element_size())
    strides = (aligned * sf_k, 1, aligned)[-sf.dim():]
    with _profiled("transpose_fp32"):
        return torch.empty_strided(sf.shape, strides, dtype=sf.dtype, device=sf.device).copy_(sf)


# DeepGEMM 1.x name of the same transform.
get_col_major_tma_aligned_tensor = get_mn_major_tma_aligned_tensor


def _ue8m0_bytes(sf: torch.Tensor) -> torch.Tensor:
    """The exponent byte of each fp32 scale (a power of two loses nothing)."""
    return (sf.view(torch.int32) >> 23).to(torch.uint8)


def _require_layout_tensor(function: str, name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.int32:
        raise TypeError(f"{function}: {name} must be an int32 torch.Tensor, got "
                        f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
    if not t.is_contiguous():
        raise ValueError(f"{function}: {name} must be contiguous")


def get_mn_major_tma_aligned_packed_ue8m0_tensor(sf: torch.Tensor,
                                                 psum_layout: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 power-of-two scales [(G,) MN, SF_K] -> packed UE8M0 int32 [(G,) MN, ceil(SF_K / 4)].

    Four exponent bytes per int32 (K-block 4j + i in byte i; the last int zero-padded),
    MN-major with strides (1, align(MN, 4)) and batch stride align(MN, 4) * ceil(SF_K / 4).
    `psum_layout` (int32 [G], 2-D `sf` only) names the rows of a PSUM layout; DeepGEMM
    skips its gap rows, this packs them too (their values are unspecified either way).
    On a Hopper GPU this is one kernel on the current stream; elsewhere torch ops.
    """
    function = "get_mn_major_tma_aligned_packed_ue8m0_tensor"
    _require_scales(function, sf)
    if psum_layout is not None:
        _require_layout_tensor(function, "psum_layout", psum_layout)
        if sf.dim() != 2 or psum_layout.numel() == 0:
            raise ValueError(f"{function}: psum_layout needs 2-D sf and at least one group")
    if _on_hopper(sf):
        # One kernel launch (deep_gemm_transpose_and_pack_fp32_into_ue8m0) on the current stream.
        return _C.mn_major_packed_ue8m0(sf)
    with _profiled("transpose_and_pack_fp32_into_ue8m0"):  # the kernel's name, for the torch ops instead
        batched = sf if sf.dim() == 3 else sf.unsqueeze(0)
        groups, mn, sf_k = batched.shape
        packed_k = ceil_div(sf_k, 4)
        aligned_mn = get_tma_aligned_size(mn, 4)
        out = torch.empty_strided((groups, mn, packed_k), (aligned_mn * packed_k, 1, aligned_mn),
                                  dtype=torch.int32, device=sf.device)
        if out.numel() > 0:
            padded = torch.zeros((groups, mn, packed_k * 4), dtype=torch.uint8, device=sf.device)
            padded[..., :sf_k] = _ue8m0_bytes(batched)
            out.copy_(padded.view(torch.int32))
    return out if sf.dim() == 3 else out.squeeze(0)


def get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(sf: torch.Tensor, grouped_layout: torch.Tensor,
                                                           ks_cpu: Sequence[int] | None, gran_k: int,
                                                           k_alignment: int | None = None,
                                                           use_psum_layout: bool = False) -> torch.Tensor:
    """K-grouped per-channel fp32 scales [sum ceil(k_g / gran_k), MN] -> packed UE8M0 int32.

    Each group's scale rows are packed four to an int32 row (zero-padded within the
    group): the result is [sum ceil(k_g / (4 gran_k)), MN], contiguous. `k_alignment`
    defaults to get_mk_alignment_for_contiguous_layout() (DeepGEMM requires it; vLLM's
    wrapper omits it). The PSUM form (use_psum_layout=True) is an SM100 layout and is
    not available here. On a Hopper GPU this is one kernel on the current stream
    (`deep_gemm_k_grouped_pack_fp32_into_ue8m0`, no host sync); elsewhere torch ops.
    """
    function = "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor"
    if not isinstance(sf, torch.Tensor) or sf.dtype != torch.float32 or sf.dim() != 2:
        raise TypeError(f"{function}: sf must be a 2-D torch.float32 tensor [SF_K, MN]")
    if not sf.is_contiguous():
        raise ValueError(f"{function}: sf must be contiguous")
    _require_layout_tensor(function, "grouped_layout", grouped_layout)
    if gran_k not in (32, 128):
        raise ValueError(f"{function}: gran_k must be 32 or 128, got {gran_k!r}")
    k_alignment = get_mk_alignment_for_contiguous_layout() if k_alignment is None else k_alignment
    if k_alignment % 32 != 0:
        raise ValueError(f"{function}: k_alignment must be a multiple of 32, got {k_alignment}")
    if use_psum_layout:
        raise ValueError(f"{function}: use_psum_layout=True is DeepGEMM's SM100 K-grouped layout, which this "
                         f"SM90 package does not have")
    num_groups = grouped_layout.numel()
    ks = list(ks_cpu or ())
    if len(ks) != num_groups:
        raise ValueError(f"{function}: ks_cpu must give one K per group ({num_groups}), got {len(ks)}")
    for g, k in enumerate(ks):
        try:
            ks[g] = operator.index(k)
        except TypeError:
            raise TypeError(f"{function}: ks_cpu[{g}] must be an int, got {type(k).__name__}") from None
        if ks[g] < 0:
            raise ValueError(f"{function}: ks_cpu[{g}] must be >= 0, got {ks[g]}")
    sf_rows = [ceil_div(k, gran_k) for k in ks]
    if sum(sf_rows) != sf.size(0):
        raise ValueError(f"{function}: sf has {sf.size(0)} rows but ks_cpu needs sum(ceil(k / {gran_k})) = "
                         f"{sum(sf_rows)}")
    if _on_hopper(sf):
        # One kernel launch (deep_gemm_k_grouped_pack_fp32_into_ue8m0) on the current stream.
        return _C.k_grouped_packed_ue8m0(sf, ks, gran_k)
    with _profiled("pack_fp32_into_ue8m0"):  # the kernel's name, for the torch ops instead
        return _pack_k_grouped_torch(sf, sf_rows)


def _on_hopper(t: torch.Tensor) -> bool:
    """Whether `t` is on an SM90 GPU, where the sm_90a layout kernels run."""
    return t.is_cuda and torch.cuda.get_device_capability(t.device) == (9, 0)


def _pack_k_grouped_torch(sf: torch.Tensor, sf_rows: Sequence[int]) -> torch.Tensor:
    """get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor in torch ops (CPU tensors, other GPUs;
    the GPU tests' reference for the kernel), for checked arguments and each group's scale rows."""
    # Each group's rows, then zero rows (the last row of `source`) up to a multiple of 4.
    zero_row = sf.size(0)
    index: list[int] = []
    start = 0
    for rows in sf_rows:
        index += range(start, start + rows)
        index += [zero_row] * (align(rows, 4) - rows)
        start += rows
    mn = sf.size(1)
    if mn == 0 or not index:
        return sf.new_empty((len(index) // 4, mn), dtype=torch.int32)
    source = torch.cat((_ue8m0_bytes(sf), sf.new_zeros((1, mn), dtype=torch.uint8)))
    gathered = source[torch.tensor(index, dtype=torch.long, device=sf.device)]
    packed = gathered.view(-1, 4, mn).permute(0, 2, 1).reshape(-1, mn * 4)  # byte i of an int: row 4p + i
    return packed.view(torch.int32)


def _recipe_granularity(recipe: tuple, is_sfa: bool | None) -> tuple[int, int]:
    """(gran_mn, gran_k) of a 3-int recipe (with is_sfa) or a 2-int one (without)."""
    function = "transform_sf_into_required_layout"
    values = tuple(recipe) if isinstance(recipe, (tuple, list)) else None
    if values is None or len(values) not in (2, 3) or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{function}: recipe must be (gran_m, gran_n, gran_k) or (gran_mn, gran_k) of positive ints, "
                         f"got {recipe!r}")
    if len(values) == 3:
        if is_sfa is None:
            raise ValueError(f"{function}: a 3-int recipe needs is_sfa=True (A's scales) or False (B's)")
        return (values[0] if is_sfa else values[1]), values[2]
    if is_sfa is not None:
        raise ValueError(f"{function}: a 2-int recipe already names the operand; pass is_sfa=None")
    return values


def check_sf_shape(function: str, name: str, sf: torch.Tensor, mn: int, k: int, gran_mn: int, gran_k: int,
                   num_groups: int | None) -> None:
    """DeepGEMM's scale shape rule: [(G,) ceil(MN / gran_mn), ceil(K / gran_k)] (packed int32: / 4 more)."""
    if sf.dtype not in (torch.float32, torch.int32):
        raise TypeError(f"{function}: {name} must have dtype torch.float32 (or packed UE8M0 torch.int32), "
                        f"got {sf.dtype}")
    per_element = 1 if sf.dtype == torch.float32 else 4
    expected = (ceil_div(mn, gran_mn), ceil_div(k, gran_k * per_element))
    if num_groups is not None:
        expected = (num_groups, *expected)
    if tuple(sf.shape) != expected:
        layout = "[G, " if num_groups is not None else "["
        raise ValueError(f"{function}: {name} must have shape {layout}ceil(MN / {gran_mn}), ceil(K / "
                         f"{gran_k * per_element})] = {list(expected)} for MN = {mn}, K = {k}, got {list(sf.shape)}")


def is_sm90_sfb_layout(sf: torch.Tensor) -> bool:
    """Row-major or transposed row-major over its last two dims (and densely batched)."""
    rows, cols = sf.shape[-2:]
    strides = sf.stride()
    if sf.dim() == 3 and strides[0] != rows * cols:
        return False
    return (strides[-1] == 1 and strides[-2] == cols) or (strides[-2] == 1 and strides[-1] == rows)


def transform_sf_into_required_layout(sf: torch.Tensor, mn: int, k: int, recipe: tuple,
                                      num_groups: int | None = None, is_sfa: bool | None = None,
                                      disable_ue8m0_cast: bool = False,
                                      psum_layout: torch.Tensor | None = None) -> torch.Tensor:
    """Scales in the layout SM90's FP8 kernels read, checked against (mn, k, recipe).

    `recipe` is (gran_m, gran_n, gran_k) with `is_sfa` saying which operand `sf` scales,
    or (gran_mn, gran_k) with is_sfa None. On SM90, fp32 scales only:
    - (1, 128), per-token: returned MN-major TMA-aligned (get_mn_major_tma_aligned_tensor);
    - (128, 128), per-block: checked row-major or transposed row-major, returned as is.
    `disable_ue8m0_cast` and `psum_layout` only matter for SM100's packed scales and are
    accepted for compatibility. Anything else (packed int32 scales, gran_k 32, ...) is an
    SM100 recipe: ValueError.
    """
    function = "transform_sf_into_required_layout"
    if not isinstance(sf, torch.Tensor):
        raise TypeError(f"{function}: sf must be a torch.Tensor, got {type(sf).__name__}")
    gran_mn, gran_k = _recipe_granularity(recipe, is_sfa)
    check_sf_shape(function, "sf", sf, mn, k, gran_mn, gran_k, num_groups)
    if sf.dtype == torch.float32 and gran_k == 128:
        if gran_mn == 1:
            return get_mn_major_tma_aligned_tensor(sf)
        if gran_mn == 128:
            if not is_sm90_sfb_layout(sf):
                raise ValueError(f"{function}: 128x128-block scales must be row-major or transposed row-major, got "
                                 f"strides {sf.stride()} for shape {list(sf.shape)}")
            return sf
    raise ValueError(f"{function}: SM90 FP8 kernels take fp32 scales with recipe (1, 128) per token or (128, 128) "
                     f"per block; got {sf.dtype} scales with (gran_mn, gran_k) = ({gran_mn}, {gran_k}), an SM100 "
                     f"recipe")
