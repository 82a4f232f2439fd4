"""Every GEMM entry point, with DeepGEMM 2.x's names, parameters, defaults and aliases.

Each function checks what only the Python layer knows (keywords, recipes), converts
operands DeepGEMM accepts into the layout the kernels read, with cheap torch ops and
only when needed, and calls one positional `_C` entry point, which validates the
tensors (dtype, shape, layout, then device) and launches. The FP8 GEMMs with default
recipe call `_C` first and only convert when `_C` refuses the operands as they are:
`_C` validates every argument before it launches anything, so a refused call has no
effect, and a call already in the kernels' layout pays for nothing here.

FP8 operands are (e4m3 data, scales) pairs. SM90 recipes (DeepGEMM's (gran_m, gran_n,
gran_k) per scale): (1, 128, 128), the default: A scaled per (row, 128 K), fp32
[M, ceil(K/128)] in any layout (made MN-major TMA-aligned when it is not), B per
128x128 block, fp32 [ceil(N/128), ceil(K/128)] row-major or transposed row-major; and
(1, 1, 128): B also per (row, 128 K), the 1D1D kernel of weight gradients. Packed UE8M0
(int32) scales and gran_k 32 are SM100 recipes and are refused. On SM90 FP8 operands
must be K-major (DeepGEMM asserts the same), so the nn / tn / tt names only accept
views whose transpose is K-major.

`compiled_dims` (DeepGEMM: which problem dims are compiled into the kernel) and
`disable_ue8m0_cast` (SM100 scale packing) are accepted and have no effect here.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

from ._loader import _C
from .config import get_mk_alignment_for_contiguous_layout
from .utils.layout import get_mn_major_tma_aligned_tensor, is_sm90_sfb_layout

__all__ = [
    "bf16_gemm_nn",
    "bf16_gemm_nt",
    "bf16_gemm_tn",
    "bf16_gemm_tt",
    "bf16_m_grouped_gemm_nt_masked",
    "cublaslt_gemm_nn",
    "cublaslt_gemm_nt",
    "cublaslt_gemm_tn",
    "cublaslt_gemm_tt",
    "fp8_fp4_gemm_nn",
    "fp8_fp4_gemm_nt",
    "fp8_fp4_gemm_tn",
    "fp8_fp4_gemm_tt",
    "fp8_gemm_nn",
    "fp8_gemm_nt",
    "fp8_gemm_nt_skip_head_mid",
    "fp8_gemm_tn",
    "fp8_gemm_tt",
    "fp8_m_grouped_gemm_nt_masked",
    "k_grouped_bf16_gemm_tn_contiguous",
    "k_grouped_fp8_gemm_nt_contiguous",
    "m_grouped_bf16_gemm_nn_contiguous",
    "m_grouped_bf16_gemm_nt_contiguous",
    "m_grouped_bf16_gemm_nt_masked",
    "m_grouped_fp8_fp4_gemm_nn_contiguous",
    "m_grouped_fp8_fp4_gemm_nt_contiguous",
    "m_grouped_fp8_fp4_gemm_nt_masked",
    "m_grouped_fp8_gemm_nn_contiguous",
    "m_grouped_fp8_gemm_nt_contiguous",
    "m_grouped_fp8_gemm_nt_masked",
]

_GRAN_K = 128
_FP32 = torch.float32
Recipe = tuple[int, int, int]
Recipe2 = tuple[int, int]


# ---- checks and conversions (off the hot path unless noted) -------------------------

def _pair(function: str, name: str, x) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(t, torch.Tensor) for t in x):
        return x[0], x[1]
    raise TypeError(f"{function}(): argument '{name}' must be a (torch.Tensor, torch.Tensor) pair (data, scales), "
                    f"not {type(x).__name__}")


def _tensor(function: str, name: str, x, dim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{function}(): argument '{name}' must be a torch.Tensor, not {type(x).__name__}")
    if x.dim() != dim:
        raise ValueError(f"{function}: {name} must be {dim}-D, got shape {list(x.shape)}")
    return x


def _check_compiled_dims(function: str, compiled_dims) -> None:
    if not isinstance(compiled_dims, str) or not set(compiled_dims) <= set("mnk"):
        raise ValueError(f"{function}: compiled_dims must be a str of the letters 'm', 'n', 'k', got {compiled_dims!r}")


def _check_scale_dtype(function: str, name: str, sf: torch.Tensor) -> None:
    if sf.dtype == torch.int32:
        raise TypeError(f"{function}: {name} holds packed UE8M0 scales (torch.int32), an SM100 format; SM90 FP8 "
                        f"GEMMs read torch.float32 scales (cast with use_packed_ue8m0=False)")
    if sf.dtype != _FP32:
        raise TypeError(f"{function}: {name} must have dtype torch.float32, got {sf.dtype}")


def _per_channel_b(function: str, recipe, recipe_a, recipe_b) -> bool:
    """Resolve DeepGEMM's recipe keywords on SM90: False for (1, 128, 128), True for (1, 1, 128)."""
    if recipe is None and recipe_a is None and recipe_b is None:
        return False
    if (recipe_a is None) != (recipe_b is None):
        raise ValueError(f"{function}: recipe_a and recipe_b go together; got recipe_a={recipe_a!r}, "
                         f"recipe_b={recipe_b!r}")
    if recipe is not None and recipe_a is not None:
        raise ValueError(f"{function}: pass either recipe or the recipe_a / recipe_b pair, not both")
    if recipe is not None:
        if not (isinstance(recipe, (tuple, list)) and len(recipe) == 3):
            raise ValueError(f"{function}: recipe must be (gran_m, gran_n, gran_k), got {recipe!r}")
        gran_m, gran_n, gran_k_a = recipe
        gran_k_b = gran_k_a
    else:
        if not all(isinstance(r, (tuple, list)) and len(r) == 2 for r in (recipe_a, recipe_b)):
            raise ValueError(f"{function}: recipe_a and recipe_b must be (gran_mn, gran_k) pairs, got "
                             f"{recipe_a!r} and {recipe_b!r}")
        (gran_m, gran_k_a), (gran_n, gran_k_b) = recipe_a, recipe_b
    if gran_m != 1 or gran_n not in (1, 128) or gran_k_a != _GRAN_K or gran_k_b != _GRAN_K:
        raise ValueError(f"{function}: SM90 FP8 GEMMs support recipe (1, 128, 128) and (1, 1, 128) (A per "
                         f"(row, 128 K), B per 128x128 block or per (row, 128 K)); got (gran_m, gran_n) = "
                         f"({gran_m}, {gran_n}) with gran_k {gran_k_a} / {gran_k_b} (FP4 and gran_k 32 are SM100)")
    return gran_n == 1


def _require_k_major(function: str, name: str, data: torch.Tensor) -> None:
    if data.dim() >= 2 and data.stride(-1) != 1 and data.size(-1) > 1:
        raise ValueError(f"{function}: {name} must be K-major (stride 1 along K) after the layout's transpose, got "
                         f"shape {list(data.shape)} with strides {list(data.stride())}: SM90 FP8 GEMMs read FP8 "
                         f"operands K-major only (as DeepGEMM's do)")


def _scales_per_row(function: str, name: str, sf: torch.Tensor) -> torch.Tensor:
    """(1, 128) scales [(G,) MN, ceil(K/128)] in any layout -> MN-major TMA-aligned (a copy only if needed)."""
    _check_scale_dtype(function, name, sf)
    return get_mn_major_tma_aligned_tensor(sf) if sf.dim() in (2, 3) else sf


def _scales_per_block(function: str, name: str, sf: torch.Tensor) -> torch.Tensor:
    """(128, 128) scales [(G,) ceil(N/128), ceil(K/128)], row-major or transposed row-major -> row-major."""
    _check_scale_dtype(function, name, sf)
    return sf.contiguous() if sf.dim() in (2, 3) and is_sm90_sfb_layout(sf) else sf


def _fp8_operands(function: str, a, b, per_channel_b: bool):
    """The (data, scales) pairs with their scales in the kernels' layout (copied only where they are not).

    Shapes, data layouts and devices are left to _C, which names what is wrong.
    """
    a_data, sfa = _pair(function, "a", a)
    b_data, sfb = _pair(function, "b", b)
    sfa = _scales_per_row(function, "a[1]", sfa)
    sfb = _scales_per_row(function, "b[1]", sfb) if per_channel_b else _scales_per_block(function, "b[1]", sfb)
    return (a_data, sfa), (b_data, sfb)


def _transposed_pair(function: str, name: str, x, dims: tuple[int, int]):
    data, sf = _pair(function, name, x)
    transposed = data.transpose(*dims), sf.transpose(*dims)
    _require_k_major(function, f"{name}[0]", transposed[0])
    return transposed


def _transposed(function: str, name: str, x, dims: tuple[int, int]) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{function}(): argument '{name}' must be a torch.Tensor, not {type(x).__name__}")
    if x.dim() <= max(dims):
        raise ValueError(f"{function}: {name} must be {max(dims) + 1}-D, got shape {list(x.shape)}")
    return x.transpose(*dims)


def _entry(function: str, name: str, what: str):
    """A `_C` entry point that not every build has yet; a clear error where this one lacks it."""
    fn = getattr(_C, name, None)
    if fn is None:
        raise NotImplementedError(f"{function}: {what} needs _C.{name}, which this build of deep_gemm does not have")
    return fn


def _psum_to_m_indices(function: str, psum: torch.Tensor, m: int) -> torch.Tensor:
    """PSUM layout (int32 [G]: group g's rows end at psum[g] and start at align(psum[g-1])) -> m_indices [M].

    GPU ops only, no host sync (CUDA-graph safe): rows outside every group get -1.
    """
    _tensor(function, "grouped_layout", psum, 1)
    if psum.dtype != torch.int32:
        raise TypeError(f"{function}: grouped_layout must have dtype torch.int32, got {psum.dtype}")
    alignment = get_mk_alignment_for_contiguous_layout()
    ends = psum.long()
    starts = torch.cat((ends.new_zeros(1), (ends[:-1] + alignment - 1) // alignment * alignment))
    rows = torch.arange(m, device=psum.device)
    group = torch.searchsorted(ends, rows, right=True)  # the first group ending after the row
    last = max(psum.numel() - 1, 0)
    inside = (group < psum.numel()) & (rows >= starts[group.clamp(max=last)])
    return torch.where(inside, group, -1).to(torch.int32)


def _contiguous_layout(function: str, grouped_layout, m: int, use_psum_layout: bool,
                       expected_m_for_psum_layout) -> torch.Tensor:
    if use_psum_layout:
        return _psum_to_m_indices(function, grouped_layout, m)
    if expected_m_for_psum_layout is not None:
        raise ValueError(f"{function}: expected_m_for_psum_layout only applies with use_psum_layout=True")
    return grouped_layout


def _rows(a) -> int:
    """M of a (data, scales) pair or a tensor operand (0 when it is neither: _C then names the problem)."""
    data = a[0] if isinstance(a, (tuple, list)) and a else a
    return data.size(0) if isinstance(data, torch.Tensor) and data.dim() > 0 else 0


def _k_grouped_ks(function: str, ks_cpu, grouped_layout, c, use_psum_layout: bool, k_alignment: int) -> list[int]:
    if use_psum_layout:
        raise ValueError(f"{function}: use_psum_layout=True is an SM100 layout; on SM90 pass ks_cpu (the per-group K)")
    if c is None:
        raise ValueError(f"{function}: c is required (the K-grouped GEMM computes d = c + a_g^T b_g per group)")
    if isinstance(ks_cpu, (str, bytes)) or not isinstance(ks_cpu, Sequence) or not ks_cpu:
        raise ValueError(f"{function}: ks_cpu must be a non-empty list of per-group K, got {ks_cpu!r}")
    ks = list(ks_cpu)
    for g, k in enumerate(ks):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0 or k % k_alignment != 0:
            raise ValueError(f"{function}: ks_cpu[{g}] = {k!r} must be a non-negative multiple of {k_alignment}")
    _tensor(function, "grouped_layout", grouped_layout, 1)
    if grouped_layout.dtype != torch.int32:
        raise TypeError(f"{function}: grouped_layout must have dtype torch.int32, got {grouped_layout.dtype}")
    if grouped_layout.numel() != len(ks):
        raise ValueError(f"{function}: grouped_layout has {grouped_layout.numel()} groups but ks_cpu {len(ks)}")
    return ks


# ---- FP8 ------------------------------------------------------------------------------

def fp8_gemm_nt(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], d: torch.Tensor,
                c: torch.Tensor | None = None, recipe: Recipe | None = None, recipe_a: Recipe2 | None = None,
                recipe_b: Recipe2 | None = None, compiled_dims: str = "nk", disable_ue8m0_cast: bool = False) -> None:
    """d = a @ b.T (+ c) for FP8 a = (e4m3 [M, K], scales), b = (e4m3 [N, K], scales).

    Recipe (1, 128, 128) (default): d bf16 or fp32; c (fp32, may be d) needs an fp32 d.
    Recipe (1, 1, 128): B scales fp32 [N, ceil(K/128)] per (row, 128 K); d fp32 with c
    (may be d), or bf16 without. See the module docstring for the scale layouts.
    """
    if recipe is None and recipe_a is None and recipe_b is None and compiled_dims == "nk":
        try:
            return _C.fp8_gemm_nt(a, b, d, c)
        except (TypeError, ValueError):
            pass  # not in the kernels' layout, or a bad argument: the path below converts or names it
    _fp8_gemm_recipe("fp8_gemm_nt", a, b, d, c, recipe, recipe_a, recipe_b, compiled_dims)


def _fp8_gemm_recipe(function: str, a, b, d, c, recipe, recipe_a, recipe_b, compiled_dims) -> None:
    _check_compiled_dims(function, compiled_dims)
    per_channel = _per_channel_b(function, recipe, recipe_a, recipe_b)
    a, b = _fp8_operands(function, a, b, per_channel)
    if per_channel:
        _entry(function, "fp8_gemm_nt_1d1d", "recipe (1, 1, 128)")(a, b, d, c)
    else:
        _C.fp8_gemm_nt(a, b, d, c)


def fp8_gemm_nt_skip_head_mid(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
                              d: torch.Tensor, head_splits: tuple[int, int, int], recipe: Recipe | None = None,
                              compiled_dims: str = "nk", disable_ue8m0_cast: bool = False) -> None:
    """fp8_gemm_nt whose output skips the middle of every head (DeepSeek V3.2's indexer).

    head_splits = (left, mid, right): b's N rows are N / (left + right) heads of
    left + right columns each; d is [M, N + N / (left + right) * mid] and head h's
    columns land at h * (left + mid + right) + [0, left) and + [left + mid, left +
    mid + right), leaving the `mid` columns between them untouched. Computed into a
    scratch [M, N] and copied into d's two column ranges (upstream writes them from
    its epilogue: one extra pass over the product here).
    """
    function = "fp8_gemm_nt_skip_head_mid"
    try:
        splits = tuple(operator.index(x) for x in head_splits)
    except TypeError:
        splits = ()
    if len(splits) != 3 or min(splits) < 0 or splits[0] + splits[2] == 0:
        raise ValueError(f"{function}: head_splits must be (left, mid, right), non-negative ints with "
                         f"left + right > 0, got {head_splits!r}")
    left, mid, right = splits
    if not isinstance(d, torch.Tensor):
        raise TypeError(f"{function}: d must be a torch.Tensor, got {type(d).__name__}")
    if d.dim() != 2 or d.stride(1) != 1:
        raise ValueError(f"{function}: d must be 2-D [M, N + N / (left + right) * mid] with unit column stride, "
                         f"got shape {tuple(d.shape)} and strides {d.stride()}")
    n = b[0].shape[0] if isinstance(b, (tuple, list)) and len(b) == 2 and isinstance(b[0], torch.Tensor) else None
    if n is None:
        raise TypeError(f"{function}: b must be a (tensor, scales) pair")
    if n % (left + right) != 0 or d.shape[1] != n + n // (left + right) * mid:
        raise ValueError(f"{function}: b has N = {n} rows: with head_splits {splits} N must be a multiple of "
                         f"{left + right} and d must have N + N / {left + right} * {mid} columns, got d "
                         f"{tuple(d.shape)}")
    if mid == 0:
        fp8_gemm_nt(a, b, d, None, recipe, compiled_dims=compiled_dims, disable_ue8m0_cast=disable_ue8m0_cast)
        return
    m, heads = d.shape[0], n // (left + right)
    product = torch.empty((m, n), dtype=d.dtype, device=d.device)
    fp8_gemm_nt(a, b, product, None, recipe, compiled_dims=compiled_dims, disable_ue8m0_cast=disable_ue8m0_cast)
    out, src = d.unflatten(1, (heads, left + mid + right)), product.view(m, heads, left + right)
    out[:, :, :left].copy_(src[:, :, :left])
    out[:, :, left + mid:].copy_(src[:, :, left:])


def fp8_gemm_nn(a, b, d, c=None, recipe=None, recipe_a=None, recipe_b=None, compiled_dims="nk",
                disable_ue8m0_cast=False) -> None:
    """d = a @ b (+ c) with b = (data [K, N], scales [ceil(K/g), ceil(N/g)]) viewed transposed (see fp8_gemm_nt)."""
    b = _transposed_pair("fp8_gemm_nn", "b", b, (0, 1))
    _fp8_gemm_recipe("fp8_gemm_nn", a, b, d, c, recipe, recipe_a, recipe_b, compiled_dims)


def fp8_gemm_tn(a, b, d, c=None, recipe=None, recipe_a=None, recipe_b=None, compiled_dims="mn",
                disable_ue8m0_cast=False) -> None:
    """d = a.T @ b (+ c) with a given [K, M] and b [K, N], both viewed transposed (see fp8_gemm_nt)."""
    a = _transposed_pair("fp8_gemm_tn", "a", a, (0, 1))
    b = _transposed_pair("fp8_gemm_tn", "b", b, (0, 1))
    _fp8_gemm_recipe("fp8_gemm_tn", a, b, d, c, recipe, recipe_a, recipe_b, compiled_dims)


def fp8_gemm_tt(a, b, d, c=None, recipe=None, recipe_a=None, recipe_b=None, compiled_dims="mn",
                disable_ue8m0_cast=False) -> None:
    """d = a.T @ b.T (+ c) with a given [K, M], viewed transposed (see fp8_gemm_nt)."""
    a = _transposed_pair("fp8_gemm_tt", "a", a, (0, 1))
    _fp8_gemm_recipe("fp8_gemm_tt", a, b, d, c, recipe, recipe_a, recipe_b, compiled_dims)


def m_grouped_fp8_gemm_nt_contiguous(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
                                     d: torch.Tensor, grouped_layout: torch.Tensor, recipe: Recipe | None = None,
                                     recipe_a: Recipe2 | None = None, recipe_b: Recipe2 | None = None,
                                     compiled_dims: str = "nk", disable_ue8m0_cast: bool = False,
                                     use_psum_layout: bool = False, ensure_zero_padding: bool = True,
                                     expected_m_for_psum_layout: int | None = None) -> None:
    """MoE GEMM over experts' rows concatenated along M: d[r] = a[r] @ b[group of r].T.

    a = (e4m3 [M, K], scales [M, ceil(K/128)]), b = (e4m3 [G, N, K], scales
    [G, ceil(N/128), ceil(K/128)]), d bf16 [M, N]. grouped_layout is int32: [M] expert
    per row, -1 for padding rows; or, with use_psum_layout, [G] end rows of each group
    (group g starts at psum[g-1] rounded up to get_mk_alignment_for_contiguous_layout()),
    converted to per-row indices on the GPU without a host sync. expected_m_for_psum_layout
    is a tuning hint (unused here); ensure_zero_padding is an SM100 option that DeepGEMM's
    SM90 path ignores too.
    """
    function = "m_grouped_fp8_gemm_nt_contiguous"
    if (recipe is None and recipe_a is None and recipe_b is None and compiled_dims == "nk" and not use_psum_layout
            and expected_m_for_psum_layout is None):
        try:
            return _C.m_grouped_fp8_gemm_nt_contiguous(a, b, d, grouped_layout)
        except (TypeError, ValueError):
            pass  # as in fp8_gemm_nt
    if recipe is not None or recipe_a is not None or recipe_b is not None:
        if _per_channel_b(function, recipe, recipe_a, recipe_b):
            raise ValueError(f"{function}: recipe (1, 1, 128) is not an M-grouped SM90 kernel; use (1, 128, 128)")
    if compiled_dims != "nk":
        _check_compiled_dims(function, compiled_dims)
    if use_psum_layout or expected_m_for_psum_layout is not None:
        grouped_layout = _contiguous_layout(function, grouped_layout, _rows(a), use_psum_layout,
                                            expected_m_for_psum_layout)
    _C.m_grouped_fp8_gemm_nt_contiguous(*_fp8_operands(function, a, b, False), d, grouped_layout)


def m_grouped_fp8_gemm_nn_contiguous(a, b, d, grouped_layout, recipe=None, recipe_a=None, recipe_b=None,
                                     compiled_dims="nk", disable_ue8m0_cast=False, use_psum_layout=False,
                                     ensure_zero_padding=True) -> None:
    """m_grouped_fp8_gemm_nt_contiguous with b = (data [G, K, N], scales) viewed transposed (K-major on SM90)."""
    b = _transposed_pair("m_grouped_fp8_gemm_nn_contiguous", "b", b, (1, 2))
    m_grouped_fp8_gemm_nt_contiguous(a, b, d, grouped_layout, recipe, recipe_a, recipe_b, compiled_dims,
                                     disable_ue8m0_cast, use_psum_layout, ensure_zero_padding)


def m_grouped_fp8_gemm_nt_masked(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
                                 d: torch.Tensor, masked_m: torch.Tensor, expected_m: int,
                                 recipe: Recipe | None = None, recipe_a: Recipe2 | None = None,
                                 recipe_b: Recipe2 | None = None, compiled_dims: str = "nk",
                                 disable_ue8m0_cast: bool = False) -> None:
    """Per-group GEMM: d[g, :masked_m[g]] = a[g, :masked_m[g]] @ b[g].T.

    a = (e4m3 [G, M, K], scales [G, M, ceil(K/128)]), b = (e4m3 [G, N, K], scales
    [G, ceil(N/128), ceil(K/128)]), d bf16 [G, M, N]; masked_m int32 [G] on the GPU (read
    by the kernel: CUDA-graph capturable); expected_m (typical rows per group) tunes tiles.
    """
    function = "m_grouped_fp8_gemm_nt_masked"
    if recipe is None and recipe_a is None and recipe_b is None and compiled_dims == "nk":
        try:
            return _C.m_grouped_fp8_gemm_nt_masked(a, b, d, masked_m, expected_m)
        except (TypeError, ValueError):
            pass  # as in fp8_gemm_nt
    if recipe is not None or recipe_a is not None or recipe_b is not None:
        if _per_channel_b(function, recipe, recipe_a, recipe_b):
            raise ValueError(f"{function}: recipe (1, 1, 128) is not a masked SM90 kernel; use (1, 128, 128)")
    if compiled_dims != "nk":
        _check_compiled_dims(function, compiled_dims)
    _C.m_grouped_fp8_gemm_nt_masked(*_fp8_operands(function, a, b, False), d, masked_m, expected_m)


def k_grouped_fp8_gemm_nt_contiguous(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
                                     d: torch.Tensor, ks_cpu: Sequence[int] | None, grouped_layout: torch.Tensor,
                                     c: torch.Tensor | None = None, recipe: Recipe = (1, 1, 128),
                                     compiled_dims: str = "mn", use_psum_layout: bool = False) -> None:
    """Weight-gradient GEMM over groups concatenated along K: d[g] = c[g] + a_g^T b_g.

    Group g has K = ks_cpu[g] (a multiple of 128); a = (e4m3, each group's [M, k_g] block
    K-major, concatenated flat, scales [M, sum k_g / 128]) and b likewise with N; d and c
    fp32 [G, M, N] (c may be d). grouped_layout is ks_cpu as an int32 tensor [G].
    Only recipe (1, 1, 128) and no PSUM layout, as DeepGEMM's SM90 kernel.
    """
    function = "k_grouped_fp8_gemm_nt_contiguous"
    if tuple(recipe) != (1, 1, 128):
        raise ValueError(f"{function}: SM90's K-grouped FP8 GEMM takes recipe (1, 1, 128) only, got {recipe!r}")
    _check_compiled_dims(function, compiled_dims)
    ks = _k_grouped_ks(function, ks_cpu, grouped_layout, c, use_psum_layout, _GRAN_K)
    a_data, sfa = _pair(function, "a", a)
    b_data, sfb = _pair(function, "b", b)
    _check_scale_dtype(function, "a[1]", sfa)
    _check_scale_dtype(function, "b[1]", sfb)
    a = a_data, get_mn_major_tma_aligned_tensor(sfa)
    b = b_data, get_mn_major_tma_aligned_tensor(sfb)
    _entry(function, "k_grouped_fp8_gemm_nt_contiguous", "the K-grouped FP8 GEMM")(a, b, d, ks, grouped_layout, c)


# ---- BF16 ------------------------------------------------------------------------------

def bf16_gemm_nt(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None,
                 compiled_dims: str = "nk") -> None:
    """d = a @ b.T (+ c) for bf16 a [M, K], b [N, K] (K-major, or MN-major views); d bf16 or fp32, c like d."""
    if compiled_dims != "nk":
        _check_compiled_dims("bf16_gemm_nt", compiled_dims)
    _C.bf16_gemm_nt(a, b, d, c)


def bf16_gemm_nn(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None,
                 compiled_dims: str = "nk") -> None:
    """d = a @ b (+ c) for a [M, K], b [K, N] (see bf16_gemm_nt)."""
    bf16_gemm_nt(a, _transposed("bf16_gemm_nn", "b", b, (0, 1)), d, c, compiled_dims)


def bf16_gemm_tn(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None,
                 compiled_dims: str = "mn") -> None:
    """d = a.T @ b (+ c) for a [K, M], b [K, N] (see bf16_gemm_nt)."""
    bf16_gemm_nt(_transposed("bf16_gemm_tn", "a", a, (0, 1)), _transposed("bf16_gemm_tn", "b", b, (0, 1)), d, c,
                 compiled_dims)


def bf16_gemm_tt(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None,
                 compiled_dims: str = "mn") -> None:
    """d = a.T @ b.T (+ c) for a [K, M], b [N, K] (see bf16_gemm_nt)."""
    bf16_gemm_nt(_transposed("bf16_gemm_tt", "a", a, (0, 1)), b, d, c, compiled_dims)


def m_grouped_bf16_gemm_nt_contiguous(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor,
                                      grouped_layout: torch.Tensor, compiled_dims: str = "nk",
                                      use_psum_layout: bool = False, ensure_zero_padding: bool = True,
                                      expected_m_for_psum_layout: int | None = None) -> None:
    """bf16 version of m_grouped_fp8_gemm_nt_contiguous: a [M, K], b [G, N, K], d bf16 [M, N].

    An MN-major b (a [G, N, K] view with stride 1 along N) is copied K-major first
    (the grouped kernels read B K-major): correct, at the cost of one copy of b per call.
    """
    function = "m_grouped_bf16_gemm_nt_contiguous"
    if compiled_dims != "nk":
        _check_compiled_dims(function, compiled_dims)
    if use_psum_layout or expected_m_for_psum_layout is not None:
        grouped_layout = _contiguous_layout(function, grouped_layout, _rows(a), use_psum_layout,
                                            expected_m_for_psum_layout)
    if isinstance(b, torch.Tensor) and b.dim() == 3 and b.stride(-1) != 1:
        b = b.contiguous()
    _C.m_grouped_bf16_gemm_nt_contiguous(a, b, d, grouped_layout)


def m_grouped_bf16_gemm_nn_contiguous(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor,
                                      grouped_layout: torch.Tensor, compiled_dims: str = "nk",
                                      use_psum_layout: bool = False, ensure_zero_padding: bool = True) -> None:
    """m_grouped_bf16_gemm_nt_contiguous with b [G, K, N]."""
    b = _transposed("m_grouped_bf16_gemm_nn_contiguous", "b", b, (1, 2))
    m_grouped_bf16_gemm_nt_contiguous(a, b, d, grouped_layout, compiled_dims, use_psum_layout, ensure_zero_padding)


def m_grouped_bf16_gemm_nt_masked(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, masked_m: torch.Tensor,
                                  expected_m: int, compiled_dims: str = "nk") -> None:
    """bf16 version of m_grouped_fp8_gemm_nt_masked: a [G, M, K], b [G, N, K], d bf16 [G, M, N]."""
    if compiled_dims != "nk":
        _check_compiled_dims("m_grouped_bf16_gemm_nt_masked", compiled_dims)
    _C.m_grouped_bf16_gemm_nt_masked(a, b, d, masked_m, expected_m)


def k_grouped_bf16_gemm_tn_contiguous(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor,
                                      ks_cpu: Sequence[int] | None, grouped_layout: torch.Tensor,
                                      c: torch.Tensor | None = None, compiled_dims: str = "mn",
                                      use_psum_layout: bool = False) -> None:
    """Weight-gradient GEMM over groups concatenated along K: d[g] = c[g] + a_g^T b_g.

    a bf16 [sum k_g, M], b bf16 [sum k_g, N] (contiguous), d and c fp32 [G, M, N] (c may
    be d); ks_cpu per-group K, each a multiple of get_mk_alignment_for_contiguous_layout();
    grouped_layout the same as an int32 tensor [G]. No PSUM layout on SM90 (as DeepGEMM).
    """
    function = "k_grouped_bf16_gemm_tn_contiguous"
    _check_compiled_dims(function, compiled_dims)
    ks = _k_grouped_ks(function, ks_cpu, grouped_layout, c, use_psum_layout, get_mk_alignment_for_contiguous_layout())
    _entry(function, "k_grouped_bf16_gemm_tn_contiguous", "the K-grouped BF16 GEMM")(a, b, d, ks, grouped_layout, c)


# ---- cuBLASLt, through torch ----------------------------------------------------------

def _cublaslt(function: str, a, b, d, c) -> None:
    """d = a @ b.T (+ c) for a [M, K], b [N, K] views (any strides), through torch's cuBLAS(Lt) matmul."""
    a = _tensor(function, "a", a, 2)
    b = _tensor(function, "b", b, 2)
    d = _tensor(function, "d", d, 2)
    if a.dtype != b.dtype or a.dtype not in (torch.bfloat16, torch.float8_e4m3fn):
        raise TypeError(f"{function}: a and b must both be torch.bfloat16 or torch.float8_e4m3fn, got {a.dtype} "
                        f"and {b.dtype}")
    if d.dtype not in (torch.bfloat16, _FP32):
        raise TypeError(f"{function}: d must have dtype torch.bfloat16 or torch.float32, got {d.dtype}")
    (m, k), (n, k_b) = a.shape, b.shape
    if k != k_b or tuple(d.shape) != (m, n):
        raise ValueError(f"{function}: shapes a {list(a.shape)}, b {list(b.shape)}, d {list(d.shape)} do not form "
                         f"[M, K] x [N, K] -> [M, N]")
    if d.stride(-1) != 1:
        raise ValueError(f"{function}: d must be row-major (stride 1 along N), got strides {list(d.stride())}")
    if c is not None:
        c = _tensor(function, "c", c, 2)
        if c.dtype != d.dtype or c.shape != d.shape:
            raise ValueError(f"{function}: c must have d's dtype and shape ({d.dtype}, {list(d.shape)}), got "
                             f"{c.dtype}, {list(c.shape)}")
    for name, t in (("a", a), ("b", b), ("d", d), ("c", c)):
        if t is not None and (not t.is_cuda or t.device != d.device):
            raise ValueError(f"{function}: {name} must be a CUDA tensor on d's device, got one on {t.device}")
    if m == 0 or n == 0:
        return
    if c is not None and c is not d:
        d.copy_(c)
    if k == 0:
        if c is None:
            d.zero_()
        return
    # FP32 products and reductions, C added in FP32 and one rounding to d's dtype, as
    # DeepGEMM's cuBLASLt call does (torch.mm on bf16 output may reduce split-K in bf16).
    if a.dtype == torch.float8_e4m3fn:  # unscaled FP8: cuBLASLt through torch._scaled_mm
        one = torch.ones((), dtype=_FP32, device=d.device)
        product = torch._scaled_mm(a.contiguous(), b.contiguous().t(), scale_a=one, scale_b=one, out_dtype=_FP32)
    else:
        product = torch.mm(a, b.t(), out_dtype=_FP32)
    if c is not None:
        product += d  # d holds c
    d.copy_(product)


def cublaslt_gemm_nt(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """d = a @ b.T (+ c) through torch's cuBLAS(Lt) matmul (torch.mm; unscaled FP8 via torch._scaled_mm).

    a [M, K], b [N, K] bf16 (or e4m3, unscaled), any strides; d bf16 or fp32 [M, N],
    row-major; c (d's dtype and shape, may be d) is added. The product is accumulated
    and C added in fp32, then rounded once to d's dtype (through an fp32 temporary).
    """
    _cublaslt("cublaslt_gemm_nt", a, b, d, c)


def cublaslt_gemm_nn(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """d = a @ b (+ c) for b [K, N], through torch's cuBLAS(Lt) matmul (see cublaslt_gemm_nt)."""
    _cublaslt("cublaslt_gemm_nn", a, _transposed("cublaslt_gemm_nn", "b", b, (0, 1)), d, c)


def cublaslt_gemm_tn(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """d = a.T @ b (+ c) for a [K, M], b [K, N], through torch's cuBLAS(Lt) matmul (see cublaslt_gemm_nt)."""
    _cublaslt("cublaslt_gemm_tn", _transposed("cublaslt_gemm_tn", "a", a, (0, 1)),
              _transposed("cublaslt_gemm_tn", "b", b, (0, 1)), d, c)


def cublaslt_gemm_tt(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """d = a.T @ b.T (+ c) for a [K, M], b [N, K], through torch's cuBLAS(Lt) matmul (see cublaslt_gemm_nt)."""
    _cublaslt("cublaslt_gemm_tt", _transposed("cublaslt_gemm_tt", "a", a, (0, 1)), b, d, c)


# DeepGEMM's names for the same functions: the fp8_fp4 spelling (FP4 operands are SM100's)
# and the legacy masked aliases vLLM looks up.
fp8_fp4_gemm_nt = fp8_gemm_nt
fp8_fp4_gemm_nn = fp8_gemm_nn
fp8_fp4_gemm_tn = fp8_gemm_tn
fp8_fp4_gemm_tt = fp8_gemm_tt
m_grouped_fp8_fp4_gemm_nt_contiguous = m_grouped_fp8_gemm_nt_contiguous
m_grouped_fp8_fp4_gemm_nn_contiguous = m_grouped_fp8_gemm_nn_contiguous
m_grouped_fp8_fp4_gemm_nt_masked = m_grouped_fp8_gemm_nt_masked
fp8_m_grouped_gemm_nt_masked = m_grouped_fp8_gemm_nt_masked
bf16_m_grouped_gemm_nt_masked = m_grouped_bf16_gemm_nt_masked
