"""Benchmark merge-wheels: whole-process time and output size for 4 per-CPython inputs.

Setup, per size class (~10 MB, ~100 MB and, with --classes, ~500 MB per input wheel):
- 4 inputs, cp310..cp313, manylinux_2_28_x86_64, same METADATA;
- in each input a per-CPython extension `_C.cpython-3X-x86_64-linux-gnu.so` of random
  (incompressible) bytes, 75% of the class size, different in every input;
- shared files identical in all inputs, 25% of the class size: random "kernel headers"
  (22%) and compressible template text (3%), which the merged wheel stores once.
So a merged wheel is about 4 x 75% + 22% (+ the compressed text) of one class size.
Random bytes are the worst case for the writer: deflate gains nothing on them and still
costs its full time; real extension modules compress about 2.5:1.
Each merge is a fresh `merge-wheels` process (python startup, reading and verifying every
RECORD hash, planning, deflating and writing); the median of several runs is reported,
with min/max, the peak resident memory of the process and that peak against the largest
member (members are streamed: the bound to hold is about 2x the largest member).

Usage: python bench_merge.py [--classes 10,100] [--runs-small 5] [--runs-large 3] [--workdir DIR]
(classes of 100 MB and more get --runs-large runs)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ABIS = ("cp310", "cp311", "cp312", "cp313")
PLATFORM = "manylinux_2_28_x86_64"
MB = 1 << 20


def write_wheel(path: Path, files: dict[str, bytes], tag: str) -> None:
    dist_info = "benchpkg-1.0.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = (
        b"Metadata-Version: 2.1\nName: benchpkg\nVersion: 1.0\nRequires-Python: >=3.10,<3.14\n\n"
    )
    files[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\nTag: {tag}\n\n".encode()
    )
    lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(data)}\n")
    files[f"{dist_info}/RECORD"] = ("".join(lines) + f"{dist_info}/RECORD,,\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def randbytes(rng: random.Random, n: int) -> bytes:
    """rng.randbytes in pieces (one call is limited to 2**31 bits)."""
    return b"".join(rng.randbytes(min(64 * MB, n - i)) for i in range(0, n, 64 * MB))


def make_inputs(directory: Path, size: int, rng: random.Random) -> list[Path]:
    shared_random = int(size * 0.22)
    headers = {
        f"benchpkg/include/kernel_{i}.cuh": randbytes(rng, shared_random // 8) for i in range(8)
    }
    text = b"".join(
        b"template <int BLOCK_M, int BLOCK_N> struct Tile%d {};\n" % i
        for i in range(size * 3 // 100 // 56)
    )
    shared = headers | {
        "benchpkg/include/tiles.cuh": text,
        "benchpkg/__init__.py": b"from ._C import *\n",
    }
    paths = []
    for abi in ABIS:
        files = shared | {
            f"benchpkg/_C.cpython-{abi[2:]}-x86_64-linux-gnu.so": randbytes(rng, int(size * 0.75))
        }
        path = directory / f"benchpkg-1.0-{abi}-{abi}-{PLATFORM}.whl"
        write_wheel(path, files, f"{abi}-{abi}-{PLATFORM}")
        paths.append(path)
    return paths


# Runs the merge as a grandchild and reports its wall time and peak RSS. On Linux a process
# inherits its parent's RSS high-water mark through fork+exec, so measuring from this (large)
# benchmark process would report this process's memory, not the merge's.
_MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss * 1024, status, out.decode().strip())
"""


def timed_merge(merge: str, inputs: list[Path], out: Path) -> tuple[float, int, Path]:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", _MEASURE, merge, *map(str, inputs), "-o", str(out)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    elapsed, peak, status, output = result.stdout.strip().split(maxsplit=3)
    if status != "0":
        sys.exit(f"merge-wheels failed with status {status}")
    return float(elapsed), int(peak), Path(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-small", type=int, default=5)
    parser.add_argument("--runs-large", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--classes", default="10,100", help="input sizes in MB, comma-separated")
    args = parser.parse_args()
    merge = shutil.which("merge-wheels") or sys.exit("merge-wheels is not on PATH")
    from wheelfuse import __version__

    print(f"wheelfuse {__version__}, Python {platform.python_version()}, {platform.machine()},")
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    print()
    columns = ("class", "input wheels (each)", "merged wheel", "runs", "median s", "min s", "max s")
    extra = ("largest member", "peak RSS", "peak / largest member")
    print("| " + " | ".join((*columns, *extra)) + " |")
    print("|" + "---|" * (len(columns) + len(extra)))
    classes = [int(c) for c in args.classes.split(",")]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for label, size, runs in (
            (f"{c} MB", c * MB, args.runs_small if c < 100 else args.runs_large) for c in classes
        ):
            directory = Path(tmp) / label.replace(" ", "")
            directory.mkdir()
            inputs = make_inputs(directory, size, random.Random(size))
            times, peaks, outputs = [], [], []
            for _ in range(runs):
                elapsed, peak, output = timed_merge(merge, inputs, directory / "out")
                times.append(elapsed)
                peaks.append(peak)
                outputs.append(hashlib.sha256(output.read_bytes()).hexdigest())
            assert len(set(outputs)) == 1, "merge output is not reproducible"
            merged_size = output.stat().st_size
            sizes = sorted(p.stat().st_size for p in inputs)
            each = f"{sizes[0] / MB:.1f}-{sizes[-1] / MB:.1f} MB"
            timing = f"{statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f}"
            merged = f"{merged_size / MB:.1f} MB"
            with zipfile.ZipFile(inputs[0]) as zf:
                largest = max(i.file_size for i in zf.infolist())
            memory = (
                f"{largest / MB:.0f} MB | {max(peaks) / MB:.0f} MB | {max(peaks) / largest:.2f}"
            )
            print(f"| {label} | {each} | {merged} | {runs} | {timing} | {memory} |")
            shutil.rmtree(directory)
    print()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
