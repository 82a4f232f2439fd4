"""Benchmark the fleet: wall time for 1 CPython vs all of Requires-Python, and sizes.

    .venv/bin/python tools/fleet/bench_fleet.py [--one 3.12] [--torch X] [--out bench.json]

Runs the driver twice, one after the other (the machine has 2 cores: never in
parallel), each from a cold per-run build (the runtime library is rebuilt in
the container each run; the torch site and the image are cached and both runs
see the same cache state, which the warm-up run ensures):
  1. tools/fleet --pythons <one>     (fetch, image, build, merge, check)
  2. tools/fleet                     (every CPython)
and reports each stage's time, the wall-time ratio (target <= 1.3x), and the
merged wheel's size against one per-Python wheel (target <= 1.5x) and against
the sum of all per-Python wheels. The full run's dist/ wheel is left in place.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

TARGET_TIME_RATIO = 1.3
TARGET_SIZE_RATIO = 1.5


def run_fleet(args: list[str], wheelhouse: Path) -> tuple[float, dict]:
    cmd = [sys.executable, str(HERE), *args]
    print(f"\n##### bench: {' '.join(cmd)}", flush=True)
    t = time.monotonic()
    rc = subprocess.run(cmd, cwd=REPO).returncode
    wall = time.monotonic() - t
    if rc:
        raise SystemExit(f"bench: the fleet run {' '.join(args) or '(all CPythons)'} failed (exit {rc})")
    summary = json.loads((wheelhouse / "fleet-summary.json").read_text())
    return wall, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", default="3.12", help="the single CPython of the 1-Python run (default 3.12)")
    parser.add_argument("--torch", help="the torch to build against (default: requirements/torch.txt's pin)")
    parser.add_argument("--out", type=Path, help="default: <the torch's wheelhouse>/bench-fleet.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import fleet  # the driver's own answer to where a torch's outputs go

    torch = ["--torch", args.torch] if args.torch else []
    wheelhouse = fleet.output_dirs(args.torch or fleet.torch_pin())[0]
    out = args.out or wheelhouse / "bench-fleet.json"

    # warm-up: fetch the torch site and build the image if stale, so neither timed run pays for it
    subprocess.run([sys.executable, str(HERE), "torch-site", *torch], cwd=REPO, check=True)
    subprocess.run([sys.executable, str(REPO / "tools" / "image" / "build_image.py")], cwd=REPO, check=True)

    one_wall, one = run_fleet([*torch, "--pythons", args.one], wheelhouse)
    all_wall, every = run_fleet(torch, wheelhouse)

    per_python = [w["bytes"] for w in every["wheels"]]
    merged = every["merged"]["bytes"]
    report = {
        "torch": every["torch"],
        "not_built": every["not_built"],
        "one": {"pythons": one["pythons"], "wall_seconds": round(one_wall, 1), "stage_seconds": one["stage_seconds"],
                "build_seconds_per_python": one["build_seconds_per_python"]},
        "all": {"pythons": every["pythons"], "wall_seconds": round(all_wall, 1), "stage_seconds": every["stage_seconds"],
                "build_seconds_per_python": every["build_seconds_per_python"]},
        "time_ratio": round(all_wall / one_wall, 3),
        "build_stage_ratio": round(every["stage_seconds"]["build"] / one["stage_seconds"]["build"], 3),
        "sizes": {
            "per_python_bytes": dict(zip([w["abi"] for w in every["wheels"]], per_python)),
            "merged_bytes": merged,
            "sum_bytes": sum(per_python),
            "merged_vs_one": round(merged / max(per_python), 3),
            "merged_vs_sum": round(merged / sum(per_python), 3),
        },
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")

    n = len(every["pythons"])
    print(f"\n===== fleet benchmark (torch {report['torch']}) =====")
    for key, label in (("one", f"1 CPython ({', '.join(one['pythons'])})"), ("all", f"{n} CPythons")):
        r = report[key]
        stages = "  ".join(f"{k} {v:.1f}s" for k, v in r["stage_seconds"].items())
        print(f"{label:<24} wall {r['wall_seconds']:7.1f}s   {stages}")
        if r["build_seconds_per_python"]:
            print(" " * 24 + " per-Python build: " + "  ".join(f"{k.split('-')[0]} {v:.0f}s" for k, v in r["build_seconds_per_python"].items()))
    ok_time = report["time_ratio"] <= TARGET_TIME_RATIO
    s = report["sizes"]
    ok_size = s["merged_vs_one"] <= TARGET_SIZE_RATIO
    print(f"{n} vs 1 wall-time ratio: {report['time_ratio']:.2f}x (target <= {TARGET_TIME_RATIO}x: {'met' if ok_time else 'MISSED'});"
          f" build stage alone {report['build_stage_ratio']:.2f}x")
    print(f"merged {s['merged_bytes'] / 1e6:.2f} MB = {s['merged_vs_one']:.2f}x one per-Python wheel "
          f"(target <= {TARGET_SIZE_RATIO}x: {'met' if ok_size else 'MISSED'}), {s['merged_vs_sum']:.2f}x the sum of {n} "
          f"({s['sum_bytes'] / 1e6:.2f} MB)")
    print(f"report: {out}")
    return 0 if ok_time and ok_size else 1


if __name__ == "__main__":
    sys.exit(main())
