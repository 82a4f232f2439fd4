"""Build deep_gemm: a Python-free runtime library, once, and a thin `_C` per CPython.

Products, both inside the `deep_gemm` package:
  libdeep_gemm_runtime.so  csrc/jit + csrc/apis + csrc/jit_kernels over libtorch. It
                           never sees Python headers, so one build serves every CPython;
                           it is built into build/runtime/<hash>/ and reused by every
                           later build of the same inputs.
  _C<EXT_SUFFIX>           csrc/python/module.cpp (CPython's C API + torch's Tensor caster),
                           compiled with the TARGET interpreter's headers and linked
                           against the runtime.

Both compile against ONE torch, the pinned one (requirements/torch.txt): the torch of
$DG_TORCH_SITE (a site-packages holding torch/ and nvidia/cu13/), or else the build
interpreter's torch, located without importing it. The target interpreter needs no
torch. Parallel compiles: -j N, or $DG_BUILD_JOBS (default 2).

Dev build for the tests:  .venv/bin/python setup.py build_ext --inplace
_C for other CPythons:    python setup.py build_c --python "/usr/bin/python3.10 /usr/bin/python3.13" --output-dir out/
                          (out/ gets libdeep_gemm_runtime.so and one _C<EXT_SUFFIX> per --python;
                          with no --python, the runtime only. The fleet's before-all runs this.)
Per-Python wheel:         DG_TORCH_SITE=/path/to/site-packages uv build --wheel --python 3.10
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Command, Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import SetupError

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
RUNTIME_DIRS = ("jit", "apis", "jit_kernels")
RUNTIME_NAME = "libdeep_gemm_runtime.so"

COMMON_FLAGS = ["-O2", "-fPIC", "-D_GLIBCXX_USE_CXX11_ABI=1", "-Wall"]
# _C (csrc/python/module.cpp) is built once per CPython and ships once per CPython in
# the fat wheel, so it is built for size: -Os (after COMMON_FLAGS' -O2, so it wins; it
# only converts arguments), every function in its own section for --gc-sections, and
# only PyInit__C exported (exports.map; also keeps its copies of std:: templates local).
BINDING_FLAGS = ["-Os", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-ffunction-sections",
                 "-fdata-sections"]
BINDING_LINK_FLAGS = ["-Wl,--gc-sections", "-Wl,--strip-all", "-Wl,--as-needed",
                      f"-Wl,--version-script={CSRC / 'python' / 'exports.map'}"]


class BuildError(SetupError):
    """setuptools prints these as one `error: ...` line, without a traceback."""


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


def search(pattern: str, path: Path) -> str:
    """The first group of *pattern*'s first match in the file *path*."""
    found = re.search(pattern, path.read_text())
    if found is None:
        raise BuildError(f"{path}: no line matches {pattern!r}")
    return found.group(1)


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
        version_py = self.root / "version.py"
        self.version = search(r"__version__\s*=\s*'([^']+)'", version_py)
        self.cuda_version = search(r"cuda\s*:[^=]*=\s*'([^']+)'", version_py)
        if self.version.split("+")[0] != torch_pin():
            raise BuildError(
                f"torch at {self.root} is {self.version}, but requirements/torch.txt pins "
                f"{torch_pin()}: point DG_TORCH_SITE at a site-packages with torch=={torch_pin()}"
            )
        self.cuda_host_include = self._find_cuda_host_include()
        # the C++ standard torch's headers need (torch 2.15's TorchConfig.cmake asks for C++20)
        config = self.root / "share" / "cmake" / "Torch" / "TorchConfig.cmake"
        self.std_flag = "-std=c++20" if config.is_file() and "cxx_std_20" in config.read_text() else "-std=c++17"

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
                number = int(search(r"#define CUDA_VERSION (\d+)", include / "cuda.h"))
                version = f"{number // 1000}.{number % 1000 // 10}"
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

    def prefix_map_flags(self) -> list[str]:
        """Paths in the objects (torch's and our assertions' __FILE__) relative to the checkout
        and to the torch site, so the bytes do not depend on where either lies (the last
        matching map wins: the site may lie inside the checkout, as .venv does)."""
        return [f"-ffile-prefix-map={ROOT}/=", f"-ffile-prefix-map={self.site}/="]

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
    flags = COMMON_FLAGS + [torch.std_flag] + torch.prefix_map_flags() + torch.include_flags()
    return object_plan(sources, flags, ROOT / "build" / "runtime" / "obj", dirs, torch), flags


@dataclasses.dataclass(frozen=True)
class Target:
    """The CPython a _C is built for: all it contributes is its headers and EXT_SUFFIX."""

    python: str
    version: str
    include: Path
    ext_suffix: str

    PROBE = ("import json, sys, sysconfig; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
             "'include': sysconfig.get_paths()['include'], 'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX')}))")

    @classmethod
    def probe(cls, python: str) -> Target:
        """Ask the interpreter *python* (a path or a name on PATH); it needs no torch."""
        try:
            result = subprocess.run([python, "-c", cls.PROBE], capture_output=True, text=True)
        except OSError as exc:
            raise BuildError(f"--python {python}: cannot run it ({exc.strerror})") from None
        if result.returncode != 0:
            raise BuildError(f"--python {python}: it failed to report its headers:\n{result.stderr.strip()}")
        found = json.loads(result.stdout)
        target = cls(python, found["version"], Path(found["include"]), found["ext_suffix"])
        if not (target.include / "Python.h").is_file():
            raise BuildError(f"{python} (CPython {target.version}) has no Python.h in {target.include}: "
                             "install its development headers")
        return target

    def check_supported(self, requires_python: str | None) -> None:
        from packaging.specifiers import SpecifierSet  # a build requirement of every front-end

        if self.version not in SpecifierSet(requires_python or ""):
            raise BuildError(f"{self.python} is CPython {self.version}, outside deep_gemm's Requires-Python "
                             f"{requires_python}")


def binding_plan(torch: Torch, target: Target) -> tuple[dict[Path, Path], list[str]]:
    """_C's objects for *target* (the flags carry its include path, so each CPython gets
    its own keys in the one object directory)."""
    flags = (COMMON_FLAGS + [torch.std_flag] + BINDING_FLAGS + torch.prefix_map_flags()
             + torch.include_flags(system=True) + [f"-I{target.include}"])
    sources = sorted((CSRC / "python").glob("*.cpp"))
    return object_plan(sources, flags, ROOT / "build" / "binding" / "obj",
                       [CSRC / "python"] + [CSRC / d for d in RUNTIME_DIRS], torch), flags


def build_products(torch: Torch, targets: list[Target], parallel: int) -> tuple[Path, dict[Target, Path]]:
    """The runtime library and one _C per target, compiled in one pool (both cores busy
    while cibuildwheel's before-all builds every CPython's _C along with the runtime).
    Returns the runtime's path, build/runtime/<hash>/libdeep_gemm_runtime.so, and each
    target's _C, build/binding/<hash>/_C<EXT_SUFFIX>; the hashes cover the objects' keys
    (see object_plan) and the link flags, so an unchanged product is reused as it is."""
    plan, flags = runtime_plan(torch)
    link_flags = torch.link_flags(["torch_cpu", "torch_cuda", "c10", "c10_cuda", ":libcudart.so.13", "dl"])
    # --no-undefined proves the runtime Python-free; the RUNPATH finds torch's libs from
    # site-packages/deep_gemm/ (they are loaded already once torch is imported).
    link_flags = ["-Wl,--no-undefined", "-Wl,--as-needed", f"-Wl,-soname,{RUNTIME_NAME}",
                  "-Wl,-rpath,$ORIGIN/../torch/lib:$ORIGIN/../nvidia/cu13/lib"] + link_flags
    runtime = ROOT / "build" / "runtime" / digest(*map(str, plan.values()), *link_flags) / RUNTIME_NAME
    # libtorch_python.so is the one CPython-specific torch library _C needs, yet linking
    # the pin's copy serves every CPython: its SONAME is the same in the torch wheel of
    # each CPython, and `import torch` (deep_gemm imports it first) has already loaded
    # the installed torch's copy, which the dynamic linker then reuses by SONAME. The
    # symbols _C takes from it are C++ functions of torch's own API, identical across
    # those wheels; all Python C-API use is compiled against the target's headers.
    c_link_flags = (BINDING_LINK_FLAGS
                    + [f"-L{runtime.parent}", "-ldeep_gemm_runtime",
                       "-Wl,-rpath,$ORIGIN:$ORIGIN/../torch/lib:$ORIGIN/../nvidia/cu13/lib"]
                    + torch.link_flags(["torch_python", "torch_cpu", "c10"]))
    bindings = {}
    jobs = [] if runtime.is_file() else missing(plan, flags)
    for target in targets:
        c_plan, c_flags = binding_plan(torch, target)
        objects = list(c_plan.values())
        output = ROOT / "build" / "binding" / digest(*map(str, objects), *c_link_flags) / f"_C{target.ext_suffix}"
        bindings[target] = (objects, output)
        if not output.is_file():
            jobs += missing(c_plan, c_flags)
    compile_objects(jobs, parallel)
    if runtime.is_file():
        print(f"[deep_gemm] reusing {runtime.relative_to(ROOT)}", flush=True)
    else:
        link(list(plan.values()), runtime, link_flags)
        print(f"[deep_gemm] built {runtime.relative_to(ROOT)}", flush=True)
    built = {}
    for target, (objects, output) in bindings.items():
        if not output.is_file():
            link(objects, output, c_link_flags)
        built[target] = output
    return runtime, built


def install_file(source: Path, dest: Path) -> None:
    """Copy under a temporary name, then rename: a reader never sees half a library."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    shutil.copy2(source, temp)
    os.replace(temp, dest)


def parallel_option(value: str | None) -> int:
    return int(value) if value else default_jobs()


class BuildC(Command):
    description = ("build libdeep_gemm_runtime.so and a _C for each --python (a CPython that needs "
                   "only its headers, no torch) into --output-dir")
    user_options = [
        ("python=", None, "target interpreters, space-separated paths or names (none: the runtime only)"),
        ("output-dir=", "o", "where the runtime and each _C<EXT_SUFFIX> go (default build/c)"),
        ("parallel=", "j", "compile jobs (default $DG_BUILD_JOBS or 2)"),
    ]

    def initialize_options(self) -> None:
        self.python: str | None = None
        self.output_dir: str | None = None
        self.parallel: str | None = None

    def finalize_options(self) -> None:
        self.targets = [Target.probe(python) for python in shlex.split(self.python or "")]
        for target in self.targets:
            target.check_supported(self.distribution.python_requires)
        self.output = Path(self.output_dir or ROOT / "build" / "c").resolve()
        self.jobs = parallel_option(self.parallel)

    def run(self) -> None:
        runtime, bindings = build_products(Torch(), self.targets, self.jobs)
        install_file(runtime, self.output / RUNTIME_NAME)
        for target, binding in bindings.items():
            install_file(binding, self.output / binding.name)
            print(f"[deep_gemm] {self.output / binding.name} (CPython {target.version})", flush=True)


class BuildExt(build_ext):
    """Builds `_C` for the running interpreter (as build_c does) and puts the runtime beside it."""

    def run(self) -> None:
        self._parallel = parallel_option(self.parallel)
        super().run()  # builds into build_lib; with --inplace, then copies _C to the source tree
        if self.inplace:
            package_dir = Path(self.get_finalized_command("build_py").get_package_dir("deep_gemm"))
            install_file(self._runtime, package_dir / RUNTIME_NAME)

    def build_extension(self, ext: Extension) -> None:
        output = Path(self.get_ext_fullpath(ext.name))
        target = Target.probe(sys.executable)
        self._runtime, bindings = build_products(Torch(), [target], self._parallel)
        install_file(self._runtime, output.parent / RUNTIME_NAME)
        install_file(bindings[target], output)


setup(
    packages=find_packages(include=["deep_gemm", "deep_gemm.*"]),
    package_data={"deep_gemm": ["include/**/*"]},
    install_requires=[torch_requirement()],
    # BuildExt compiles _C's sources through binding_plan (MANIFEST.in puts all of csrc/ in the sdist).
    ext_modules=[Extension(
        "deep_gemm._C", sources=sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("python/*.cpp")))
    ],
    cmdclass={"build_c": BuildC, "build_ext": BuildExt},
    zip_safe=False,
)
