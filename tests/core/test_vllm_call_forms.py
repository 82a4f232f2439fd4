"""vLLM's DeepGEMM calls, in the forms vLLM makes them, reach argument validation.

The forms are the "vLLM calls it" column of shared/reference/deepgemm_api.md (vLLM's
vllm/utils/deep_gemm.py, its FP8 linear utilities, the DeepGEMM MoE experts and the
warm-up): vLLM looks every name up with getattr(deep_gemm, name, None) and adds
disable_ue8m0_cast= to the FP8 GEMMs and transform_sf_into_required_layout. With CPU
tensors each GEMM must get past every argument check to the device check (a
ValueError saying a tensor must be a CUDA tensor), never stop at a TypeError about an
argument; the pure layout helpers must return what vLLM uses.
"""
from __future__ import annotations

import re

import pytest
import torch

import deep_gemm

M, N, K, E, T = 256, 512, 1024, 4, 128
ON_DEVICE_CHECK = re.escape("must be a CUDA tensor")

# Names vLLM resolves (getattr(deep_gemm, name, None)); None makes vLLM raise at first use.
VLLM_NAMES = [
    "fp8_gemm_nt", "m_grouped_fp8_gemm_nt_contiguous", "fp8_m_grouped_gemm_nt_masked",
    "transform_sf_into_required_layout", "get_mk_alignment_for_contiguous_layout",
    "get_theoretical_mk_alignment_for_contiguous_layout", "set_mk_alignment_for_contiguous_layout",
    "get_col_major_tma_aligned_tensor", "get_mn_major_tma_aligned_packed_ue8m0_tensor",
    "get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor", "get_num_sms", "set_num_sms", "set_pdl",
    "cublaslt_gemm_nt", "get_tma_aligned_size", "per_block_cast_to_fp8", "ceil_div",
]


def fp8(*shape):
    return torch.zeros(shape, dtype=torch.float8_e4m3fn)


def weights(groups: int | None = None):
    shape = (N, K) if groups is None else (groups, N, K)
    return fp8(*shape), torch.ones((*shape[:-2], N // 128, K // 128))


def token_scales(rows: int, row_major: bool) -> torch.Tensor:
    scales = torch.rand((rows, K // 128)) + 0.5
    return scales if row_major else deep_gemm.get_col_major_tma_aligned_tensor(scales)


@pytest.mark.parametrize("name", VLLM_NAMES)
def test_vllm_resolves_every_name(name):
    assert callable(getattr(deep_gemm, name, None))


@pytest.mark.parametrize("e8m0", [False, True])
@pytest.mark.parametrize("row_major_scales", [False, True])
def test_w8a8_block_linear(e8m0, row_major_scales):
    # fp8_gemm_nt((q, s), (w, ws), out, disable_ue8m0_cast=not is_deep_gemm_e8m0_used())
    q, s = fp8(M, K), token_scales(M, row_major_scales)
    out = torch.empty((M, N), dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_gemm_nt((q, s), weights(), out, disable_ue8m0_cast=not e8m0)


@pytest.mark.parametrize("m", [1, 7, 128, M])
def test_warmup_slices_row_major_scales(m):
    # The warm-up: fp8_gemm_nt((a[:m], a_s[:m]), (w, ws), out[:m]) on row-major A scales.
    a, a_s = fp8(M, K), token_scales(M, row_major=True)
    out = torch.empty((M, N), dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_gemm_nt((a[:m], a_s[:m]), weights(), out[:m], disable_ue8m0_cast=True)


@pytest.mark.parametrize("row_major_scales", [False, True])
def test_deep_gemm_experts_contiguous(row_major_scales):
    # m_grouped_fp8_gemm_nt_contiguous((a1q, a1q_scale), (w1, w1_scale), mm1_out, expert_ids, disable_ue8m0_cast=...)
    a1q, a1q_scale = fp8(M, K), token_scales(M, row_major_scales)
    expert_ids = torch.arange(M, dtype=torch.int32) // (M // E)
    mm1_out = torch.empty((M, N), dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous((a1q, a1q_scale), weights(E), mm1_out, expert_ids,
                                                   disable_ue8m0_cast=True)


@pytest.mark.parametrize("tokens", [T, T + 2])
def test_batched_deep_gemm_experts_masked(tokens):
    # fp8_m_grouped_gemm_nt_masked((a1q, a1q_scale), (w1, w1_scale), workspace1, expert_num_tokens, expected_m, ...)
    # vLLM's A scales are MN-major per expert: TMA-aligned only when the token count is a multiple of 4.
    a1q = fp8(E, tokens, K)
    a1q_scale = torch.ones((E, K // 128, tokens)).transpose(1, 2)
    workspace1 = torch.empty((E, tokens, N), dtype=torch.bfloat16)
    expert_num_tokens = torch.full((E,), 3, dtype=torch.int32)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_m_grouped_gemm_nt_masked((a1q, a1q_scale), weights(E), workspace1, expert_num_tokens, 64,
                                               disable_ue8m0_cast=True)


def test_weight_scale_post_processing():
    # transform_sf_into_required_layout(sf=ws, mn=..., k=..., recipe=(1, 128, 128), num_groups=E, is_sfa=False,
    # disable_ue8m0_cast=...) at model load: the block scales come back as they are.
    _, ws = weights(E)
    out = deep_gemm.transform_sf_into_required_layout(sf=ws, mn=N, k=K, recipe=(1, 128, 128), num_groups=E,
                                                      is_sfa=False, disable_ue8m0_cast=True)
    assert out is ws
    dense = ws[0]
    assert deep_gemm.transform_sf_into_required_layout(sf=dense, mn=N, k=K, recipe=(1, 128, 128), is_sfa=False,
                                                       disable_ue8m0_cast=False) is dense


def test_alignment_calls():
    assert deep_gemm.get_mk_alignment_for_contiguous_layout() == 128
    # vLLM tries (expected_m, num_groups) first and falls back to one argument on TypeError,
    # as DeepGEMM 2.6.1 takes only expected_m.
    with pytest.raises(TypeError):
        deep_gemm.get_theoretical_mk_alignment_for_contiguous_layout(64, E)
    assert deep_gemm.get_theoretical_mk_alignment_for_contiguous_layout(64) == 128
    # mk_alignment_scope: set, then restore.
    previous = deep_gemm.get_mk_alignment_for_contiguous_layout()
    deep_gemm.set_mk_alignment_for_contiguous_layout(256)
    assert deep_gemm.get_m_alignment_for_contiguous_layout() == 256
    deep_gemm.set_mk_alignment_for_contiguous_layout(previous)
    assert deep_gemm.get_k_alignment_for_contiguous_layout() == previous


def test_runtime_settings():
    previous = deep_gemm.get_pdl()
    deep_gemm.set_pdl(True)
    assert deep_gemm.get_pdl() is True
    deep_gemm.set_pdl(previous)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):  # the SM count is the device's: no GPU, no count
            deep_gemm.get_num_sms()
    else:
        assert deep_gemm.get_num_sms() > 0


def test_layout_wrappers():
    sf = torch.rand((M, K // 128)) + 0.5
    aligned = deep_gemm.get_col_major_tma_aligned_tensor(sf)
    assert aligned.stride() == (1, M) and torch.equal(aligned, sf)
    _, ue8m0 = deep_gemm.per_token_cast_to_fp8(torch.randn(M, K), use_ue8m0=True)
    packed = deep_gemm.get_mn_major_tma_aligned_packed_ue8m0_tensor(ue8m0)
    assert packed.dtype == torch.int32 and packed.shape == (M, K // 512) and packed.stride() == (1, M)
    # The k-grouped packer with vLLM's four arguments (sf, ks_tensor, ks, gran_k).
    ks = [256, 512]
    _, per_channel = deep_gemm.per_channel_cast_to_fp8(torch.randn(sum(ks), 64), use_ue8m0=True)
    grouped = deep_gemm.get_k_grouped_mn_major_tma_aligned_packed_ue8m0_tensor(
        per_channel, torch.tensor(ks, dtype=torch.int32), ks, 128)
    assert grouped.shape == (1 + 1, 64)


def test_cublaslt_passthrough():
    # vLLM's newer wrapper: cublaslt_gemm_nt(*args, **kwargs).
    a = torch.zeros((M, K), dtype=torch.bfloat16)
    b = torch.zeros((N, K), dtype=torch.bfloat16)
    d = torch.empty((M, N), dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.cublaslt_gemm_nt(*(a, b, d), **{"c": None})
