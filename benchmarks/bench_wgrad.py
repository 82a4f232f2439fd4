#!/usr/bin/env python3
"""The weight-gradient GEMMs: FP8 recipe (1, 1, 128) ("1D1D": fp32 D accumulated into C in
place), the K-grouped FP8 / BF16 GEMMs of a MoE layer and the BF16 GEMM on MN-major operands
(bf16_gemm_nn / tn / tt, backward passes' layouts), beside plain torch (BF16 cuBLAS, a loop
over the groups: what a user without DeepGEMM runs) and, with --upstream PATH, upstream
DeepGEMM on the same operands in the same alternation. Usage:

    python benchmarks/bench_wgrad.py [--reps 20] [--upstream PATH] [--out FILE]

Shapes are upstream's tests': 1D1D (M, N) = (its forward N, 4096) with the forward K; the
K-grouped (groups, M, N, K per group) of its EP16-EP64 MoE layers; the BF16 layouts at
M = 4096 over three of its (N, K). Eager calls, median of
--reps, L2 flushed (timing.median_ms_each).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import upstream

from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor
from timing import median_ms_each

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gpu"))
from moe import dequant_a, k_grouped_fp8_operand, quant_rows  # noqa: E402

WGRAD_NK = [(2112, 7168), (576, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]
BF16_LAYOUT_NK = [(4096, 7168), (7168, 2048), (2112, 7168)]
K_GROUPED = [(4, 4096, 7168, 8192), (4, 7168, 2048, 8192), (8, 4096, 7168, 4096), (8, 7168, 2048, 4096),
             (16, 4096, 7168, 2048), (16, 7168, 2048, 2048)]


def bench_1d1d(m, n, k, lib, theirs, reps):
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    a, b = quant_rows(x), quant_rows(y)
    a = (a[0], get_mn_major_tma_aligned_tensor(a[1]))
    c = torch.randn((m, n), device="cuda")
    d, d_up = c.clone(), c.clone()
    gemm = lambda library, out: library.fp8_gemm_nt(a, b, out, c=out, recipe=(1, 1, 128))  # noqa: E731
    calls = [lambda: gemm(lib, d), lambda: torch.matmul(x, y.T)]
    if theirs is not None:
        calls.append(lambda: gemm(theirs, d_up))
    times = median_ms_each(calls, reps)
    d.copy_(c)  # the timed calls accumulated into it
    gemm(lib, d)
    return f"1d1d {m}x{n}x{k}", 2 * m * n * k, times, calc_diff(d, c + dequant_a(*a) @ dequant_a(*b).T)


def bench_k_grouped(groups, m, n, k_per_group, fp8, lib, theirs, reps):
    ks = [k_per_group] * groups
    x = torch.randn((sum(ks), m), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((sum(ks), n), device="cuda", dtype=torch.bfloat16)
    c = torch.randn((groups, m, n), device="cuda")
    d, d_up = c.clone(), c.clone()
    layout = torch.tensor(ks, dtype=torch.int32, device="cuda")
    if fp8:
        (a, x_ref), (b, y_ref) = k_grouped_fp8_operand(x, ks), k_grouped_fp8_operand(y, ks)
        gemm = lambda library, out: library.k_grouped_fp8_gemm_nt_contiguous(a, b, out, ks, layout, out)  # noqa: E731
    else:
        x_ref, y_ref = x.float(), y.float()
        gemm = lambda library, out: library.k_grouped_bf16_gemm_tn_contiguous(x, y, out, ks, layout, out)  # noqa: E731
    parts_x, parts_y = x.split(ks), y.split(ks)
    torch_loop = lambda: [torch.matmul(px.T, py) for px, py in zip(parts_x, parts_y, strict=True)]  # noqa: E731
    calls = [lambda: gemm(lib, d), torch_loop]
    if theirs is not None:
        calls.append(lambda: gemm(theirs, d_up))
    times = median_ms_each(calls, reps)
    d.copy_(c)  # the timed calls accumulated into it
    gemm(lib, d)
    ref = c + torch.stack([px.T @ py for px, py in zip(x_ref.split(ks), y_ref.split(ks), strict=True)])
    name = f"k-grouped {'fp8' if fp8 else 'bf16'} {groups}x{k_per_group} {m}x{n}"
    return name, 2 * m * n * sum(ks), times, calc_diff(d, ref)


def bench_bf16_layout(layout, m, n, k, lib, theirs, reps):
    """bf16_gemm_{layout}, layouts named as upstream's: a [M, K] ('n') or [K, M] ('t'), then
    b [K, N] ('n') or [N, K] ('t'); the MN-major ones are the kernel's transposed reads."""
    a = torch.randn((m, k) if layout[0] == "n" else (k, m), device="cuda", dtype=torch.bfloat16)
    b = torch.randn((k, n) if layout[1] == "n" else (n, k), device="cuda", dtype=torch.bfloat16)
    a_mk, b_kn = (a if layout[0] == "n" else a.T), (b if layout[1] == "n" else b.T)
    d, d_up = (torch.empty((m, n), device="cuda", dtype=torch.bfloat16) for _ in range(2))
    gemm = lambda library, out: getattr(library, f"bf16_gemm_{layout}")(a, b, out)  # noqa: E731
    calls = [lambda: gemm(lib, d), lambda: torch.matmul(a_mk, b_kn)]
    if theirs is not None:
        calls.append(lambda: gemm(theirs, d_up))
    times = median_ms_each(calls, reps)
    gemm(lib, d)
    return f"bf16 {layout} {m}x{n}x{k}", 2 * m * n * k, times, calc_diff(d, a_mk.float() @ b_kn.float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--out", type=Path)
    upstream.add_argument(parser)
    args = parser.parse_args()
    lib, theirs = upstream.load_libraries(args.upstream)
    rows = [bench_1d1d(n_fwd, 4096, k, lib, theirs, args.reps) for n_fwd, k in WGRAD_NK]
    for fp8 in (True, False):
        rows += [bench_k_grouped(*shape, fp8, lib, theirs, args.reps) for shape in K_GROUPED]
    for layout in ("nn", "tn", "tt"):
        rows += [bench_bf16_layout(layout, 4096, n, k, lib, theirs, args.reps) for n, k in BF16_LAYOUT_NK]
    vs = " | upstream | vs upstream" if theirs else ""
    lines = [f"{'case':<36} | {'TFLOPS':>7} | {'torch':>6} | {'speed-up':>8}{vs} | calc_diff"]
    for name, flops, times, diff in rows:
        vs = f" | {flops / times[2] / 1e9:8.0f} | {times[2] / times[0]:10.2f}x" if theirs else ""
        lines.append(f"{name:<36} | {flops / times[0] / 1e9:7.0f} | {flops / times[1] / 1e9:6.0f} | "
                     f"{times[1] / times[0]:7.2f}x{vs} | {diff:.1e}")
    also = " and upstream DeepGEMM" if theirs else ""
    text = (f"{torch.cuda.get_device_name()}, torch {torch.__version__}: eager calls, median of {args.reps}, "
            f"L2 flushed, alternating with torch (BF16){also}\n" + "\n".join(lines))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
