#!/usr/bin/env python3
"""Sustained SM clock and board power while fp8_gemm_nt and cuBLASLt run back to back.

Tells a power-limited GEMM (power at the limit, clock under its maximum) from one
limited inside the chip (clock at its maximum, power to spare). Each side runs for
--seconds in a loop while `nvidia-smi` samples every 100 ms; the medians of the
samples taken during the loop are printed with the achieved TFLOPS.

    python benchmarks/clock_probe.py 4096x7168x16384 4096x24576x1536 [--seconds 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch

import deep_gemm
from bench_fp8_gemm import cublaslt_block_scaled
from deep_gemm import get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8


def sampled(fn, seconds: float) -> tuple[float, float, float]:
    """(calls per second, median SM MHz, median W) while `fn` loops."""
    fn()
    torch.cuda.synchronize()
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", "100"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # let nvidia-smi start sampling
    calls, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(20):
            fn()
        calls += 20
        torch.cuda.synchronize()
    elapsed = time.monotonic() - start
    smi.terminate()
    lines = smi.communicate()[0].strip().splitlines()
    samples = [tuple(float(v) for v in line.split(",")) for line in lines[3:-1] if "," in line]  # skip ramp-up
    return calls / elapsed, statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="+", help="MxNxK")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'shape':>16} {'side':>9} {'TFLOPS':>7} {'SM MHz':>7} {'W':>6}")
    for shape in args.shapes:
        m, n, k = (int(v) for v in shape.split("x"))
        x_fp8, x_s = per_token_cast_to_fp8(torch.randn((m, k), device="cuda", dtype=torch.bfloat16))
        y_fp8, y_s = per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16))
        d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
        x_mn = get_mn_major_tma_aligned_tensor(x_s)
        sides = {
            "deep_gemm": lambda: deep_gemm.fp8_gemm_nt((x_fp8, x_mn), (y_fp8, y_s), d),  # noqa: B023 (run in this iteration)
            "cuBLASLt": cublaslt_block_scaled(x_fp8, x_s, y_fp8, y_s, d),
        }
        for side, fn in sides.items():
            rate, mhz, watts = sampled(fn, args.seconds)
            print(f"{shape:>16} {side:>9} {2 * m * n * k * rate / 1e12:7.0f} {mhz:7.0f} {watts:6.0f}", flush=True)


if __name__ == "__main__":
    main()
