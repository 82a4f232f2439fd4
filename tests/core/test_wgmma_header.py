"""deep_gemm/include/deep_gemm/wgmma.cuh is what scripts/gen_wgmma_header.py writes (it is
generated and committed: an edit by hand, or a script change not rerun, fails here)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_header_matches_the_script():
    spec = importlib.util.spec_from_file_location("gen_wgmma_header", ROOT / "scripts/gen_wgmma_header.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert (ROOT / "deep_gemm/include/deep_gemm/wgmma.cuh").read_text() == script.render()


def test_bf16_mmas_take_the_transpose_bits():
    text = (ROOT / "deep_gemm/include/deep_gemm/wgmma.cuh").read_text()
    assert "template <int N, bool kMnMajorA = false, bool kMnMajorB = false>\nstruct BF16MMA;" in text
    assert 'p, 1, 1, %67, %68;' in text  # m64n128k16: 64 accumulators, descriptors, predicate, transposes
    assert '"n"(static_cast<int>(kMnMajorB))' in text
