#!/usr/bin/env python3
"""fp8_gemm_nt against cuBLASLt's block-scaled FP8 GEMM (torch._scaled_mm).

Both get the same e4m3 operands and the same 1x128 (A) / 128x128 (B) scales, in
one process on one GPU. Each repetition is timed alone with CUDA events after L2
is flushed, ours and cuBLASLt's in alternation; the table reports the medians. Usage:

    python benchmarks/bench_fp8_gemm.py [--ms 128 4096] [--reps 30] [--out DIR] [--upstream PATH]

With --upstream (benchmarks/upstream.py), upstream DeepGEMM's fp8_gemm_nt is timed too, on the
same operands, in the same alternation.

With --out, writes results.md, results.json and fp8_gemm.png (if matplotlib is
importable) there. Correctness is checked too: every shape's calc_diff against
the FP32 reference of the dequantised operands is printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import upstream

import deep_gemm
from deep_gemm import calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8
from timing import median_ms_each

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "gpu"))
from moe import dequant_a, dequant_b  # noqa: E402

MS = [128, 4096]
NK = [(2112, 7168), (24576, 1536), (32768, 512), (7168, 16384), (4096, 7168), (7168, 2048)]

def cublaslt_block_scaled(x_fp8, x_scales, y_fp8, y_scales, out):
    """torch._scaled_mm with BlockWise1x128 (A) x BlockWise128x128 (B) scales, as
    per_token_cast_to_fp8 / per_block_cast_to_fp8 return them.

    cuBLASLt wants both scale tensors outer-dimension-major: A's [M, K/128] with
    stride (1, M) exactly (so not deep_gemm's TMA-padded layout) and B's
    [K/128, N/128] with stride (1, K/128). A's copy is made here, once.
    """
    scale_a = x_scales.t().contiguous().t()
    scale_b = y_scales.t()
    return lambda: torch._scaled_mm(x_fp8, y_fp8.t(), scale_a, scale_b, out_dtype=torch.bfloat16, out=out)


def driver_version() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def bench_shape(m: int, n: int, k: int, reps: int, theirs_lib=None) -> dict:
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    x_fp8, x_scales = per_token_cast_to_fp8(x)
    y_fp8, y_scales = per_block_cast_to_fp8(y)
    x_scales_mn = get_mn_major_tma_aligned_tensor(x_scales)
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    d_ref = torch.empty_like(d)

    ours = lambda: deep_gemm.fp8_gemm_nt((x_fp8, x_scales_mn), (y_fp8, y_scales), d)
    theirs = cublaslt_block_scaled(x_fp8, x_scales, y_fp8, y_scales, d_ref)

    calls = [ours, theirs]
    if theirs_lib is not None:  # upstream DeepGEMM, given the same operands
        d_upstream = torch.empty_like(d)
        calls.append(lambda: theirs_lib.fp8_gemm_nt((x_fp8, x_scales_mn), (y_fp8, y_scales), d_upstream))
    for call in calls:
        call()
    ref = dequant_a(x_fp8, x_scales) @ dequant_b(y_fp8, y_scales).T
    diff, diff_cublas = calc_diff(d, ref), calc_diff(d_ref, ref)

    times = median_ms_each(calls, reps)
    t_ours, t_theirs = times[:2]
    flops = 2 * m * n * k
    bytes_moved = m * k + n * k + m * n * 2 + x_scales.numel() * 4 + y_scales.numel() * 4
    row = {
        "m": m, "n": n, "k": k,
        "ms": t_ours, "tflops": flops / t_ours / 1e9, "gbps": bytes_moved / t_ours / 1e6,
        "cublaslt_ms": t_theirs, "cublaslt_tflops": flops / t_theirs / 1e9,
        "speedup": t_theirs / t_ours, "calc_diff": diff, "cublaslt_calc_diff": diff_cublas,
    }
    if theirs_lib is not None:
        row.update(upstream_ms=times[2], upstream_tflops=flops / times[2] / 1e9, vs_upstream=times[2] / t_ours,
                   upstream_calc_diff=calc_diff(d_upstream, ref))
    return row


def write_outputs(out: Path, rows: list[dict], meta: dict, table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    header = "\n".join(f"- {key}: {value}" for key, value in meta.items())
    (out / "results.md").write_text(f"# fp8_gemm_nt vs cuBLASLt block-scaled FP8\n\n{header}\n\n```\n{table}\n```\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written")
        return
    labels = [f"{r['m']}x{r['n']}x{r['k']}" for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.9), 4.5))
    ax.bar([x - 0.2 for x in xs], [r["tflops"] for r in rows], width=0.4, label="deep_gemm fp8_gemm_nt")
    ax.bar([x + 0.2 for x in xs], [r["cublaslt_tflops"] for r in rows], width=0.4, label="cuBLASLt block-scaled")
    ax.set_xticks(list(xs), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("TFLOPS")
    ax.set_title(f"FP8 GEMM on {meta['gpu']} (median of {meta['reps']}, L2 flushed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fp8_gemm.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ms", type=int, nargs="+", default=MS)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--out", type=Path)
    upstream.add_argument(parser)
    args = parser.parse_args()
    theirs_lib = upstream.load_libraries(args.upstream)[1]

    rows = [bench_shape(m, n, k, args.reps, theirs_lib) for m in args.ms for n, k in NK]
    vs = " | upstream | vs upstream" if theirs_lib else ""
    lines = [f"{'m':>5} {'n':>6} {'k':>6} | {'TFLOPS':>7} {'GB/s':>7} | {'cuBLASLt':>8} | {'speed-up':>8}{vs} | "
             "calc_diff"]
    for r in rows:
        vs = f" | {r['upstream_tflops']:8.0f} | {r['vs_upstream']:10.2f}x" if theirs_lib else ""
        lines.append(f"{r['m']:>5} {r['n']:>6} {r['k']:>6} | {r['tflops']:7.0f} {r['gbps']:7.0f} | "
                     f"{r['cublaslt_tflops']:8.0f} | {r['speedup']:7.2f}x{vs} | {r['calc_diff']:.1e}")
    speedups = [r["speedup"] for r in rows]
    geomean = statistics.geometric_mean(speedups)
    lines.append(f"geometric-mean speed-up {geomean:.3f}x, slowest {min(speedups):.2f}x")
    if theirs_lib:
        ratios = [r["vs_upstream"] for r in rows]
        lines.append(f"against upstream DeepGEMM: geometric mean {statistics.geometric_mean(ratios):.3f}x, "
                     f"slowest {min(ratios):.2f}x")
    props = torch.cuda.get_device_properties(0)
    meta = {"gpu": props.name, "sms": props.multi_processor_count, "driver": driver_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "date": datetime.date.today().isoformat(),
            "reps": args.reps, "geomean_speedup": round(geomean, 4),
            "upstream": str(Path(theirs_lib.__path__[0])) if theirs_lib else None}
    # The log describes itself: where and when it was measured.
    table = (f"{meta['gpu']}, driver {meta['driver']}, torch {meta['torch']} (CUDA {meta['cuda']}), {meta['date']}, "
             f"median of {meta['reps']}, L2 flushed, alternating with cuBLASLt"
             f"{' and upstream DeepGEMM' if theirs_lib else ''}\n" + "\n".join(lines))
    print(table)
    if args.out:
        write_outputs(args.out, rows, meta, table)


if __name__ == "__main__":
    main()
