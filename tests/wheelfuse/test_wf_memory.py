"""Bounded memory: merge-wheels streams members, so merging inputs that each hold a large
member peaks well under twice that member (the figure for 500 MB inputs is in
tools/wheelfuse/benchmarks/RESULTS.md)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

MB = 1 << 20
MEMBER = 32 * MB

# The merge runs as a grandchild: a process inherits its parent's RSS high-water mark
# through fork+exec, so measuring a direct child of pytest would report pytest's own.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(status, usage.ru_maxrss * 1024)
"""


def test_merge_peak_rss_under_twice_the_largest_member(kit, tmp_path: Path) -> None:
    rng = random.Random(1)
    shared = rng.randbytes(MEMBER)  # incompressible, the same in both inputs
    inputs = [
        kit.make_wheel(
            tmp_path / "in",
            f"{abi}-{abi}-manylinux_2_17_x86_64",
            kit.synthetic_files(abi) | {"tinyext/blob.bin": shared, f"tinyext/own_{abi}.bin": rng.randbytes(MEMBER)},
        )
        for abi in ("cp311", "cp312")
    ]
    out = tmp_path / "out"
    merge = [sys.executable, "-m", "wheelfuse.merge_cli", *map(str, inputs), "-o", str(out)]
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *merge],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    status, peak = map(int, result.stdout.split())
    assert status == 0, result.stderr
    (merged,) = out.glob("*.whl")
    assert merged.stat().st_size > 3 * MEMBER  # three large members were written
    # Holding every member (as merge-wheels used to) needs at least 4 x MEMBER.
    assert peak < 2 * MEMBER, f"peak RSS {peak / MB:.0f} MB for {MEMBER / MB:.0f} MB members"
