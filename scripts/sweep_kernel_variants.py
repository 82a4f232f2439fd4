#!/usr/bin/env python3
"""A/B kernel variants on the GPU without rebuilding the wheel.

The kernels are JIT-compiled from the headers of the installed package, so a variant
is a copy of that package whose headers have some `#define NAME value` lines changed
(give the knob an `#ifndef NAME / #define NAME default` in the header for the
experiment), and/or some environment overrides, written `$NAME=value`. Every variant
runs in its own process, the variants in turn, for several rounds, so drift of the
clocks weighs on all of them; the table gives each one's median TFLOPS over the rounds
(and the range). Each process also checks its results against the FP32 reference.
Run it on the GPU machine from the repository root, with the wheel installed:

    python3 scripts/sweep_kernel_variants.py [--include deep_gemm/include] --shapes 128x2112x7168 4096x7168x16384 \\
        --variants auto: 'bn256:$DG_GEMM_BLOCK_N=256,$DG_GEMM_SPLIT_K=1' deeper:MY_KNOB=4
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TIMER = r"""
import json, sys
import torch, deep_gemm
from deep_gemm import _C, calc_diff, get_mn_major_tma_aligned_tensor, per_block_cast_to_fp8, per_token_cast_to_fp8
sys.path[:0] = [sys.argv[1] + "/benchmarks", sys.argv[1] + "/tests/gpu"]
from timing import median_ms
from moe import dequant_a, dequant_b
input_type, reps, out = sys.argv[2], int(sys.argv[3]), {}
for shape in sys.argv[4:]:
    m, n, k = (int(v) for v in shape.split("x"))
    torch.manual_seed(m + n + k)
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    y = torch.randn((n, k), device="cuda", dtype=torch.bfloat16)
    d = torch.empty((m, n), device="cuda", dtype=torch.bfloat16)
    if input_type == "fp8":
        (xq, xs), (yq, ys) = per_token_cast_to_fp8(x), per_block_cast_to_fp8(y)
        a, b, gemm = (xq, get_mn_major_tma_aligned_tensor(xs)), (yq, ys), deep_gemm.fp8_gemm_nt
        ref = dequant_a(xq, xs) @ dequant_b(yq, ys).T
    else:
        a, b, gemm, ref = x, y, deep_gemm.bf16_gemm_nt, x.float() @ y.float().T
    d.fill_(float("nan"))
    gemm(a, b, d)
    diff = calc_diff(d, ref)
    ms = median_ms(lambda: gemm(a, b, d), reps)
    plan = _C.gemm_config(input_type, "dense", m, n, k, num_sms=deep_gemm.get_num_sms())
    out[shape] = {"tflops": 2 * m * n * k / ms / 1e9, "diff": diff, "plan": plan}
print("RESULT " + json.dumps(out), flush=True)
"""


def parse_variant(spec: str) -> tuple[str, dict[str, str], dict[str, str]]:
    name, _, items = spec.partition(":")
    macros: dict[str, str] = {}
    env: dict[str, str] = {}
    for item in filter(None, items.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"variant {name!r}: {item!r} is not NAME=value")
        (env if key.startswith("$") else macros)[key.lstrip("$")] = value
    return name, macros, env


def make_variant(package: Path, include: Path | None, root: Path, name: str, macros: dict[str, str]) -> Path:
    """root/name/deep_gemm: a copy of the installed package (its kernel headers from
    `include` if given) with the macros redefined."""
    dest = root / name / "deep_gemm"
    shutil.rmtree(dest.parent, ignore_errors=True)
    shutil.copytree(package, dest)
    if include is not None:
        shutil.rmtree(dest / "include")
        shutil.copytree(include, dest / "include")
    headers = list((dest / "include").rglob("*.cuh"))
    for macro, value in macros.items():
        pattern = re.compile(rf"^#define {re.escape(macro)} .*$", re.M)
        hits = 0
        for header in headers:
            text, n = pattern.subn(f"#define {macro} {value}", header.read_text())
            if n:
                header.write_text(text)
                hits += n
        if not hits:
            sys.exit(f"variant {name!r}: no header defines {macro}")
    return dest.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True, help="NAME:MACRO=v,$ENV=v,...")
    parser.add_argument("--shapes", nargs="+", required=True, help="MxNxK")
    parser.add_argument("--input", choices=["fp8", "bf16"], default="fp8")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--include", type=Path, help="kernel headers to use instead of the installed ones "
                        "(e.g. the source tree's deep_gemm/include)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dg-variants"))
    parser.add_argument("--json", type=Path, help="write every round's results here")
    args = parser.parse_args()

    spec = importlib.util.find_spec("deep_gemm")
    if spec is None or spec.origin is None:
        sys.exit("deep_gemm is not installed")
    package = Path(spec.origin).parent
    if package.parent == REPO:
        sys.exit("run this against the installed wheel, not the source tree (cd elsewhere)")
    variants = [parse_variant(v) for v in args.variants]
    dirs = {name: make_variant(package, args.include, args.work, name, macros) for name, macros, _ in variants}

    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for round_ in range(args.rounds):
        for name, _, env in variants:
            proc_env = dict(os.environ, PYTHONPATH=str(dirs[name]), **env)
            proc = subprocess.run([sys.executable, "-c", TIMER, str(REPO), args.input, str(args.reps), *args.shapes],
                                  env=proc_env, capture_output=True, text=True, cwd=dirs[name])
            line = next((out for out in proc.stdout.splitlines() if out.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                sys.exit(f"variant {name!r} round {round_} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            results[name].append(json.loads(line[len("RESULT "):]))
            print(f"round {round_} {name}: done", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))

    width = max(12, *(len(name) + 2 for name in results))
    print(f"{'shape':>16} " + "".join(f"{name:>{width}}" for name in results) + "   plan (first variant)")
    for shape in args.shapes:
        cells = []
        for runs in results.values():
            values = [r[shape]["tflops"] for r in runs]
            # NaN (an output never written) fails this too.
            bad = args.input == "fp8" and not all(r[shape]["diff"] < 1e-3 for r in runs)
            cell = f"{statistics.median(values):.0f}({min(values):.0f}-{max(values):.0f})" + ("!" if bad else "")
            cells.append(f"{cell:>{width}}")
        plan = next(iter(results.values()))[0][shape]["plan"]
        print(f"{shape:>16} " + "".join(cells) + f"   {plan}")
    print("! marks calc_diff > 1e-3 (wrong results)")


if __name__ == "__main__":
    main()
