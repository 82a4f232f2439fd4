"""DeepSeek's manifold-constrained hyperconnections (mHC): the pre-norm GEMM, with
DeepGEMM 2.x's name, parameters and defaults."""
from __future__ import annotations

import torch

from ._loader import _C

__all__ = ["tf32_hc_prenorm_gemm"]


def tf32_hc_prenorm_gemm(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor, sqr_sum: torch.Tensor,
                         num_splits: int | None = None) -> None:
    """d = a @ b.T on the TF32 tensor cores and sqr_sum = (a.float() ** 2).sum(-1), in place.

    a: bf16 [M, K]; b: fp32 [N, K] (N <= 32, K a multiple of 8). num_splits None:
    d fp32 [M, N], sqr_sum fp32 [M]. num_splits S >= 1: d [S, M, N] and sqr_sum [S, M]
    receive partial sums over S ranges of K, which the caller adds up (d.sum(0)).
    """
    if num_splits is not None and num_splits < 1:
        raise ValueError(f"tf32_hc_prenorm_gemm: num_splits must be None or >= 1, got {num_splits}")
    _C.tf32_hc_prenorm_gemm(a, b, d, sqr_sum, 0 if num_splits is None else num_splits)
