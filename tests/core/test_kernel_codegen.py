"""ptxas keeps the GEMM kernels' warpgroup MMAs asynchronous and their accumulators in registers.

When device code touches MMA accumulator registers while MMAs may still be in
flight, ptxas does not fail: it serialises the MMAs or injects waits and says so
with an informational message (C7514 / C7517), and the kernel silently loses the
overlap its pipeline was written for. Likewise a loop nvcc does not unroll moves
the accumulators to local memory (a stack frame). NVRTC does not return ptxas's
messages, so this compiles the widest tile of each kernel family with nvcc.
"""
from __future__ import annotations

import re

import pytest
from ptxas import needs_nvcc, report, serialised_notes, stack_frames

from deep_gemm import _C


def largest_tiles() -> list[tuple[str, str]]:
    """Per (input, GEMM type, BLOCK_M, output): the widest BLOCK_N's source, the most register-hungry."""
    widest: dict[str, tuple[int, str, str]] = {}
    for name, source in _C.kernel_sources():
        match = re.fullmatch(r"(\w+_gemm_nt(?:_1d1d)?)\[(\d+)x(\d+) s\d+ (.*)\]", name)
        if not match:
            continue  # not a GEMM (the grouping checks hold no MMAs)
        op, block_m, block_n, rest = match.groups()
        family = f"{op} {block_m} {rest}"
        if family not in widest or int(block_n) > widest[family][0]:
            widest[family] = (int(block_n), name, source)
    return [(name, source) for _, name, source in widest.values()]


@pytest.mark.slow  # nvcc compiles: minutes, not make test-fast's seconds
@needs_nvcc
@pytest.mark.parametrize("name, source", largest_tiles(), ids=lambda v: v if "[" in v else "")
def test_mmas_stay_asynchronous(name, source, tmp_path):
    text = report(source, tmp_path)
    notes = serialised_notes(text)
    assert not notes, f"{name}: ptxas made warpgroup MMAs synchronous:\n" + "\n".join(notes)
    frames = stack_frames(text)
    assert frames and not any(frames), f"{name}: uses local memory (stack frame):\n{text}"
