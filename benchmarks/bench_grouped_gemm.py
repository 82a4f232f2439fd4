#!/usr/bin/env python3
"""MoE grouped GEMMs and the BF16 GEMM beside torch references, in one process.

- m_grouped_fp8_gemm_nt_contiguous vs a per-expert loop of torch._scaled_mm with
  the same block scales (cuBLASLt), expected m per expert 256 and 4096;
- m_grouped_fp8_gemm_nt_masked (vs the same loop over each group's valid rows) and
  m_grouped_bf16_gemm_nt_masked (vs torch.matmul per group), every group expected_m rows
  or (shape "Gxm~") counts around expected_m that are not multiples of 64;
- bf16_gemm_nt vs torch.matmul at m = 4096.
Median of --reps runs, each timed alone with CUDA events after flushing L2, ours and
the reference's in alternation.
TFLOPS count only the valid rows. With --graph, each side is captured in a CUDA graph
and its replays are timed: GPU time only, free of the host launch overhead that makes
the per-expert loop's eager figures swing between runs. With --upstream PATH
(benchmarks/upstream.py), upstream DeepGEMM's same calls are timed too, in the same
alternation.
Usage: python benchmarks/bench_grouped_gemm.py [--graph] [--out FILE] [--upstream PATH]
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

import deep_gemm
from deep_gemm import calc_diff, per_token_cast_to_fp8
from deep_gemm import get_mn_major_tma_aligned_tensor as mn_major

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gpu"))
import upstream  # noqa: E402

from bench_fp8_gemm import cublaslt_block_scaled  # noqa: E402
from moe import cast_b, contiguous_rows, dequant_a, dequant_b, grouped_reference  # noqa: E402
from timing import median_ms_each  # noqa: E402

NK = [(4096, 7168), (7168, 2048), (6144, 7168), (7168, 3072)]
BF16_M = 4096
BF16_NK = [(2112, 7168), (24576, 1536), (7168, 16384), (4096, 7168), (7168, 2048)]

def per_expert_loop(slices, b, outs):
    """The reference: one cuBLASLt block-scaled GEMM per expert, its operands (and
    A's scale copy in cuBLASLt's layout) prepared once, outside the timed calls."""
    calls = [cublaslt_block_scaled(xs, ss, b[0][g], b[1][g], outs[g]) for g, (xs, ss) in enumerate(slices)]

    def run():
        for call in calls:
            call()
    return run


def with_upstream(calls, upstream_call):
    """`calls` (ours, the torch reference), and upstream's call when there is one."""
    return calls if upstream_call is None else [*calls, upstream_call]


def bench_contiguous(groups, expected_m, n, k, timer, theirs_lib):
    counts, m_indices = contiguous_rows(groups, expected_m, torch.Generator().manual_seed(0))
    m = m_indices.numel()
    a = per_token_cast_to_fp8(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
    b = cast_b(torch.randn((groups, n, k), device="cuda", dtype=torch.bfloat16))
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    a_mn = (a[0], mn_major(a[1]))
    ours = lambda: deep_gemm.m_grouped_fp8_gemm_nt_contiguous(a_mn, b, d, m_indices)
    d_up = torch.empty_like(d)
    up = theirs_lib and (lambda: theirs_lib.m_grouped_fp8_gemm_nt_contiguous(a_mn, b, d_up, m_indices))
    starts = [0]
    for c in counts:
        starts.append(starts[-1] + deep_gemm.align(c, 128))
    # Each expert's rows, sliced once (copies, so cuBLASLt sees aligned contiguous
    # operands), rounded up to 16 rows: cuBLASLt's block scaling refuses other counts.
    rounded = [deep_gemm.align(c, 16) for c in counts]
    outs = [torch.empty((c, n), device="cuda", dtype=torch.bfloat16) for c in rounded]
    slices = [(a[0][s:s + c].contiguous(), a[1][s:s + c].contiguous()) for s, c in zip(starts, rounded, strict=False)]
    theirs = per_expert_loop(slices, b, outs)

    ours()
    valid = m_indices >= 0
    diff = calc_diff(d[valid], grouped_reference(dequant_a(*a), dequant_b(*b), m_indices)[valid])
    times = timer(with_upstream([ours, theirs], up))
    flops = 2 * sum(counts) * n * k
    bytes_moved = sum(counts) * k + groups * n * k + sum(counts) * n * 2
    return f"contiguous {groups}x{expected_m:<5} {n:>5} {k:>5}", flops, bytes_moved, times, diff


def bench_masked(dtype, groups, expected_m, n, k, timer, theirs_lib, max_m=4096, ragged=False):
    """masked_m = expected_m in every group, or (ragged) counts around it that are not multiples
    of 64: a math warpgroup's rows past a group's count store from registers, the rest with TMA."""
    counts = [expected_m + (37 * g + 11) % 64 - 32 if ragged else expected_m for g in range(groups)]
    masked_m = torch.tensor(counts, device="cuda", dtype=torch.int32)
    x = torch.randn((groups, max_m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((groups, n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((groups, max_m, n), device="cuda", dtype=torch.bfloat16)
    d_up = torch.empty_like(d)
    if dtype == "fp8":
        parts = [per_token_cast_to_fp8(x[i]) for i in range(groups)]
        a = (torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]))
        b = cast_b(y)
        a_mn = (a[0], mn_major(a[1]))
        ours = lambda: deep_gemm.m_grouped_fp8_gemm_nt_masked(a_mn, b, d, masked_m, expected_m)
        up = theirs_lib and (lambda: theirs_lib.m_grouped_fp8_gemm_nt_masked(a_mn, b, d_up, masked_m, expected_m))
        # cuBLASLt's block-scaled FP8 takes rows in multiples of 16: the ragged counts' loop
        # computes up to the next one (a few rows more than ours).
        padded = [min(max_m, (rows + 15) // 16 * 16) for rows in counts]
        slices = [(a[0][g, :rows].contiguous(), a[1][g, :rows].contiguous()) for g, rows in enumerate(padded)]
        theirs = per_expert_loop(slices, b, [torch.empty((rows, n), device="cuda", dtype=torch.bfloat16)
                                             for rows in padded])
        a_deq, b_deq = dequant_a(*a), dequant_b(*b)
    else:
        ours = lambda: deep_gemm.m_grouped_bf16_gemm_nt_masked(x, y, d, masked_m, expected_m)
        up = theirs_lib and (lambda: theirs_lib.m_grouped_bf16_gemm_nt_masked(x, y, d_up, masked_m, expected_m))
        x_rows = [x[g, :rows] for g, rows in enumerate(counts)]
        outs = [torch.empty((rows, n), device="cuda", dtype=torch.bfloat16) for rows in counts]

        def theirs():
            for g, out in enumerate(outs):
                torch.matmul(x_rows[g], y[g].T, out=out)
        a_deq, b_deq = x.float(), y.float()

    ours()
    diff = max(calc_diff(d[g, :rows], a_deq[g, :rows] @ b_deq[g].T) for g, rows in enumerate(counts))
    times = timer(with_upstream([ours, theirs], up))
    flops = 2 * sum(counts) * n * k
    elem = 1 if dtype == "fp8" else 2
    bytes_moved = sum(counts) * k * elem + groups * n * k * elem + sum(counts) * n * 2
    shape = f"{groups}x{expected_m}{'~' if ragged else ''}"
    return f"masked {dtype:<4} {shape:<7} {n:>5} {k:>5}", flops, bytes_moved, times, diff


def bench_bf16(m, n, k, timer, theirs_lib):
    a = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    b = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    ref = torch.empty_like(d)
    ours = lambda: deep_gemm.bf16_gemm_nt(a, b, d)
    theirs = lambda: torch.matmul(a, b.T, out=ref)
    d_up = torch.empty_like(d)
    up = theirs_lib and (lambda: theirs_lib.bf16_gemm_nt(a, b, d_up))
    ours()
    diff = calc_diff(d, a.float() @ b.float().T)
    times = timer(with_upstream([ours, theirs], up))
    return f"bf16 dense {m:>8} {n:>5} {k:>5}", 2 * m * n * k, 2 * (m * k + n * k + m * n), times, diff


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--graph", action="store_true", help="time CUDA-graph replays (GPU time only)")
    parser.add_argument("--out", type=Path)
    upstream.add_argument(parser)
    args = parser.parse_args()
    theirs_lib = upstream.load_libraries(args.upstream)[1]
    timer = functools.partial(median_ms_each, reps=args.reps, graph=args.graph)
    rows = []
    for n, k in NK:
        for groups, expected_m in [(8, 256), (4, 4096)]:
            rows.append(bench_contiguous(groups, expected_m, n, k, timer, theirs_lib))
    for dtype in ("fp8", "bf16"):
        for n, k in NK[:2]:
            for groups, expected_m in [(4, 64), (4, 128), (4, 256)]:
                rows.append(bench_masked(dtype, groups, expected_m, n, k, timer, theirs_lib))
            rows.append(bench_masked(dtype, 4, 256, n, k, timer, theirs_lib, ragged=True))
    for n, k in BF16_NK:
        rows.append(bench_bf16(BF16_M, n, k, timer, theirs_lib))
    vs = " | upstream | vs upstream" if theirs_lib else ""
    lines = [f"{'case':<32} | {'TFLOPS':>7} {'GB/s':>6} | {'torch':>7} | {'speed-up':>8}{vs} | calc_diff"]
    for name, flops, nbytes, times, diff in rows:
        t_ours, t_theirs = times[:2]
        vs = f" | {flops / times[2] / 1e9:8.0f} | {times[2] / t_ours:10.2f}x" if theirs_lib else ""
        lines.append(f"{name:<32} | {flops / t_ours / 1e9:7.0f} {nbytes / t_ours / 1e6:6.0f} | "
                     f"{flops / t_theirs / 1e9:7.0f} | {t_theirs / t_ours:7.2f}x{vs} | {diff:.1e}")
    mode = "CUDA-graph replays" if args.graph else "eager calls"
    also = " and upstream DeepGEMM" if theirs_lib else ""
    text = f"timing: {mode}, median of {args.reps}, L2 flushed, alternating with torch{also}\n" + "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"{torch.cuda.get_device_name()} torch {torch.__version__}\n{text}\n")


if __name__ == "__main__":
    main()
