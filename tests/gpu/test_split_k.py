"""Split K on the GPU: tiles of a last partial wave cut into K-slices whose FP32 partials
the last-arriving CTA sums (gemm.cuh). Few SMs (set_num_sms) make small problems split."""
import pytest
import torch

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8
from moe import dequant_a, dequant_b
from sms import forced_plan, num_sms

# (op, SMs, m, n, k, the plan, forced: the SM budget keeps the shapes realistic for a split)
CASES = [
    ("fp8", 8, 200, 520, 7168, "128x64 s8 bf16 tma-store] split-k 4x2"),   # TMA store clips M and N
    ("fp8", 8, 65, 1100, 7168, "128x64 s8 bf16] split-k 4x2 b-read-once"),  # stores from registers
    ("fp8", 3, 200, 640, 7168, "128x128 s5 bf16 tma-store] split-k 3x1"),  # slices of 18, 19, 19 K-blocks
    ("fp8", 5, 576, 2112, 7168, "192x128 s4 bf16 tma-store] split-k 5x1"),  # three math warpgroups
    ("fp8", 13, 576, 7170, 7168, "192x128 s5 bf16] split-k 6x2"),
    ("bf16", 2, 300, 130, 5120, "128x160 s6 bf16] split-k 2x1"),
    ("bf16", 2, 300, 520, 5120, "128x176 s5 bf16 tma-store] split-k 2x1"),   # a 48-column last chunk
]


def operands(op: str, m: int, n: int, k: int, seed: int = 0):
    """(a, b, gemm, FP32 reference) for fp8_gemm_nt or bf16_gemm_nt."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16, generator=g)
    if op == "bf16":
        return x, y, deep_gemm.bf16_gemm_nt, x.float() @ y.float().T
    (x8, xs), (y8, ys) = per_token_cast_to_fp8(x), per_block_cast_to_fp8(y)
    ref = dequant_a(x8, xs) @ dequant_b(y8, ys).T
    return (x8, get_mn_major_tma_aligned_tensor(xs)), (y8, ys), deep_gemm.fp8_gemm_nt, ref


@pytest.mark.parametrize("op, sms, m, n, k, plan", CASES)
def test_split_tiles_are_correct_and_deterministic(op, sms, m, n, k, plan):
    forced_plan(op, sms, m, n, k, plan)
    a, b, gemm, ref = operands(op, m, n, k)
    outputs = []
    with num_sms(sms):
        for _ in range(3):
            d = torch.full((m, n), float("nan"), device="cuda", dtype=torch.bfloat16)
            gemm(a, b, d)
            outputs.append(d)
    assert not outputs[0].isnan().any(), "some outputs were never written"
    assert calc_diff(outputs[0], ref) < 1e-3
    # The last slice to arrive sums all slices in slice order, whoever it is.
    assert all(torch.equal(outputs[0], o) for o in outputs[1:])


@pytest.mark.parametrize("op, sms, m, n, k, plan", [
    ("fp8", 8, 65, 1100, 7168, "128x64 s7 fp32 tma-store] split-k 4x2 b-read-once"),
    ("bf16", 2, 300, 130, 5120, "128x160 s6 fp32] split-k 2x1"),
])
def test_split_fp32_output_accumulates_c_once(op, sms, m, n, k, plan):
    forced_plan(op, sms, m, n, k, plan, output="fp32")
    a, b, gemm, ref = operands(op, m, n, k, seed=1)
    c = torch.randn((m, n), device="cuda")
    d = c.clone()
    with num_sms(sms):
        gemm(a, b, d, c=d)  # in place: each slice must not add C again
    assert calc_diff(d, ref + c) < 1e-3


def test_split_gemm_replays_in_a_cuda_graph():
    op, sms, m, n, k, plan = CASES[0]
    forced_plan(op, sms, m, n, k, plan)
    a, b, gemm, ref = operands(op, m, n, k, seed=2)
    d = torch.zeros((m, n), device="cuda", dtype=torch.bfloat16)
    with num_sms(sms):
        gemm(a, b, d)  # JIT outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            gemm(a, b, d)
    for _ in range(2):  # the arrival counts start from zero on every replay
        d.zero_()
        graph.replay()
        torch.cuda.synchronize()
        assert calc_diff(d, ref) < 1e-3


def test_deepgemm_shape_that_splits_on_an_h100():
    # 1024 x 7168 x 16384: 448 tiles of 128x128 are 3.4 waves on 132 SMs; the last 52
    # go in 2 slices.
    m, n, k = 1024, 7168, 16384
    if deep_gemm.get_num_sms() != 132:
        pytest.skip(f"the plan below is for 132 SMs, this GPU has {deep_gemm.get_num_sms()}")
    forced_plan("fp8", 132, m, n, k, "128x128 s5 bf16 tma-store] split-k 2x52")
    a, b, gemm, ref = operands("fp8", m, n, k, seed=3)
    first, second = (torch.empty((m, n), device="cuda", dtype=torch.bfloat16) for _ in range(2))
    gemm(a, b, first)
    gemm(a, b, second)
    assert calc_diff(first, ref) < 1e-3 and torch.equal(first, second)
