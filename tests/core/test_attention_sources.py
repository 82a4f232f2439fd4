"""The indexer's, the mHC pre-norm GEMM's and einsum's kernel instantiations are all listed in
_C.kernel_sources() (so tests/core/test_kernel_sources.py compiles each with NVRTC),
and ptxas keeps their MMAs asynchronous, their accumulators in registers and nothing
on a stack."""
from __future__ import annotations

import re

import pytest
from ptxas import needs_nvcc, report, serialised_notes, spill_stores, stack_frames

from deep_gemm import _C

SOURCES = {name: source for name, source in _C.kernel_sources()
           if "logits" in name or "hc_prenorm" in name or name.startswith("einsum[")}


def test_every_instantiation_is_listed():
    for out in ("fp32", "bf16"):
        for dim in (32, 64, 128):
            for heads in (32, 64):
                assert f"mqa_logits[d{dim} h{heads} {out}]" in SOURCES
                paged = {(int(c), int(u)) for c, u in re.findall(
                    rf"paged_mqa_logits\[d{dim} h{heads} c(\d+) u(\d) {out}\]", " ".join(SOURCES))}
                assert {c for c, _ in paged} == {c for c in (32, 64, 128) if c >= heads}
                # Three units where shared memory holds them: always at D <= 64; at D = 128
                # two for 256 columns (next_n x heads), three for 128.
                assert {u for _, u in paged} == ({3} if dim <= 64 else {2, 3})
        assert f"clean_logits[{out}]" in SOURCES
    assert "paged_mqa_logits_metadata" in SOURCES
    for n in (8, 16, 24, 32):
        assert f"tf32_hc_prenorm_gemm[n{n}]" in SOURCES
    assert "hc_prenorm_reduce" in SOURCES
    for name in ("bmk,bnk->mn", "per-head", "per-head mn-major b"):
        assert f"einsum[{name}]" in SOURCES
    assert len(SOURCES) == 2 * (6 + 20 + 1) + 1 + 4 + 1 + 3


def test_sources_check_the_argument_structs():
    """The host's argument structs are static_asserted against the device's in the source."""
    for name, source in SOURCES.items():
        if name.startswith(("mqa_logits", "paged_mqa_logits", "tf32_hc_prenorm_gemm", "einsum")):
            assert re.search(r"static_assert\(sizeof\((indexer|hc|einsum)::\w+Args\) == \d+", source), name


@needs_nvcc
@pytest.mark.parametrize("name", [n for n in SOURCES if "bf16" not in n])
def test_ptxas_keeps_registers(name, tmp_path):
    text = report(SOURCES[name], tmp_path)
    notes = serialised_notes(text)
    assert not notes, f"{name}: ptxas made warpgroup MMAs synchronous:\n" + "\n".join(notes)
    frames = stack_frames(text)
    assert frames and not any(frames) and not any(spill_stores(text)), f"{name}: uses local memory:\n{text}"
