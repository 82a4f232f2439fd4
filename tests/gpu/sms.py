"""Run deep_gemm under a smaller SM budget, which changes the tile plan of small problems, and
under a forced tile plan, so a test covers the plan it names whatever the heuristic picks."""
import contextlib
import os
import re

import pytest

import deep_gemm
from deep_gemm import _C

OVERRIDES = ("DG_GEMM_BLOCK_M", "DG_GEMM_BLOCK_N", "DG_GEMM_SPLIT_K")
_heuristic_env: dict[str, str | None] | None = None  # their values before this test's forced_plan


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


def forced_plan(op: str, sms: int, m: int, n: int, k: int, kernel: str, output: str = "bf16") -> None:
    """Force the plan ending in `kernel` for the rest of the calling test (on `sms` SMs: the
    caller runs its GEMMs under num_sms(sms)) and check the planner now returns it.
    tests/gpu/conftest.py puts the overrides back after every test (restore_heuristic)."""
    global _heuristic_env
    if sms > deep_gemm.get_num_sms():
        pytest.skip(f"the plan is for {sms} SMs; this GPU has {deep_gemm.get_num_sms()}")
    env = plan_overrides(op, m, kernel)
    if _heuristic_env is None:
        _heuristic_env = {name: os.environ.get(name) for name in OVERRIDES}
    for name in OVERRIDES:
        os.environ.pop(name, None)
    os.environ.update(env)
    _C.reload_gemm_plan_overrides()
    plan = _C.gemm_config(op, "dense", m, n, k, output=output, num_sms=sms)
    assert plan.endswith(kernel), f"{env} gave {plan}, not {kernel}"


@contextlib.contextmanager
def forced_block_n(block_n: int | None):
    """DG_GEMM_BLOCK_N=block_n (None: the heuristic's width) for the GEMMs inside, of any type."""
    if block_n is None:
        yield
        return
    previous = os.environ.get("DG_GEMM_BLOCK_N")
    os.environ["DG_GEMM_BLOCK_N"] = str(block_n)
    _C.reload_gemm_plan_overrides()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DG_GEMM_BLOCK_N")
        else:
            os.environ["DG_GEMM_BLOCK_N"] = previous
        _C.reload_gemm_plan_overrides()


def restore_heuristic() -> None:
    """The overrides as they were before the first forced_plan of the test."""
    global _heuristic_env
    if _heuristic_env is None:
        return
    for name, value in _heuristic_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _heuristic_env = None
    _C.reload_gemm_plan_overrides()
