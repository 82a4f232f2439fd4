"""deep_gemm.gemm: what the Python layer checks, converts and hands to _C (CPU tensors).

Calls with CPU tensors run the whole layer and stop at _C's device check. Where the test
needs to see what reaches _C, a recorder stands in for it: it accepts operands in the
layout the kernels read and, like _C, refuses anything else with a ValueError.
"""
from __future__ import annotations

import re

import pytest
import torch

import deep_gemm
from deep_gemm import _C, gemm

M, N, K, G = 256, 384, 512, 3
ON_DEVICE_CHECK = re.escape("must be a CUDA tensor")


def fp8(*shape):
    return torch.zeros(shape, dtype=torch.float8_e4m3fn)


def aligned(sf: torch.Tensor) -> torch.Tensor:
    return deep_gemm.get_mn_major_tma_aligned_tensor(sf)


def dense_operands(m=M):
    a = (fp8(m, K), aligned(torch.ones(m, K // 128)))
    b = (fp8(N, K), torch.ones(N // 128, K // 128))
    return a, b, torch.empty(m, N, dtype=torch.bfloat16)


class Recorder:
    """Stands in for _C: records each call; refuses A scales that are not TMA-aligned, as _C does."""

    def __init__(self):
        self.calls = []

    def _call(self, name, *args):
        self.calls.append((name, args))
        sfa = args[0][1]
        rows = (sfa.size(-2) + 3) // 4 * 4
        if sfa.stride()[-2:] != (1, rows) or not args[1][1].is_contiguous():
            raise ValueError(f"{name}: a[1] must be in the MN-major TMA-aligned layout")

    def __getattr__(self, name):
        if name.startswith(("fp8_", "m_grouped_fp8", "k_grouped_fp8")):
            return lambda *args: self._call(name, *args)
        raise AttributeError(name)


@pytest.fixture
def recorder(monkeypatch):
    stub = Recorder()
    monkeypatch.setattr(gemm, "_C", stub)
    return stub


def test_operands_in_the_kernels_layout_go_straight_to_c(recorder):
    a, b, d = dense_operands()
    deep_gemm.fp8_gemm_nt(a, b, d, disable_ue8m0_cast=True)
    assert len(recorder.calls) == 1
    name, (a_seen, b_seen, d_seen, c_seen) = recorder.calls[0]
    assert name == "fp8_gemm_nt" and a_seen is a and b_seen is b and d_seen is d and c_seen is None


def test_other_scale_layouts_are_converted_once(recorder):
    (a_data, sfa), (b_data, sfb), d = dense_operands(m=5)
    row_major = torch.rand(5, K // 128)
    transposed_sfb = sfb.t().contiguous().t()
    deep_gemm.fp8_gemm_nt((a_data, row_major), (b_data, transposed_sfb), d)
    assert [name for name, _ in recorder.calls] == ["fp8_gemm_nt", "fp8_gemm_nt"]  # refused, then converted
    (a_seen, b_seen, _, _) = recorder.calls[1][1]
    assert a_seen[0] is a_data and a_seen[1].stride() == (1, 8) and torch.equal(a_seen[1], row_major)
    assert b_seen[1].is_contiguous() and torch.equal(b_seen[1], transposed_sfb)


def reference_m_indices(psum: list[int], m: int, alignment: int) -> list[int]:
    rows = [-1] * m
    start = 0
    for group, end in enumerate(psum):
        for r in range(start, end):
            rows[r] = group
        start = (end + alignment - 1) // alignment * alignment
    return rows


@pytest.mark.parametrize("ends, alignment", [([100, 300, 300, 700], 128), ([0, 5, 260], 128), ([129, 512], 256),
                                             ([768], 128)])
def test_psum_layout_becomes_per_row_indices(recorder, ends, alignment):
    m = 768
    deep_gemm.set_mk_alignment_for_contiguous_layout(alignment)
    try:
        a = (fp8(m, K), aligned(torch.ones(m, K // 128)))
        b = (fp8(len(ends), N, K), torch.ones(len(ends), N // 128, K // 128))
        psum = torch.tensor(ends, dtype=torch.int32)
        deep_gemm.m_grouped_fp8_gemm_nt_contiguous(a, b, torch.empty(m, N, dtype=torch.bfloat16), psum,
                                                   use_psum_layout=True, expected_m_for_psum_layout=200)
    finally:
        deep_gemm.set_mk_alignment_for_contiguous_layout(128)
    m_indices = recorder.calls[-1][1][3]
    assert m_indices.dtype == torch.int32 and m_indices.tolist() == reference_m_indices(ends, m, alignment)


def test_contiguous_layout_keywords():
    a, _, _ = dense_operands()
    b = (fp8(G, N, K), torch.ones(G, N // 128, K // 128))
    d = torch.empty(M, N, dtype=torch.bfloat16)
    m_indices = torch.zeros(M, dtype=torch.int32)
    op = deep_gemm.m_grouped_fp8_gemm_nt_contiguous
    with pytest.raises(ValueError, match="expected_m_for_psum_layout only applies with use_psum_layout=True"):
        op(a, b, d, m_indices, expected_m_for_psum_layout=64)
    with pytest.raises(ValueError, match=r"recipe \(1, 1, 128\) is not an M-grouped SM90 kernel"):
        op(a, b, d, m_indices, recipe=(1, 1, 128))
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):  # ensure_zero_padding: SM100-only, ignored on SM90
        op(a, b, d, m_indices, ensure_zero_padding=False, compiled_dims="k")
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        op(a, b, d, torch.tensor([100, 256, 256], dtype=torch.int32), use_psum_layout=True)
    with pytest.raises(TypeError, match="grouped_layout must have dtype torch.int32"):
        op(a, b, d, torch.tensor([100, 256, 256]), use_psum_layout=True)


@pytest.mark.parametrize(
    "keywords, error, message",
    [
        ({"recipe": (1, 128, 32)}, ValueError, "FP4 and gran_k 32 are SM100"),
        ({"recipe": (128, 128, 128)}, ValueError, r"\(gran_m, gran_n\) = \(128, 128\)"),
        ({"recipe": (1, 128)}, ValueError, r"recipe must be \(gran_m, gran_n, gran_k\)"),
        ({"recipe": (1, 128, 128), "recipe_a": (1, 128), "recipe_b": (128, 128)}, ValueError, "not both"),
        ({"recipe_a": (1, 128)}, ValueError, "recipe_a and recipe_b go together"),
        ({"recipe_a": (1, 32), "recipe_b": (1, 32)}, ValueError, "SM100"),
        ({"compiled_dims": "xy"}, ValueError, "compiled_dims must be a str of the letters"),
        ({"recipe": (1, 128, 128)}, ValueError, ON_DEVICE_CHECK),
        ({"recipe_a": (1, 128), "recipe_b": (128, 128), "compiled_dims": "mnk"}, ValueError, ON_DEVICE_CHECK),
    ],
)
def test_fp8_recipes(keywords, error, message):
    a, b, d = dense_operands()
    with pytest.raises(error, match=message):
        deep_gemm.fp8_gemm_nt(a, b, d, **keywords)


def test_fp8_1d1d_recipe():
    a, (b_data, _), _ = dense_operands()
    b = (b_data, aligned(torch.ones(N, K // 128)))  # per (row, 128 K)
    d = torch.zeros(M, N)
    if hasattr(_C, "fp8_gemm_nt_1d1d"):
        expected = pytest.raises(ValueError, match=ON_DEVICE_CHECK)
    else:
        expected = pytest.raises(NotImplementedError, match=re.escape("needs _C.fp8_gemm_nt_1d1d"))
    with expected:
        deep_gemm.fp8_gemm_nt(a, b, d, c=d, recipe=(1, 1, 128))


def test_packed_ue8m0_scales_are_refused():
    (a_data, _), b, d = dense_operands()
    packed = torch.zeros(M, 1, dtype=torch.int32)
    with pytest.raises(TypeError, match=re.escape("a[1] holds packed UE8M0 scales (torch.int32), an SM100 format")):
        deep_gemm.fp8_gemm_nt((a_data, packed), b, d, disable_ue8m0_cast=False)


def test_fp8_transposed_names_need_k_major_operands():
    a, (b_data, sfb), d = dense_operands()
    # b given [K, N] row-major: its transpose is MN-major, which SM90 FP8 cannot read.
    with pytest.raises(ValueError, match=re.escape("fp8_gemm_nn: b[0] must be K-major")):
        deep_gemm.fp8_gemm_nn(a, (b_data.t().contiguous(), sfb.t().contiguous()), d)
    # ... a [K, N] view of a K-major [N, K] tensor is fine.
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_gemm_nn(a, (b_data.t(), sfb.t()), d)
    with pytest.raises(ValueError, match=re.escape("fp8_gemm_tn: a[0] must be K-major")):
        deep_gemm.fp8_gemm_tn((a[0].t().contiguous(), a[1].t()), (b_data.t(), sfb.t()), d)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_gemm_tt((a[0].t(), a[1].t()), (b_data, sfb), d)
    with pytest.raises(ValueError, match=re.escape("m_grouped_fp8_gemm_nn_contiguous: b[0] must be K-major")):
        deep_gemm.m_grouped_fp8_gemm_nn_contiguous(a, (fp8(G, K, N), torch.ones(G, K // 128, N // 128)), d,
                                                   torch.zeros(M, dtype=torch.int32))


def test_masked_recipe_and_alias():
    a = (fp8(G, M, K), aligned(torch.ones(G, M, K // 128)))
    b = (fp8(G, N, K), torch.ones(G, N // 128, K // 128))
    d = torch.empty(G, M, N, dtype=torch.bfloat16)
    masked_m = torch.zeros(G, dtype=torch.int32)
    with pytest.raises(ValueError, match=re.escape("recipe (1, 1, 128) is not a masked SM90 kernel")):
        deep_gemm.fp8_m_grouped_gemm_nt_masked(a, b, d, masked_m, 64, recipe=(1, 1, 128))
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.m_grouped_fp8_fp4_gemm_nt_masked(a, b, d, masked_m, 64, recipe=(1, 128, 128))


def k_grouped_args(ks):
    m, n = 128, 256
    a = (fp8(sum(ks) * m), torch.ones(sum(ks) // 128, m).t())
    b = (fp8(sum(ks) * n), torch.ones(sum(ks) // 128, n).t())
    d = torch.zeros(len(ks), m, n)
    return a, b, d, ks, torch.tensor(ks, dtype=torch.int32)


def test_k_grouped_fp8():
    op = deep_gemm.k_grouped_fp8_gemm_nt_contiguous
    a, b, d, ks, ks_tensor = k_grouped_args([256, 0, 384])
    with pytest.raises(ValueError, match="c is required"):
        op(a, b, d, ks, ks_tensor)
    with pytest.raises(ValueError, match="use_psum_layout=True is an SM100 layout"):
        op(a, b, d, ks, ks_tensor, d, use_psum_layout=True)
    with pytest.raises(ValueError, match=re.escape("ks_cpu[1] = 100 must be a non-negative multiple of 128")):
        op(a, b, d, [256, 100, 384], ks_tensor, d)
    with pytest.raises(ValueError, match="ks_cpu must be a non-empty list"):
        op(a, b, d, None, ks_tensor, d)
    with pytest.raises(ValueError, match=re.escape("takes recipe (1, 1, 128) only")):
        op(a, b, d, ks, ks_tensor, d, recipe=(1, 128, 128))
    with pytest.raises(ValueError, match="grouped_layout has 2 groups but ks_cpu 3"):
        op(a, b, d, ks, ks_tensor[:2], d)
    if hasattr(_C, "k_grouped_fp8_gemm_nt_contiguous"):
        expected = pytest.raises(ValueError, match=ON_DEVICE_CHECK)
    else:
        expected = pytest.raises(NotImplementedError, match=re.escape("needs _C.k_grouped_fp8_gemm_nt_contiguous"))
    with expected:
        op(a, b, d, ks, ks_tensor, d)


def test_k_grouped_bf16():
    op = deep_gemm.k_grouped_bf16_gemm_tn_contiguous
    ks = [256, 128]
    a = torch.zeros(sum(ks), 64, dtype=torch.bfloat16)
    b = torch.zeros(sum(ks), 32, dtype=torch.bfloat16)
    d = torch.zeros(2, 64, 32)
    ks_tensor = torch.tensor(ks, dtype=torch.int32)
    with pytest.raises(ValueError, match="c is required"):
        op(a, b, d, ks, ks_tensor)
    with pytest.raises(ValueError, match=re.escape("ks_cpu[0] = 64 must be a non-negative multiple of 128")):
        op(a, b, d, [64, 320], ks_tensor, d)
    if hasattr(_C, "k_grouped_bf16_gemm_tn_contiguous"):
        expected = pytest.raises(ValueError, match=ON_DEVICE_CHECK)
    else:
        expected = pytest.raises(NotImplementedError, match=re.escape("needs _C.k_grouped_bf16_gemm_tn_contiguous"))
    with expected:
        op(a, b, d, ks, ks_tensor, d)


def test_bf16_layouts_reach_c():
    a = torch.zeros(M, K, dtype=torch.bfloat16)
    b = torch.zeros(N, K, dtype=torch.bfloat16)
    d = torch.empty(M, N, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.bf16_gemm_nn(a, b.t(), d)  # b given [K, N]
    with pytest.raises(ValueError, match="must be 2-D"):
        deep_gemm.bf16_gemm_tn(a[0], b, d)
    # An MN-major grouped B is made K-major for the kernel.
    b_grouped = torch.zeros(G, N, K, dtype=torch.bfloat16).transpose(1, 2).contiguous().transpose(1, 2)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.m_grouped_bf16_gemm_nt_contiguous(a, b_grouped, d, torch.zeros(M, dtype=torch.int32))
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.m_grouped_bf16_gemm_nn_contiguous(a, b_grouped.transpose(1, 2), d, torch.zeros(M, dtype=torch.int32))
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.bf16_m_grouped_gemm_nt_masked(a.expand(G, M, K).contiguous(), b.expand(G, N, K).contiguous(),
                                                d.expand(G, M, N).contiguous(), torch.zeros(G, dtype=torch.int32), 64)


def test_cublaslt_checks():
    a = torch.zeros(M, K, dtype=torch.bfloat16)
    b = torch.zeros(N, K, dtype=torch.bfloat16)
    d = torch.empty(M, N, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=re.escape("do not form [M, K] x [N, K] -> [M, N]")):
        deep_gemm.cublaslt_gemm_nt(a, b.t(), d)
    with pytest.raises(TypeError, match="a and b must both be"):
        deep_gemm.cublaslt_gemm_nt(a.float(), b, d)
    with pytest.raises(ValueError, match="c must have d's dtype and shape"):
        deep_gemm.cublaslt_gemm_nt(a, b, d, c=torch.zeros(M, N))
    with pytest.raises(ValueError, match="d must be row-major"):
        deep_gemm.cublaslt_gemm_nt(a, b, torch.empty(N, M, dtype=torch.bfloat16).t())
    for fn, x, y in [(deep_gemm.cublaslt_gemm_nn, a, b.t()), (deep_gemm.cublaslt_gemm_tn, a.t(), b.t()),
                     (deep_gemm.cublaslt_gemm_tt, a.t(), b)]:
        with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
            fn(x, y, d)


def test_config_values():
    with pytest.raises(ValueError, match="positive multiple of 128, got 64"):
        deep_gemm.set_mk_alignment_for_contiguous_layout(64)
    with pytest.raises(TypeError, match="new_value must be an int"):
        deep_gemm.set_mk_alignment_for_contiguous_layout(True)
    assert deep_gemm.get_tc_util() == 100
    with pytest.raises(ValueError, match=re.escape("must lie in [0, 100]")):
        deep_gemm.set_tc_util(101)
    deep_gemm.set_tc_util(80)
    assert deep_gemm.get_tc_util() == 80
    deep_gemm.set_tc_util(0)
    assert deep_gemm.get_tc_util() == 100
    with pytest.raises(ValueError, match="a positive int or a pair"):
        deep_gemm.set_block_size_multiple_of((0, 1))
    deep_gemm.set_block_size_multiple_of(16)
    deep_gemm.set_block_size_multiple_of((16, 32))
    deep_gemm.set_block_size_multiple_of(1)
    deep_gemm.set_ignore_compile_dims(False)


def test_skip_head_mid_scatters_each_head_around_its_middle(monkeypatch):
    """The product's columns land at each head's left and right ranges; the middle stays untouched."""
    left, mid, right = 128, 64, 128
    heads = N * 2 // (left + right)  # b has 2N rows here: three heads
    a, _, _ = dense_operands()
    b = (fp8(2 * N, K), torch.ones(2 * N // 128, K // 128))

    def product(a_, b_, d_, c_):  # stands in for the kernel: column j of the product is j
        d_.copy_(torch.arange(d_.size(1), dtype=d_.dtype).expand_as(d_))
    monkeypatch.setattr(gemm, "_C", type("Stub", (), {"fp8_gemm_nt": staticmethod(product)}))
    # d a row-strided view (upstream needs unit column stride only); the padding stays -2.
    wide = torch.full((M, 2 * N + heads * mid + 8), -2.0, dtype=torch.bfloat16)
    d = wide[:, :-8].fill_(-1.0)
    deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, d, (left, mid, right))
    assert (wide[:, -8:] == -2).all()
    per_head = d.view(M, heads, left + mid + right)
    for h in range(heads):
        base = h * (left + right)
        assert torch.equal(per_head[:, h, :left], torch.arange(base, base + left).float().bfloat16().expand(M, -1))
        assert (per_head[:, h, left:left + mid] == -1).all(), "the middle columns must stay untouched"
        assert torch.equal(per_head[:, h, left + mid:],
                           torch.arange(base + left, base + left + right).float().bfloat16().expand(M, -1))


@pytest.mark.parametrize("head_splits, d_columns, message", [
    ((128, 64), 512, re.escape("head_splits must be (left, mid, right)")),
    ((0, 64, 0), 512, re.escape("left + right > 0, got (0, 64, 0)")),
    ((128, -1, 128), 512, re.escape("non-negative ints")),
    ((100, 64, 100), 512, "N must be a multiple of 200"),
    ((128, 64, 64), N + 64 * 2 + 1, re.escape("d must have N + N / 192 * 64 columns, got d (256, 513)")),
])
def test_skip_head_mid_checks_its_splits(head_splits, d_columns, message):
    a, b, _ = dense_operands()
    d = torch.empty(M, d_columns, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=message):
        deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, d, head_splits)


def test_skip_head_mid_names_a_bad_d():
    a, b, _ = dense_operands()
    with pytest.raises(TypeError, match="d must be a torch.Tensor, got list"):
        deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, [], (128, 64, 64))
    d = torch.empty(N + N // 192 * 64, M, dtype=torch.bfloat16).t()
    with pytest.raises(ValueError, match="unit column stride"):
        deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, d, (128, 64, 64))


def test_skip_head_mid_reaches_the_device_check():
    a, b, _ = dense_operands()
    d = torch.empty(M, N + N // 192 * 64, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=ON_DEVICE_CHECK):
        deep_gemm.fp8_gemm_nt_skip_head_mid(a, b, d, (128, 64, 64))
