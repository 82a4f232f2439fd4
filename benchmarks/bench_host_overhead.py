#!/usr/bin/env python3
"""The JIT's two costs a caller sees, against the targets of the FP8 speed issue:

- first call: NVRTC compile time of each GEMM kernel the DeepGEMM benchmark shapes pick
  (a fresh, empty kernel cache; target under 2 s per kernel);
- cached calls: host time per call of the public API once its kernel is loaded (target
  5 us, issue 22), on a problem small enough that the GPU keeps up with the host; the
  same operands every call, so their tensor maps come from the per-thread cache (tma.cpp).

The compile part needs no GPU (run it anywhere NVRTC is); the call part needs a Hopper GPU.
Usage: python benchmarks/bench_host_overhead.py [--calls 5000] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import deep_gemm
from bench_fp8_gemm import MS as FP8_MS
from bench_fp8_gemm import NK as FP8_NK
from bench_grouped_gemm import BF16_M, BF16_NK
from deep_gemm import _C, _loader, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8

# The shapes of the two speed benchmarks.
FP8_SHAPES = [(m, n, k) for m in FP8_MS for n, k in FP8_NK]
BF16_SHAPES = [(BF16_M, n, k) for n, k in BF16_NK]
H100_SMS = 132


def compile_times() -> list[tuple[str, float]]:
    """Seconds per distinct kernel, each compiled once into an empty cache."""
    sources = dict(_C.kernel_sources())
    plans = {_C.gemm_config(op, "dense", m, n, k, num_sms=H100_SMS)
             for op, shapes in (("fp8", FP8_SHAPES), ("bf16", BF16_SHAPES)) for m, n, k in shapes}
    names = sorted({plan[:plan.index("]") + 1] for plan in plans})  # the kernel, without split / B streaming
    times = []
    with tempfile.TemporaryDirectory() as cache:
        _C.init(**dict(_loader.jit_paths(), cache_dir=cache))
        for name in names:
            start = time.perf_counter()
            result = _C.jit_compile(name, sources[name])
            elapsed = time.perf_counter() - start
            assert not result["from_cache"] and result["compiler"].startswith("nvrtc"), result
            times.append((name, elapsed))
    _C.init(**_loader.jit_paths())  # back to the default cache
    return times


def host_us_per_call(call, calls: int) -> float:
    """Mean host microseconds per call over `calls` back-to-back calls (median of 5 rounds)."""
    call()
    torch.cuda.synchronize()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
        torch.cuda.synchronize()
    return statistics.median(rounds)


def call_costs(calls: int) -> list[tuple[str, float]]:
    m, n, k = 64, 128, 256  # a few microseconds of GPU time: the host is the bottleneck
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    x8, xs = per_token_cast_to_fp8(x)
    a, b = (x8, get_mn_major_tma_aligned_tensor(xs)), per_block_cast_to_fp8(y)
    # Grouped: 2 experts of 128 rows (contiguous) / 2 groups of 64 rows (masked).
    groups, rows = 2, deep_gemm.get_mk_alignment_for_contiguous_layout()
    gx8, gxs = per_token_cast_to_fp8(torch.randn((groups * rows, k), device="cuda", dtype=torch.bfloat16))
    ga = (gx8, get_mn_major_tma_aligned_tensor(gxs))
    gw = [per_block_cast_to_fp8(torch.randn((n, k), device="cuda", dtype=torch.bfloat16)) for _ in range(groups)]
    gb = (torch.stack([w for w, _ in gw]), torch.stack([s for _, s in gw]))
    gd = torch.empty((groups * rows, n), device="cuda", dtype=torch.bfloat16)
    m_indices = torch.arange(groups, device="cuda", dtype=torch.int32).repeat_interleave(rows)
    mx8, mxs = per_token_cast_to_fp8(torch.randn((groups * m, k), device="cuda", dtype=torch.bfloat16))
    ma = (mx8.view(groups, m, k), get_mn_major_tma_aligned_tensor(mxs.view(groups, m, -1)))
    md = torch.empty((groups, m, n), device="cuda", dtype=torch.bfloat16)
    masked_m = torch.full((groups,), m, device="cuda", dtype=torch.int32)
    return [
        (f"fp8_gemm_nt {m}x{n}x{k}", host_us_per_call(lambda: deep_gemm.fp8_gemm_nt(a, b, d), calls)),
        (f"bf16_gemm_nt {m}x{n}x{k}", host_us_per_call(lambda: deep_gemm.bf16_gemm_nt(x, y, d), calls)),
        (f"m_grouped_fp8_gemm_nt_contiguous {groups}x{rows}x{n}x{k}",
         host_us_per_call(lambda: deep_gemm.m_grouped_fp8_gemm_nt_contiguous(ga, gb, gd, m_indices), calls)),
        (f"m_grouped_fp8_gemm_nt_masked {groups}x{m}x{n}x{k}",
         host_us_per_call(lambda: deep_gemm.m_grouped_fp8_gemm_nt_masked(ma, gb, md, masked_m, m), calls)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    lines = ["first call: NVRTC compile into an empty cache (target < 2 s per kernel)"]
    compiled = compile_times()
    lines += [f"  {seconds:6.2f} s  {name}" for name, seconds in compiled]
    lines.append(f"  slowest {max(s for _, s in compiled):.2f} s, {len(compiled)} kernels")
    if torch.cuda.is_available():
        lines.append(f"cached calls on {torch.cuda.get_device_name()}: host time per call "
                     f"(mean of {args.calls}, median of 5 rounds; target <= 5 us)")
        lines += [f"  {us:6.1f} us  {name}" for name, us in call_costs(args.calls)]
    else:
        lines.append("cached calls: no CUDA GPU here, not measured")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
