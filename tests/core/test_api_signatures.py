"""The public API has DeepGEMM 2.6.1's names, modules, parameters, order and defaults.

UPSTREAM is written from DeepGEMM 54e2261: its pybind11 registrations (csrc/apis/*.hpp,
py::arg names and defaults) and its Python modules (deep_gemm/__init__.py, utils/,
testing/). Functions registered without py::arg names take positional arguments only
there: POSITIONAL_ONLY lists them with their argument count, and any names are fine.
"""
from __future__ import annotations

import inspect

import pytest

import deep_gemm

FP8 = "a, b, d, c=None, recipe=None, recipe_a=None, recipe_b=None, compiled_dims='{}', disable_ue8m0_cast=False"
M_CONTIGUOUS = ("a, b, d, grouped_layout, recipe=None, recipe_a=None, recipe_b=None, compiled_dims='nk', "
                "disable_ue8m0_cast=False, use_psum_layout=False, ensure_zero_padding=True")
BF16 = "a, b, d, c=None, compiled_dims='{}'"

UPSTREAM = {
    # csrc/apis/gemm.hpp
    "fp8_fp4_gemm_nt": FP8.format("nk"),
    "fp8_fp4_gemm_nn": FP8.format("nk"),
    "fp8_fp4_gemm_tn": FP8.format("mn"),
    "fp8_fp4_gemm_tt": FP8.format("mn"),
    "m_grouped_fp8_fp4_gemm_nt_contiguous": M_CONTIGUOUS + ", expected_m_for_psum_layout=None",
    "m_grouped_fp8_fp4_gemm_nn_contiguous": M_CONTIGUOUS,
    "m_grouped_fp8_fp4_gemm_nt_masked": ("a, b, d, masked_m, expected_m, recipe=None, recipe_a=None, recipe_b=None, "
                                         "compiled_dims='nk', disable_ue8m0_cast=False"),
    "k_grouped_fp8_gemm_nt_contiguous": ("a, b, d, ks_cpu, grouped_layout, c=None, recipe=(1, 1, 128), "
                                         "compiled_dims='mn', use_psum_layout=False"),
    "bf16_gemm_nt": BF16.format("nk"),
    "bf16_gemm_nn": BF16.format("nk"),
    "bf16_gemm_tn": BF16.format("mn"),
    "bf16_gemm_tt": BF16.format("mn"),
    "m_grouped_bf16_gemm_nt_contiguous": ("a, b, d, grouped_layout, compiled_dims='nk', use_psum_layout=False, "
                                          "ensure_zero_padding=True, expected_m_for_psum_layout=None"),
    "m_grouped_bf16_gemm_nn_contiguous": ("a, b, d, grouped_layout, compiled_dims='nk', use_psum_layout=False, "
                                          "ensure_zero_padding=True"),
    "m_grouped_bf16_gemm_nt_masked": "a, b, d, masked_m, expected_m, compiled_dims='nk'",
    "k_grouped_bf16_gemm_tn_contiguous": ("a, b, d, ks_cpu, grouped_layout, c=None, compiled_dims='mn', "
                                          "use_psum_layout=False"),
    "cublaslt_gemm_nt": "a, b, d, c=None",
    "cublaslt_gemm_nn": "a, b, d, c=None",
    "cublaslt_gemm_tn": "a, b, d, c=None",
    "cublaslt_gemm_tt": "a, b, d, c=None",
    # csrc/apis/attention.hpp
    "fp8_gemm_nt_skip_head_mid": "a, b, d, head_splits, recipe=None, compiled_dims='nk', disable_ue8m0_cast=False",
    # csrc/apis/layout.hpp
    "transform_sf_into_required_layout": ("sf, mn, k, recipe, num_groups=None, is_sfa=None, disable_ue8m0_cast=False, "
                                          "psum_layout=None"),
    "get_mn_major_tma_aligned_packed_ue8m0_tensor": "sf, psum_layout=None",
    "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor": ("sf, grouped_layout, ks_cpu, gran_k, k_alignment, "
                                                               "use_psum_layout=False"),
    "get_theoretical_mk_alignment_for_contiguous_layout": "expected_m=None",
    "get_mk_alignment_for_contiguous_layout": "",
    "get_num_sms": "",
    "get_tc_util": "",
    "get_pdl": "",
    # deep_gemm/utils/math.py
    "ceil_div": "x, y",
    "align": "x, y",
    "ceil_to_ue8m0": "x",
    "pack_ue8m0_to_int": "x",
    "unpack_ue8m0_from_int": "packed_sf",
    "per_token_cast_to_fp8": "x, use_ue8m0, gran_k=128, use_packed_ue8m0=False",
    "per_channel_cast_to_fp8": "x, use_ue8m0, gran_k=128",
    "per_block_cast_to_fp8": "x, use_ue8m0, gran_k=128",
    "per_custom_dims_cast_to_fp8": "x, dims, use_ue8m0",
    "per_token_cast_to_fp4": "x, use_ue8m0, gran_k=128, use_packed_ue8m0=False",
    "transpose_packed_fp4": "a",
    "cast_back_from_fp4": "packed, sf, gran_k=128, use_packed_ue8m0=False",
}

# pybind11 functions without py::arg: (name, number of positional arguments).
POSITIONAL_ONLY = {
    "get_tma_aligned_size": 2,
    "get_mn_major_tma_aligned_tensor": 1,
    "set_mk_alignment_for_contiguous_layout": 1,
    "set_num_sms": 1,
    "set_tc_util": 1,
    "set_pdl": 1,
    "set_ignore_compile_dims": 1,
    "set_block_size_multiple_of": 1,
}

# Parameters DeepGEMM requires that have a default here, so that more calls work:
# this package's earlier one-argument casts, and vLLM's 4-argument k-grouped packer.
ADDED_DEFAULTS = {
    ("per_token_cast_to_fp8", "use_ue8m0"): False,
    ("per_block_cast_to_fp8", "use_ue8m0"): False,
    ("get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor", "k_alignment"): None,
}

TESTING = {
    "calc_diff": "x, y",
    "count_bytes": "*tensors",
    "assert_bitwise_equal": "x, y, label=''",
    "bench": "fn, num_warmups=5, num_tests=10, high_precision=False",
    "bench_kineto": ("fn, kernel_names, num_tests=30, suppress_kineto_output=False, trace_path=None, flush_l2=True, "
                     "with_multiple_kernels=False, barrier=None"),
    "get_arch_major": "",
    "test_filter": "condition",
    "ignore_env": "name, condition",
}

ALIASES = {
    "fp8_gemm_nt": "fp8_fp4_gemm_nt",
    "fp8_gemm_nn": "fp8_fp4_gemm_nn",
    "fp8_gemm_tn": "fp8_fp4_gemm_tn",
    "fp8_gemm_tt": "fp8_fp4_gemm_tt",
    "m_grouped_fp8_gemm_nt_contiguous": "m_grouped_fp8_fp4_gemm_nt_contiguous",
    "m_grouped_fp8_gemm_nn_contiguous": "m_grouped_fp8_fp4_gemm_nn_contiguous",
    "m_grouped_fp8_gemm_nt_masked": "m_grouped_fp8_fp4_gemm_nt_masked",
    "fp8_m_grouped_gemm_nt_masked": "m_grouped_fp8_fp4_gemm_nt_masked",
    "bf16_m_grouped_gemm_nt_masked": "m_grouped_bf16_gemm_nt_masked",
    "get_m_alignment_for_contiguous_layout": "get_mk_alignment_for_contiguous_layout",
    "get_k_alignment_for_contiguous_layout": "get_mk_alignment_for_contiguous_layout",
    "get_col_major_tma_aligned_tensor": "get_mn_major_tma_aligned_tensor",
}


def expected_parameters(text: str) -> list[tuple[str, inspect._ParameterKind, object]]:
    namespace: dict = {}
    exec(f"def f({text}): pass", namespace)  # the table's parameter lists, as Python parses them
    return [(p.name, p.kind, p.default) for p in inspect.signature(namespace["f"]).parameters.values()]


def actual_parameters(fn, name: str) -> list[tuple[str, inspect._ParameterKind, object]]:
    params = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default
        if (name, p.name) in ADDED_DEFAULTS:
            assert default == ADDED_DEFAULTS[name, p.name]
            default = inspect.Parameter.empty
        params.append((p.name, p.kind, default))
    return params


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_signature_matches_upstream(name):
    fn = getattr(deep_gemm, name)
    assert actual_parameters(fn, name) == expected_parameters(UPSTREAM[name])
    assert fn.__doc__, f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(POSITIONAL_ONLY))
def test_positional_functions_take_their_arguments_positionally(name):
    params = list(inspect.signature(getattr(deep_gemm, name)).parameters.values())
    assert len(params) == POSITIONAL_ONLY[name]
    assert all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


@pytest.mark.parametrize("name", sorted(TESTING))
def test_testing_module(name):
    fn = getattr(deep_gemm.testing, name)
    assert actual_parameters(fn, name) == expected_parameters(TESTING[name])


@pytest.mark.parametrize("alias, name", sorted(ALIASES.items()))
def test_aliases_are_the_same_function(alias, name):
    assert getattr(deep_gemm, alias) is getattr(deep_gemm, name)


def test_upstream_module_layout():
    # What DeepGEMM's own tests import, from where they import it.
    from deep_gemm.testing import bench_kineto, calc_diff, count_bytes, get_arch_major, ignore_env  # noqa: F401
    from deep_gemm.utils import (  # noqa: F401
        align,
        ceil_div,
        get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor,
        get_mk_alignment_for_contiguous_layout,
        get_mn_major_tma_aligned_packed_ue8m0_tensor,
        get_mn_major_tma_aligned_tensor,
        get_tma_aligned_size,
        per_block_cast_to_fp8,
        per_channel_cast_to_fp8,
        per_token_cast_to_fp4,
        per_token_cast_to_fp8,
        set_mk_alignment_for_contiguous_layout,
        transpose_packed_fp4,
    )
    from deep_gemm.utils.layout import get_m_alignment_for_contiguous_layout  # noqa: F401
    from deep_gemm.utils.math import pack_ue8m0_to_int  # noqa: F401

    assert deep_gemm.__version__ == "2.6.1"
    assert len(deep_gemm.__all__) == len(set(deep_gemm.__all__))
    for name in deep_gemm.__all__:
        assert hasattr(deep_gemm, name), name
    # The indexer, einsum and mHC modules' names are top-level too, as upstream's.
    for name in ["fp8_fp4_mqa_logits", "fp8_mqa_logits", "get_paged_mqa_logits_metadata", "fp8_fp4_paged_mqa_logits",
                 "fp8_paged_mqa_logits", "einsum", "fp8_einsum", "tf32_hc_prenorm_gemm"]:
        assert name in deep_gemm.__all__ and callable(getattr(deep_gemm, name)), name
    # Every upstream name is exported at the top level, as `from deep_gemm import *` gives it.
    for name in [*UPSTREAM, *POSITIONAL_ONLY, *ALIASES, "set_tc_util", "set_pdl"]:
        assert name in deep_gemm.__all__, name
