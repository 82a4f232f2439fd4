"""scripts/sweep_kernel_variants.py: how it builds a variant of the installed package (no GPU needed)."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sweep_kernel_variants.py"
spec = importlib.util.spec_from_file_location("sweep_kernel_variants", SCRIPT)
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def fake_package(root: Path) -> Path:
    package = root / "site" / "deep_gemm"
    (package / "include" / "deep_gemm").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "include" / "deep_gemm" / "gemm.cuh").write_text("#ifndef KNOB\n#define KNOB 8\n#endif\nint x = KNOB;\n")
    return package


def test_variant_spec_separates_macros_from_environment():
    assert sweep.parse_variant("wide:KNOB=4,$DG_GEMM_BLOCK_N=256") == (
        "wide", {"KNOB": "4"}, {"DG_GEMM_BLOCK_N": "256"})
    assert sweep.parse_variant("auto:") == ("auto", {}, {})
    with pytest.raises(SystemExit, match="'KNOB' is not NAME=value"):
        sweep.parse_variant("bad:KNOB")


def test_variant_redefines_the_macro_in_a_copy(tmp_path):
    package = fake_package(tmp_path)
    root = sweep.make_variant(package, None, tmp_path / "work", "v4", {"KNOB": "4"})
    assert (root / "deep_gemm" / "include" / "deep_gemm" / "gemm.cuh").read_text().splitlines()[1] == "#define KNOB 4"
    assert (package / "include" / "deep_gemm" / "gemm.cuh").read_text().splitlines()[1] == "#define KNOB 8"


def test_variant_takes_headers_from_the_given_include_dir(tmp_path):
    package = fake_package(tmp_path)
    include = tmp_path / "src" / "include"
    (include / "deep_gemm").mkdir(parents=True)
    (include / "deep_gemm" / "gemm.cuh").write_text("#define KNOB 1\n")
    root = sweep.make_variant(package, include, tmp_path / "work", "src", {})
    assert (root / "deep_gemm" / "include" / "deep_gemm" / "gemm.cuh").read_text() == "#define KNOB 1\n"
    assert (root / "deep_gemm" / "__init__.py").exists()


def test_a_macro_no_header_defines_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="variant 'v': no header defines MISSING"):
        sweep.make_variant(fake_package(tmp_path), None, tmp_path / "work", "v", {"MISSING": "1"})
