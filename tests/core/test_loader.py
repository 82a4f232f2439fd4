"""deep_gemm._loader: the per-CPython _C import, its error message, and the JIT paths."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

import deep_gemm
from deep_gemm import _loader

PACKAGE = Path(deep_gemm.__file__).resolve().parent
RUNNING = _loader.running_tag()


@pytest.mark.parametrize(
    "filename, tag",
    [
        ("_C.cpython-312-x86_64-linux-gnu.so", "cp312"),
        ("_C.cpython-310-x86_64-linux-gnu.so", "cp310"),
        ("_C.cpython-314t-x86_64-linux-gnu.so", "cp314t"),
        ("_C.cpython-313d-x86_64-linux-gnu.so", "cp313d"),
        ("_C.abi3.so", "abi3"),
        ("_C.so", "untagged"),
        ("_C.cpython-312-x86_64-linux-gnu.pyi", None),
        ("libdeep_gemm_runtime.so", None),
        ("_Cx.cpython-312-x86_64-linux-gnu.so", None),
    ],
)
def test_tag_of(filename, tag):
    assert _loader.tag_of(filename) == tag


def test_present_tags_sorted_by_version(tmp_path):
    for name in ["_C.cpython-39-x86_64-linux-gnu.so", "_C.cpython-313-x86_64-linux-gnu.so",
                 "_C.cpython-310-x86_64-linux-gnu.so", "_C.cpython-314t-x86_64-linux-gnu.so",
                 "_C.abi3.so", "utils.py"]:
        (tmp_path / name).write_bytes(b"")
    assert _loader.present_tags(tmp_path) == ["cp39", "cp310", "cp313", "cp314t", "abi3"]


def _package_copy(tmp_path: Path, tags: list[str]) -> Path:
    """deep_gemm's Python files and headers, with the real _C renamed to `tags` only."""
    root = tmp_path / "site"
    copy = root / "deep_gemm"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("_C.*", "__pycache__"))
    real_c = next(PACKAGE.glob("_C.cpython-*.so"))
    for tag in tags:
        version, threaded = re.fullmatch(r"cp(\d+)(t?)", tag).groups()
        shutil.copy(real_c, copy / f"_C.cpython-{version}{threaded}-x86_64-linux-gnu.so")
    return root


def _import_in_subprocess(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import deep_gemm"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)},
    )


@pytest.mark.slow  # a process importing torch
def test_missing_c_for_this_python_names_the_versions(tmp_path):
    others = [t for t in ["cp310", "cp311", "cp312", "cp313", "cp314t"] if t != RUNNING]
    run = _import_in_subprocess(_package_copy(tmp_path, others))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: deep_gemm has no compiled extension for Python"), run.stderr
    assert f"({RUNNING})" in last
    assert f"has _C for: {', '.join(others)}." in last
    assert "No module named" not in run.stderr


@pytest.mark.slow  # a process importing torch
def test_no_c_at_all(tmp_path):
    run = _import_in_subprocess(_package_copy(tmp_path, []))
    assert "ImportError: deep_gemm has no compiled extension (_C) at all" in run.stderr
    assert "build_ext --inplace" in run.stderr


def test_jit_paths_point_at_torchs_cuda():
    paths = _loader.jit_paths()
    assert Path(paths["include_dir"]) == PACKAGE / "include"
    assert Path(paths["nvrtc_lib"]).name == "libnvrtc.so.13" and Path(paths["nvrtc_lib"]).is_file()
    assert (Path(paths["cuda_include"]) / "cuda.h").is_file()
    site = Path(torch.__file__).resolve().parents[1]
    assert Path(paths["nvrtc_lib"]).is_relative_to(site)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DG_JIT_CACHE_DIR", str(tmp_path / "c"))
    assert _loader.jit_paths()["cache_dir"] == str(tmp_path / "c")
    monkeypatch.delenv("DG_JIT_CACHE_DIR")
    assert _loader.jit_paths()["cache_dir"] == str(Path.home() / ".cache" / "deep_gemm")


def _internals_ids(path: Path) -> set[bytes]:
    return set(re.findall(rb"__pybind11_internals_v\d+_\w+?__", path.read_bytes()))


def test_c_creates_no_pybind11_internals():
    """_C is plain C API: it uses torch's exported Tensor caster and no pybind11 state of its own.
    Were it to create pybind11 internals, their id would have to be torch's (compile with the
    PYBIND11_COMPILER_TYPE / STDLIB / BUILD_ABI torch's libtorch_python.so was built with)."""
    torch_python = Path(torch.__file__).resolve().parent / "lib" / "libtorch_python.so"
    assert _internals_ids(torch_python), "the id pattern finds nothing in torch's own pybind11 module"
    assert _internals_ids(next(PACKAGE.glob("_C.cpython-*.so"))) == set()


def test_runtime_is_python_free():
    needed = subprocess.run(["readelf", "-d", str(PACKAGE / "libdeep_gemm_runtime.so")],
                            capture_output=True, text=True, check=True).stdout
    assert "libpython" not in needed and "libtorch_python" not in needed
    assert "libcuda.so" not in needed  # the driver is reached through libcudart
    assert "$ORIGIN/../torch/lib" in needed


def _dynamic_symbols(path: Path) -> list[tuple[str, str]]:
    """(section index, name) of each dynamic symbol: 'UND' for an undefined one."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    rows = (line.split() for line in out.splitlines())
    return [(f[6], f[7].split("@")[0]) for f in rows if len(f) >= 8 and f[0][:-1].isdigit()]


def test_c_exports_only_its_init():
    """setup.py links _C with csrc/python/exports.map: nothing but PyInit__C may leak out of it."""
    defined = {name for index, name in _dynamic_symbols(next(PACKAGE.glob("_C.cpython-*.so"))) if index != "UND"}
    assert defined == {"PyInit__C"}


def test_tensor_caster_is_torchs():
    """csrc/python/tensor_caster.hpp declares torch's type_caster<at::Tensor>: its load() must come
    from libtorch_python (re-check the declaration if a torch pin change breaks this)."""
    load = "_ZN8pybind116detail11type_casterIN2at6TensorEvE4loadENS_6handleEb"
    assert ("UND", load) in _dynamic_symbols(next(PACKAGE.glob("_C.cpython-*.so")))
    torch_python = Path(torch.__file__).resolve().parent / "lib" / "libtorch_python.so"
    assert any(name == load and index != "UND" for index, name in _dynamic_symbols(torch_python))


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"), reason="needs a free-threaded CPython")
def test_import_keeps_the_gil_disabled():
    """_C is declared GIL-free (py::mod_gil_not_used): importing it must not re-enable the GIL."""
    run = subprocess.run([sys.executable, "-c", "import sys, torch; print(sys._is_gil_enabled()); "
                          "import deep_gemm; print(sys._is_gil_enabled())"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    after_torch, after_deep_gemm = run.stdout.split()
    if after_torch == "True":
        pytest.skip("torch itself re-enabled the GIL")
    assert after_deep_gemm == "False", run.stderr


# _C converts arguments itself (csrc/python/module.cpp, CPython's C API): the rules of the
# pybind11 binding it replaced, checked on CPU tensors (the runtime then refuses them).
def _cpu_fp8_operands():
    a = torch.zeros((64, 128), dtype=torch.float8_e4m3fn)
    sfa = deep_gemm.get_mn_major_tma_aligned_tensor(torch.ones((64, 1)))
    b = torch.zeros((128, 128), dtype=torch.float8_e4m3fn)
    return (a, sfa), (b, torch.ones((1, 1))), torch.empty((64, 128), dtype=torch.bfloat16)


@pytest.mark.parametrize("as_keywords", [False, True])
@pytest.mark.parametrize("pair", [tuple, list])
def test_arguments_reach_the_runtime(pair, as_keywords):
    (a, sfa), (b, sfb), d = _cpu_fp8_operands()
    args = {"a": pair((a, sfa)), "b": pair((b, sfb)), "d": d, "c": None}
    with pytest.raises(ValueError, match=re.escape("a[0] must be a CUDA tensor")):
        deep_gemm.fp8_gemm_nt(**args) if as_keywords else deep_gemm.fp8_gemm_nt(*args.values())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a, b, d: deep_gemm.fp8_gemm_nt(a[0], b, d), "argument 'a' must be a (torch.Tensor, torch.Tensor) pair"),
        (lambda a, b, d: deep_gemm.fp8_gemm_nt(a, (*b, b[0]), d), "argument 'b' must be a (torch.Tensor, "),
        (lambda a, b, d: deep_gemm.fp8_gemm_nt(a, b, d.tolist()), "argument 'd' must be a torch.Tensor, not list"),
        (lambda a, b, d: deep_gemm.fp8_gemm_nt(a, b, d, c=1.0), "argument 'c' must be a torch.Tensor or None"),
        # deep_gemm.fp8_gemm_nt is a Python function (deep_gemm/gemm.py): _C's own parsing directly.
        (lambda a, b, d: _loader._C.fp8_gemm_nt(a, b), "missing required argument 'd'"),
        (lambda a, b, d: _loader._C.fp8_gemm_nt(a, b, d, e=None), "'e' is an invalid keyword argument"),
        (lambda a, b, d: deep_gemm.set_num_sms(1.0), "argument 'num_sms' must be an int"),
        (lambda a, b, d: deep_gemm.set_num_sms(2**31), "argument 'num_sms' must be an int in [-2**31, 2**31)"),
        (lambda a, b, d: _loader._C.jit_compile(b"n", 1), "argument 'source' must be a str, not int"),
        (lambda a, b, d: _loader._C.jit_launch("n", "s", (1, 1), (1, 1, 1)), "argument 'grid' must be a sequence of 3"),
        (lambda a, b, d: _loader._C.jit_launch("n", "s", (1, 1, 1), (1, 1, 1), args=[-1]), "argument 'args' must be"),
    ],
)
def test_unconvertible_arguments_are_type_errors(call, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        call(*_cpu_fp8_operands())


def test_runtime_errors_keep_their_python_types():
    with pytest.raises(ValueError, match="invalid arch 'sm_x'"):  # std::invalid_argument
        _loader._C.jit_compile("n", "s", arch="sm_x")
    with pytest.raises(TypeError, match="^fp8_gemm_nt: d must have dtype"):  # c10::TypeError, no backtrace
        (a, sfa), b, d = _cpu_fp8_operands()
        deep_gemm.fp8_gemm_nt((a, sfa), b, d.float().half())
