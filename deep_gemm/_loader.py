"""Import deep_gemm._C for the running CPython and point its JIT at the right paths.

A fat wheel carries one `_C<EXT_SUFFIX>` per CPython; `uv pip install file.whl` does not
check tags, so an interpreter without its `_C` must fail here, saying which Pythons the
installation does support and what to do.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import sysconfig
from pathlib import Path

import torch  # noqa: F401  (loads libtorch*, which _C and its runtime resolve by soname)

PACKAGE_DIR = Path(__file__).resolve().parent

# _C.cpython-312-x86_64-linux-gnu.so -> cp312; _C.cpython-314t-... -> cp314t
_SUFFIX_TAG = re.compile(r"^_C\.cpython-(\d)(\d+)([a-z]*)-")


def running_tag() -> str:
    """cp312, or cp313t on a free-threaded build."""
    threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return f"cp{sys.version_info.major}{sys.version_info.minor}{threaded}"


def tag_of(filename: str) -> str | None:
    """The CPython tag an extension file name was built for; None if it is no _C."""
    if not filename.startswith("_C.") or not filename.endswith(".so"):
        return None
    if match := _SUFFIX_TAG.match(filename):
        major, minor, flags = match.groups()
        return f"cp{major}{minor}{flags}"
    return filename[len("_C."):-len(".so")] or "untagged"  # abi3, or a foreign suffix


def _version_key(tag: str) -> tuple:
    match = re.fullmatch(r"cp(\d)(\d+)(.*)", tag)
    return (0, int(match.group(1)), int(match.group(2)), match.group(3)) if match else (1, 0, 0, tag)


def present_tags(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Tags of the _C files installed beside this module, oldest Python first."""
    tags = {tag for path in package_dir.glob("_C.*") if (tag := tag_of(path.name))}
    return sorted(tags, key=_version_key)


def _missing_c_error() -> ImportError:
    tag = running_tag()
    present = present_tags()
    where = f"Python {sys.version.split()[0]} ({tag}) at {sys.executable}"
    if not present:
        return ImportError(
            f"deep_gemm has no compiled extension (_C) at all in {PACKAGE_DIR}: the package was "
            f"installed from source without building it. Reinstall deep_gemm from a wheel, or "
            f"run `python setup.py build_ext --inplace` in a source checkout. ({where})"
        )
    return ImportError(
        f"deep_gemm has no compiled extension for {where}. This installation "
        f"({PACKAGE_DIR}) has _C for: {', '.join(present)}. Use one of those Pythons, or install "
        f"a deep_gemm wheel that includes {tag} (`pip install --force-reinstall deep_gemm` "
        f"resolves to one if it exists)."
    )


def _import_c():
    name = f"{__package__}._C"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        raise _missing_c_error() from None
    except ImportError as error:
        raise ImportError(
            f"deep_gemm._C for {running_tag()} is present but failed to load: {error}. It needs "
            f"torch {_pinned_torch()} (installed: {torch.__version__}) and its CUDA 13 libraries."
        ) from error


def _pinned_torch() -> str:
    try:
        requires = importlib.metadata.requires("deep_gemm") or []
    except importlib.metadata.PackageNotFoundError:
        return "2.11.*"  # a source checkout: see requirements/torch.txt
    return next((r.split("torch", 1)[1].strip() for r in requires if r.startswith("torch")), "?")


def _distribution_file(distribution: str, filename: str) -> str:
    """Path of `filename` installed by `distribution` (e.g. nvidia-cuda-nvrtc), or ""."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return ""
    for file in files:
        if file.name == filename:
            path = Path(file.locate())
            if path.exists():
                return str(path.resolve())
    return ""


def _nvidia_cu13(*parts: str) -> str:
    """site-packages/nvidia/cu13/<parts>, found through the `nvidia` namespace package."""
    spec = importlib.util.find_spec("nvidia")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location, "cu13", *parts)
        if path.exists():
            return str(path.resolve())
    return ""


def jit_paths() -> dict[str, str]:
    """The arguments of _C.init for this installation."""
    nvrtc = _distribution_file("nvidia-cuda-nvrtc", "libnvrtc.so.13") or _nvidia_cu13("lib", "libnvrtc.so.13")
    cuda_h = _distribution_file("nvidia-cuda-runtime", "cuda.h")
    cuda_include = str(Path(cuda_h).parent) if cuda_h else _nvidia_cu13("include")
    cuda_home = ""
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if candidate and Path(candidate, "bin", "nvcc").is_file():
            cuda_home = candidate
            break
    if not cuda_include and cuda_home:
        cuda_include = str(Path(cuda_home, "include"))
    cache_dir = os.environ.get("DG_JIT_CACHE_DIR") or str(Path.home() / ".cache" / "deep_gemm")
    return {
        "include_dir": str(PACKAGE_DIR / "include"),
        "nvrtc_lib": nvrtc,
        "cuda_home": cuda_home,
        "cuda_include": cuda_include,
        "cache_dir": cache_dir,
    }


_C = _import_c()
_C.init(**jit_paths())
