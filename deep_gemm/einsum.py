"""DeepGEMM 2.x's einsum entry points: the fixed expressions its callers use, with its
names, parameters and defaults. Each calls one positional `_C` entry point, which
validates every argument."""
from __future__ import annotations

import torch

from ._loader import _C

__all__ = ["einsum", "fp8_einsum"]


def einsum(expr: str, a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor | None = None,
           use_cublaslt: bool = False) -> None:
    """d = einsum(expr, a, b) for bf16 a and b, in place.

    'bmk,bnk->mn': d [m, n] = sum over the batch of a[b] @ b[b].T; an fp32 d is
    accumulated into (pass c=d), a bf16 d is overwritten (c None).
    'bhr,hdr->bhd' and 'bhd,hdr->bhr': per head, bf16 d [b, h, d] / [b, h, r]; the
    operands' last dimension must have unit stride (b may be a slice of a wider tensor).
    Both run the per-head kernel (b K-major for 'bhr,hdr->bhd', MN-major for
    'bhd,hdr->bhr') where the contracted dim is a multiple of 64, b's rows are 16-byte
    aligned, a is contiguous and d contiguous or its rows and heads 16-byte multiples apart (d
    may then be a slice of a wider tensor); otherwise, and with use_cublaslt=True,
    cuBLAS's batched GEMM.
    """
    _C.einsum(expr, a, b, d, c, bool(use_cublaslt))


def fp8_einsum(expr: str, a, b, d: torch.Tensor, c: torch.Tensor | None = None,
               recipe: tuple[int, int, int] = (1, 128, 128)) -> None:
    """'bhr,hdr->bhd' over e4m3 operands with DeepGEMM's block scales, in place.

    a = (e4m3 [b, h, r], fp32 [b, h, ceil(r/128)] per-token scales); b = (e4m3
    [h, d, r], fp32 [h, ceil(d/128), ceil(r/128)] per-block scales, both contiguous);
    d [b, h, d] bf16, or fp32 with c (fp32, may be d) added. r is a multiple of 16.
    One GEMM over all heads; a[0] and d may be views (unit stride in their last
    dimension). SM90 takes recipe (1, 128, 128) only.
    """
    if len(recipe) != 3:
        raise ValueError(f"fp8_einsum: recipe must be 3 ints (gran_m, gran_n, gran_k), got {recipe!r}")
    _C.fp8_einsum(expr, a, b, d, c, *recipe)
