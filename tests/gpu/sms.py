"""Run deep_gemm under a smaller SM budget, which changes the tile plan of small problems, and
under a forced tile plan, so a test covers the plan it names whatever the heuristic picks."""
import contextlib
import os
import re
import subprocess
import sys

import pytest

import deep_gemm
from deep_gemm import _C

# Set to a test's node id in the child pytest that runs that test under its forced plan.
CHILD = "DG_TEST_FORCED_PLAN_NODE"


@contextlib.contextmanager
def num_sms(count: int):
    full = deep_gemm.get_num_sms()
    deep_gemm.set_num_sms(count)
    try:
        yield
    finally:
        deep_gemm.set_num_sms(full)


def plan_overrides(op: str, m: int, kernel: str) -> dict[str, str]:
    """The DG_GEMM_* overrides that force the plan ending in `kernel` (as gemm_config prints it)
    for a dense GEMM of `m` rows: its tile width; its height where the shape has a choice (FP8,
    more than 128 rows: 128 or 192); its K-slices, or none. Row halves ('split-m') have no
    override: with the tile forced, the heuristic still chooses them over K-slices."""
    tile = re.match(r"(\d+)x(\d+) s\d+ ", kernel)
    if tile is None:
        raise ValueError(f"{kernel!r} does not start with a tile, as in '128x256 s4 bf16 tma-store]'")
    block_m, block_n = tile.groups()
    env = {"DG_GEMM_BLOCK_N": block_n}
    if op == "fp8" and m > 128 and block_m in ("128", "192"):
        env["DG_GEMM_BLOCK_M"] = block_m
    if split := re.search(r"\] split-k (\d+)x\d+", kernel):
        env["DG_GEMM_SPLIT_K"] = split.group(1)
    elif "split-m" not in kernel:
        env["DG_GEMM_SPLIT_K"] = "1"
    return env


def forced_plan(op: str, sms: int, m: int, n: int, k: int, kernel: str, output: str = "bf16") -> bool:
    """Run the calling test under the plan `kernel` on `sms` SMs. The overrides are read once per
    process, so the test re-runs itself in a child pytest with them set: there (True) the caller
    runs its body, which this first checks gets that plan; here (False) the child must pass."""
    if sms > deep_gemm.get_num_sms():
        pytest.skip(f"the plan is for {sms} SMs; this GPU has {deep_gemm.get_num_sms()}")
    env = plan_overrides(op, m, kernel)
    node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
    if os.environ.get(CHILD) == node:
        plan = _C.gemm_config(op, "dense", m, n, k, output=output, num_sms=sms)
        assert plan.endswith(kernel), f"{env} gave {plan}, not {kernel}"
        return True
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                            os.path.join(root, node)],
                           env={**os.environ, **env, CHILD: node}, capture_output=True, text=True, timeout=900)
    output_tail = (child.stdout + child.stderr)[-6000:]
    assert child.returncode == 0, f"under {env}:\n{output_tail}"
    if " skipped" in child.stdout.splitlines()[-1]:
        pytest.skip(f"under {env}: {output_tail[-500:]}")
    return False
