"""Build deep_gemm: a Python-free runtime library, once, and a thin `_C` per CPython.

Products, both inside the `deep_gemm` package:
  libdeep_gemm_runtime.so  csrc/jit + csrc/apis + csrc/jit_kernels over libtorch. It
                           never sees Python headers, so one build serves every CPython;
                           `python setup.py build_runtime` builds it into
                           build/runtime/<hash>/ and every later wheel build reuses it.
  _C<EXT_SUFFIX>           csrc/python/module.cpp (CPython's C API + torch's Tensor caster),
                           compiled with the TARGET interpreter's headers and linked
                           against the runtime.

Both compile against ONE torch, the pinned one (requirements/torch.txt): the torch of
$DG_TORCH_SITE (a site-packages holding torch/ and nvidia/cu13/), or else the build
interpreter's torch, located without importing it. The target interpreter needs no
torch. Parallel compiles: -j N on build_runtime / build_ext, or $DG_BUILD_JOBS (default 2).

Dev build for the tests:  .venv/bin/python setup.py build_ext --inplace
Per-Python wheel:         DG_TORCH_SITE=/path/to/site-packages uv build --wheel --python 3.10
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Command, Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
RUNTIME_DIRS = ("jit", "apis", "jit_kernels")
RUNTIME_NAME = "libdeep_gemm_runtime.so"

# The ABI flags torch 2.11 is built with. torch 2.11 no longer exports
# torch._C._PYBIND11_{COMPILER_TYPE,STDLIB,BUILD_ABI}: it bundles pybind11 3.0.1, whose
# internals id is derived from the compiler. We pin the id torch's own
# libtorch_python.so carries ("__pybind11_internals_v11_system_libstdcpp_gxx_abi_1xxx_
# use_cxx11_abi_1__", read from the torch==2.11.0 wheel) so pybind11 objects can be shared
# with torch whatever compiler builds _C. Revisit on every torch pin change
# (tests/core/test_loader.py checks the two ids match). Today's _C is plain C API and
# creates no pybind11 internals (it only calls torch's exported Tensor caster); the
# flags stay so that any pybind11 state it ever creates is torch's.
PYBIND11_ABI_FLAGS = [
    '-DPYBIND11_COMPILER_TYPE="_system"',
    '-DPYBIND11_STDLIB=""',
    '-DPYBIND11_BUILD_ABI="_libstdcpp_gxx_abi_1xxx_use_cxx11_abi_1"',
]
COMMON_FLAGS = ["-std=c++17", "-O2", "-fPIC", "-D_GLIBCXX_USE_CXX11_ABI=1", "-Wall"]
# _C (csrc/python/module.cpp) is built once per CPython and ships once per CPython in
# the fat wheel, so it is built for size: -Os (after COMMON_FLAGS' -O2, so it wins; it
# only converts arguments), every function in its own section for --gc-sections, and
# only PyInit__C exported (exports.map; also keeps its copies of std:: templates local).
BINDING_FLAGS = ["-Os", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-ffunction-sections",
                 "-fdata-sections"]
BINDING_LINK_FLAGS = ["-Wl,--gc-sections", "-Wl,--strip-all", "-Wl,--as-needed",
                      f"-Wl,--version-script={CSRC / 'python' / 'exports.map'}"]


class BuildError(RuntimeError):
    pass


def torch_pin() -> str:
    """The pinned torch version, e.g. "2.11.0", from requirements/torch.txt."""
    path = ROOT / "requirements" / "torch.txt"
    pins = [
        m.group(1)
        for line in path.read_text().splitlines()
        if (m := re.fullmatch(r"\s*torch\s*==\s*([0-9]+\.[0-9]+\.[0-9]+)\s*", line.split("#")[0]))
    ]
    if len(pins) != 1:
        raise BuildError(f"{path}: expected exactly one 'torch==X.Y.Z' line, found {len(pins)}")
    return pins[0]


def torch_requirement() -> str:
    """torch==2.11.0 -> torch==2.11.*: any patch release of the pinned minor shares its ABI."""
    major, minor, _ = torch_pin().split(".")
    return f"torch=={major}.{minor}.*"


class Torch:
    """The torch install that both products compile and link against."""

    def __init__(self) -> None:
        self.site = self._find_site()
        self.root = self.site / "torch"
        self.cuda = self.site / "nvidia" / "cu13"
        for path in (self.root / "include", self.root / "lib", self.root / "version.py",
                     self.cuda / "include", self.cuda / "lib" / "libcudart.so.13"):
            if not path.exists():
                raise BuildError(f"torch site {self.site} lacks {path.relative_to(self.site)}")
        text = (self.root / "version.py").read_text()
        self.version = re.search(r"__version__\s*=\s*'([^']+)'", text).group(1)
        self.cuda_version = re.search(r"cuda\s*:[^=]*=\s*'([^']+)'", text).group(1)
        if self.version.split("+")[0] != torch_pin():
            raise BuildError(
                f"torch at {self.root} is {self.version}, but requirements/torch.txt pins "
                f"{torch_pin()}: point DG_TORCH_SITE at a site-packages with torch=={torch_pin()}"
            )
        self.cuda_host_include = self._find_cuda_host_include()

    @staticmethod
    def _find_site() -> Path:
        if env := os.environ.get("DG_TORCH_SITE"):
            site = Path(env).resolve()
            if not (site / "torch" / "__init__.py").is_file():
                raise BuildError(f"DG_TORCH_SITE={env} holds no torch/ package")
            return site
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            raise BuildError(
                f"no torch to compile against: {sys.executable} cannot import torch. Set "
                f"DG_TORCH_SITE to a site-packages holding torch=={torch_pin()} (and nvidia/cu13)."
            )
        return Path(spec.origin).resolve().parent.parent

    def _find_cuda_host_include(self) -> list[Path]:
        """Host code needs cuda_runtime.h's crt/ headers, which torch's CUDA wheels lack:
        take them from a CUDA toolkit of the same version as torch's CUDA."""
        dirs = [self.cuda / "include"]
        if (self.cuda / "include" / "crt" / "host_config.h").is_file():
            return dirs
        homes = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH")] + ["/usr/local/cuda"]
        for home in filter(None, homes):
            include = Path(home) / "include"
            if (include / "crt" / "host_config.h").is_file():
                found = re.search(r"#define CUDA_VERSION (\d+)", (include / "cuda.h").read_text())
                version = f"{int(found.group(1)) // 1000}.{int(found.group(1)) % 1000 // 10}"
                if version != self.cuda_version:
                    raise BuildError(f"{include} is CUDA {version}; torch {self.version} needs {self.cuda_version}")
                return dirs + [include]
        raise BuildError(
            f"CUDA {self.cuda_version} host headers (crt/host_config.h) not found in "
            f"{self.cuda / 'include'} or $CUDA_HOME/include: set CUDA_HOME to a CUDA "
            f"{self.cuda_version} toolkit, or install nvidia-cuda-crt=={self.cuda_version}.* beside torch"
        )

    def include_flags(self, system: bool = False) -> list[str]:
        """-I flags, or -isystem ones (no warnings from torch's and CUDA's headers)."""
        dirs = [self.root / "include", self.root / "include" / "torch" / "csrc" / "api" / "include"]
        return [f"{'-isystem' if system else '-I'}{d}" for d in dirs + self.cuda_host_include]

    def link_flags(self, libraries: list[str]) -> list[str]:
        # libstdc++ first: libtorch.so and libtorch_cpu.so export their own (static,
        # older) copies of std::filesystem, and libtorch.so's remove_all() jumps to NULL.
        # Listing libstdc++ first puts it ahead of torch's libraries in the lookup order
        # of a normal import (not when torch was loaded RTLD_GLOBAL: csrc/jit therefore
        # avoids std::filesystem altogether).
        return [f"-L{self.root / 'lib'}", f"-L{self.cuda / 'lib'}", "-lstdc++"] + [f"-l{lib}" for lib in libraries]


def cxx() -> list[str]:
    return shlex.split(os.environ.get("CXX", "c++"))


def compiler_version() -> str:
    return subprocess.run(cxx() + ["--version"], check=True, capture_output=True, text=True).stdout


def default_jobs() -> int:
    return int(os.environ.get("DG_BUILD_JOBS", min(2, os.cpu_count() or 1)))


def compile_objects(jobs: list[tuple[Path, Path, list[str]]], parallel: int) -> None:
    """Compile (source, object, flags) triples, `parallel` at a time; each object is
    written under a temporary name and renamed, so an interrupted build leaves none."""

    def one(source: Path, obj: Path, flags: list[str]) -> None:
        obj.parent.mkdir(parents=True, exist_ok=True)
        temp = obj.with_name(f"{obj.name}.tmp{os.getpid()}")
        command = cxx() + flags + ["-c", str(source), "-o", str(temp)]
        sys.stdout.write(f"[deep_gemm] compiling {source.relative_to(ROOT)}\n")  # one write: jobs run in threads
        sys.stdout.flush()
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"compiling {source} failed:\n{shlex.join(command)}\n{result.stdout}{result.stderr}")
        os.replace(temp, obj)

    with concurrent.futures.ThreadPoolExecutor(max(1, parallel)) as pool:
        for future in [pool.submit(one, *job) for job in jobs]:
            future.result()


def link(objects: list[Path], output: Path, flags: list[str]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.with_name(f"{output.name}.tmp{os.getpid()}")
    command = cxx() + ["-shared", "-o", str(temp)] + [str(o) for o in objects] + flags
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"linking {output.name} failed:\n{shlex.join(command)}\n{result.stdout}{result.stderr}")
    os.replace(temp, output)


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]


def object_plan(sources: list[Path], flags: list[str], objdir: Path, header_dirs: list[Path],
                torch: Torch) -> dict[Path, Path]:
    """Where each source's object goes: objdir/<stem>-<key>.o. The key covers the source,
    every header in header_dirs (any may reach any TU), the flags, the compiler version
    and torch's version, so editing one file recompiles only what it can affect."""
    headers = sorted(h for d in header_dirs for h in d.glob("*.h*"))
    base = digest(compiler_version(), torch.version, *flags,
                  *(f"{h.relative_to(CSRC)}\0" + h.read_text() for h in headers))
    return {s: objdir / f"{s.stem}-{digest(base, s.read_text())}.o" for s in sources}


def missing(plan: dict[Path, Path], flags: list[str]) -> list[tuple[Path, Path, list[str]]]:
    return [(s, o, flags) for s, o in plan.items() if not o.is_file()]


def runtime_plan(torch: Torch) -> tuple[dict[Path, Path], list[str]]:
    dirs = [CSRC / d for d in RUNTIME_DIRS]
    sources = sorted(p for d in dirs for p in d.glob("*.cpp"))
    flags = COMMON_FLAGS + torch.include_flags()
    return object_plan(sources, flags, ROOT / "build" / "runtime" / "obj", dirs, torch), flags


def binding_plan(torch: Torch, python_include: Path) -> tuple[dict[Path, Path], list[str]]:
    """_C's objects for the CPython whose headers are in python_include (the flags carry
    that path, so each CPython gets its own keys in the one object directory)."""
    flags = COMMON_FLAGS + BINDING_FLAGS + PYBIND11_ABI_FLAGS + torch.include_flags(system=True) + [f"-I{python_include}"]
    sources = sorted((CSRC / "python").glob("*.cpp"))
    return object_plan(sources, flags, ROOT / "build" / "binding" / "obj",
                       [CSRC / "python"] + [CSRC / d for d in RUNTIME_DIRS], torch), flags


def prebuild_pythons(requires_python: str | None) -> list[Path]:
    """Include dirs of the interpreters named by $DG_PREBUILD_PYTHONS (paths or globs) that
    Requires-Python admits. cibuildwheel builds one CPython after another; compiling every
    _C object up front, in parallel with the runtime, keeps both cores busy (the fleet's
    before-all does this), and each per-CPython build then only links."""
    from packaging.specifiers import SpecifierSet  # a build requirement of every front-end

    spec = SpecifierSet(requires_python or "")
    includes = []
    for pattern in shlex.split(os.environ.get("DG_PREBUILD_PYTHONS", "")):
        for python in sorted(Path("/").glob(pattern.lstrip("/"))) if pattern.startswith("/") else [Path(pattern)]:
            probe = subprocess.run([str(python), "-c", "import sys, sysconfig; print(sysconfig.get_paths()['include']);"
                                    " print('%d.%d.%d' % sys.version_info[:3])"], capture_output=True, text=True)
            if probe.returncode != 0:
                raise BuildError(f"DG_PREBUILD_PYTHONS: cannot run {python}: {probe.stderr.strip()}")
            include, version = probe.stdout.split()
            if version in spec:
                includes.append(Path(include))
    return includes


def build_runtime_library(parallel: int, also: list[tuple[Path, Path, list[str]]] = ()) -> Path:
    """build/runtime/<hash>/libdeep_gemm_runtime.so, built unless present; the hash
    covers its objects' keys (see object_plan) and the link flags. `also`: more compile
    jobs to run in the same pool."""
    torch = Torch()
    plan, flags = runtime_plan(torch)
    compile_objects(missing(plan, flags) + list(also), parallel)
    objects = list(plan.values())
    link_flags = torch.link_flags(["torch_cpu", "torch_cuda", "c10", "c10_cuda", ":libcudart.so.13", "dl"])
    # --no-undefined proves the runtime Python-free; the RUNPATH finds torch's libs from
    # site-packages/deep_gemm/ (they are loaded already once torch is imported).
    link_flags = ["-Wl,--no-undefined", "-Wl,--as-needed", f"-Wl,-soname,{RUNTIME_NAME}",
                  "-Wl,-rpath,$ORIGIN/../torch/lib:$ORIGIN/../nvidia/cu13/lib"] + link_flags
    output = ROOT / "build" / "runtime" / digest(*map(str, objects), *link_flags) / RUNTIME_NAME
    if output.is_file():
        print(f"[deep_gemm] reusing {output.relative_to(ROOT)}", flush=True)
        return output
    link(objects, output, link_flags)
    print(f"[deep_gemm] built {output.relative_to(ROOT)}", flush=True)
    return output


class BuildRuntime(Command):
    description = "build libdeep_gemm_runtime.so once into build/runtime/<hash>/ (reused by every _C build)"
    user_options = [("parallel=", "j", "compile jobs (default $DG_BUILD_JOBS or 2)")]

    def initialize_options(self) -> None:
        self.parallel = None

    def finalize_options(self) -> None:
        self.parallel = int(self.parallel) if self.parallel else default_jobs()

    def run(self) -> None:
        torch = Torch()
        prebuilt = []
        for include in prebuild_pythons(self.distribution.python_requires):
            plan, flags = binding_plan(torch, include)
            prebuilt += missing(plan, flags)
        build_runtime_library(self.parallel, prebuilt)


class BuildExt(build_ext):
    """Builds `_C` for the running interpreter against the prebuilt runtime."""

    def run(self) -> None:
        parallel = int(self.parallel) if self.parallel else default_jobs()
        self._runtime = build_runtime_library(parallel)
        self._parallel = parallel
        super().run()  # builds into build_lib; with --inplace, then copies _C to the source tree
        if self.inplace:
            package_dir = Path(self.get_finalized_command("build_py").get_package_dir("deep_gemm"))
            shutil.copy2(self._runtime, package_dir / RUNTIME_NAME)

    def build_extension(self, ext: Extension) -> None:
        torch = Torch()
        output = Path(self.get_ext_fullpath(ext.name))
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self._runtime, output.parent / RUNTIME_NAME)
        python_include = Path(sysconfig.get_paths()["include"])
        if not (python_include / "Python.h").is_file():
            raise BuildError(f"{sys.executable} has no Python.h in {python_include}: install its development headers")
        plan, flags = binding_plan(torch, python_include)
        compile_objects(missing(plan, flags), self._parallel)
        objects = list(plan.values())
        # libtorch_python.so is the one CPython-specific torch library we need, yet
        # linking the pin's copy serves every CPython: its SONAME is the same in the
        # torch wheel of each CPython, and `import torch` (deep_gemm imports it first)
        # has already loaded the installed torch's copy, which the dynamic linker then
        # reuses by SONAME. The symbols _C takes from it are C++ functions of torch's
        # own API, identical across those wheels; all Python C-API use is compiled here
        # against the target interpreter's headers.
        link(
            objects,
            output,
            BINDING_LINK_FLAGS
            + [f"-L{self._runtime.parent}", "-ldeep_gemm_runtime",
               "-Wl,-rpath,$ORIGIN:$ORIGIN/../torch/lib:$ORIGIN/../nvidia/cu13/lib"]
            + torch.link_flags(["torch_python", "torch_cpu", "c10"]),
        )


setup(
    packages=find_packages(include=["deep_gemm", "deep_gemm.*"]),
    package_data={"deep_gemm": ["include/**/*"]},
    install_requires=[torch_requirement()],
    # The sources are listed for sdists; BuildExt compiles them through binding_plan.
    ext_modules=[Extension("deep_gemm._C", sources=sorted(str(p.relative_to(ROOT)) for p in (CSRC / "python").glob("*.cpp")))],
    cmdclass={"build_runtime": BuildRuntime, "build_ext": BuildExt},
    zip_safe=False,
)
