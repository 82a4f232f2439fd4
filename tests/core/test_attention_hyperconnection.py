"""tf32_hc_prenorm_gemm (deep_gemm.hyperconnection, the mHC pre-norm GEMM next to the
indexer) validates every argument before any GPU work: CPU tensors of the wrong dtype,
shape or layout raise a TypeError or ValueError naming the argument."""
import inspect

import pytest
import torch

import deep_gemm


def operands(m=13, n=24, k=7168, splits=None):
    d_shape = (m, n) if splits is None else (splits, m, n)
    s_shape = (m,) if splits is None else (splits, m)
    return dict(a=torch.zeros(m, k, dtype=torch.bfloat16), b=torch.zeros(n, k), d=torch.zeros(d_shape),
                sqr_sum=torch.zeros(s_shape), num_splits=splits)


def test_signature_is_upstreams():
    params = [(p.name, p.default) for p in inspect.signature(deep_gemm.tf32_hc_prenorm_gemm).parameters.values()]
    empty = inspect.Parameter.empty
    assert params == [("a", empty), ("b", empty), ("d", empty), ("sqr_sum", empty), ("num_splits", None)]


@pytest.mark.parametrize("change, error, words", [
    (dict(a=torch.zeros(13, 7168)), TypeError, "a must have dtype"),
    (dict(b=torch.zeros(24, 7168, dtype=torch.bfloat16)), TypeError, "b must have dtype"),
    (dict(b=torch.zeros(24, 7000)), ValueError, "K differs"),
    (dict(b=torch.zeros(40, 7168)), ValueError, "N (b.shape[0]) must be in [1, 32]"),
    (dict(a=torch.zeros(13, 100, dtype=torch.bfloat16), b=torch.zeros(24, 100)), ValueError, "multiple of 8"),
    (dict(d=torch.zeros(13, 23)), ValueError, "d must have shape"),
    (dict(d=torch.zeros(13, 24, dtype=torch.bfloat16)), TypeError, "d must have dtype"),
    (dict(sqr_sum=torch.zeros(14)), ValueError, "sqr_sum must have shape"),
    (dict(num_splits=16), ValueError, "[num_splits, M, N]"),
    (dict(num_splits=0), ValueError, "num_splits must be None or >= 1"),
    (dict(a=torch.zeros(7168, 13, dtype=torch.bfloat16).t()), ValueError, "a must be contiguous"),
    (dict(), ValueError, "must be a CUDA tensor"),
])
def test_rejects(change, error, words):
    with pytest.raises(error) as info:
        deep_gemm.tf32_hc_prenorm_gemm(**{**operands(), **change})
    assert words in str(info.value)


def test_split_shapes_are_accepted_up_to_the_device_check():
    with pytest.raises(ValueError, match="must be a CUDA tensor"):
        deep_gemm.tf32_hc_prenorm_gemm(**operands(splits=16))
