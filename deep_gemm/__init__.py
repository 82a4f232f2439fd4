"""FP8/BF16 GEMM kernels for NVIDIA Hopper with DeepGEMM's Python API.

Kernels are CUDA templates (deep_gemm/include) compiled at first use for the
shapes they meet; `_C` is the per-CPython binding to the C++ runtime.
"""
from ._loader import _C
from ._C import (
    bf16_gemm_nt,
    fp8_gemm_nt,
    get_mk_alignment_for_contiguous_layout,
    get_num_sms,
    m_grouped_bf16_gemm_nt_contiguous,
    m_grouped_bf16_gemm_nt_masked,
    m_grouped_fp8_gemm_nt_contiguous,
    m_grouped_fp8_gemm_nt_masked,
    set_num_sms,
)
from .utils import (
    align,
    calc_diff,
    ceil_div,
    get_col_major_tma_aligned_tensor,
    get_mn_major_tma_aligned_tensor,
    get_tma_aligned_size,
    per_block_cast_to_fp8,
    per_token_cast_to_fp8,
)

__all__ = [
    "align",
    "bf16_gemm_nt",
    "calc_diff",
    "ceil_div",
    "fp8_gemm_nt",
    "get_col_major_tma_aligned_tensor",
    "get_mk_alignment_for_contiguous_layout",
    "get_mn_major_tma_aligned_tensor",
    "get_num_sms",
    "get_tma_aligned_size",
    "m_grouped_bf16_gemm_nt_contiguous",
    "m_grouped_bf16_gemm_nt_masked",
    "m_grouped_fp8_gemm_nt_contiguous",
    "m_grouped_fp8_gemm_nt_masked",
    "per_block_cast_to_fp8",
    "per_token_cast_to_fp8",
    "set_num_sms",
]
