"""Fixtures for the wheelfuse tests: wheels the tests build themselves.

- `native_wheels`: a tiny C extension (`tinyext._spam`) compiled with gcc against the
  headers of every CPython found under /root/.pyenv/versions (3.9-3.13), each wrapped into
  its own manylinux_2_17_x86_64 wheel. Built once per session.
- `windows_wheels`: the same project as win_amd64 wheels whose `.pyd` is a real PE DLL,
  cross-compiled with x86_64-w64-mingw32-gcc (Debian's gcc-mingw-w64-x86-64).
- `make_wheel` / `write_zip`: builders for synthetic wheels and hand-made hostile archives.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest

PYENV = Path("/root/.pyenv/versions")
NAME = "tinyext"
VERSION = "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
LINUX_PLATFORM = "manylinux_2_17_x86_64"
REQUIRES_PYTHON = ">=3.10,<3.14"

SPAM_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *hello(PyObject *self, PyObject *args) {
    return PyUnicode_FromFormat("spam %d.%d", PY_MAJOR_VERSION, PY_MINOR_VERSION);
}
static PyMethodDef methods[] = {{"hello", hello, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef spam = {PyModuleDef_HEAD_INIT, "_spam", NULL, -1, methods};
PyMODINIT_FUNC PyInit__spam(void) { return PyModule_Create(&spam); }
"""
# No Python.h for Windows here: a DLL exporting the init symbol is what check-wheel verifies.
SPAM_PE_C = "__declspec(dllexport) void *PyInit__spam(void) { return 0; }\n"
INIT_PY = b"from ._spam import hello\n"


def metadata(
    requires_python: str = REQUIRES_PYTHON, name: str = NAME, version: str = VERSION
) -> bytes:
    # Complete enough for PyPI's upload checks (`twine check --strict`).
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: A tiny extension\n"
        f"Requires-Python: {requires_python}\nDescription-Content-Type: text/markdown\n\n"
        f"# {name}\n\nA tiny C extension for the wheelfuse tests.\n"
    ).encode()


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_file(tags: Iterable[str], root_is_purelib: str = "false") -> bytes:
    lines = [
        "Wheel-Version: 1.0",
        "Generator: wheelfuse-tests",
        f"Root-Is-Purelib: {root_is_purelib}",
    ]
    lines += [f"Tag: {t}" for t in tags]
    return ("\n".join(lines) + "\n\n").encode()


def expand(tag: str) -> list[str]:
    interpreters, abis, platforms = (part.split(".") for part in tag.split("-"))
    return [f"{i}-{a}-{p}" for i in interpreters for a in abis for p in platforms]


def make_wheel(
    out_dir: Path,
    tag: str,
    files: dict[str, bytes],
    *,
    name: str = NAME,
    version: str = VERSION,
    meta: bytes | None = None,
    wheel_tags: Iterable[str] | None = None,
    executable: Iterable[str] = (),
    dist_info_extra: dict[str, bytes] | None = None,
) -> Path:
    """A valid wheel holding `files` plus a correct .dist-info; arguments bend one rule."""
    dist_info = f"{name}-{version}.dist-info"
    entries = dict(files)
    entries[f"{dist_info}/METADATA"] = (
        meta if meta is not None else metadata(name=name, version=version)
    )
    entries[f"{dist_info}/WHEEL"] = wheel_file(
        wheel_tags if wheel_tags is not None else expand(tag)
    )
    entries.update({f"{dist_info}/{k}": v for k, v in (dist_info_extra or {}).items()})
    record_path = f"{dist_info}/RECORD"
    record = "".join(record_line(p, d) + "\n" for p, d in entries.items()) + f"{record_path},,\n"
    entries[record_path] = record.encode()
    path = out_dir / f"{name}-{version}-{tag}.whl"
    write_zip(path, [(p, d, 0o755 if p in set(executable) else 0o644) for p, d in entries.items()])
    return path


def write_zip(path: Path, entries: Iterable[tuple[str | zipfile.ZipInfo, bytes, int]]) -> Path:
    """Write members as given (duplicates, odd names and modes included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = (
                name
                if isinstance(name, zipfile.ZipInfo)
                else zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            )
            info.create_system = 3
            info.external_attr = (mode if mode > 0o7777 else 0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names are written on purpose
                zf.writestr(info, data)
    path.write_bytes(buffer.getvalue())
    return path


def python_info(python: Path) -> dict[str, str]:
    code = (
        "import json, sys, sysconfig;"
        " print(json.dumps({'include': sysconfig.get_paths()['include'],"
        " 'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'),"
        " 'abi': 'cp%d%d' % sys.version_info[:2]}))"
    )
    return json.loads(
        subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    )


def local_pythons() -> dict[str, Path]:
    """abi tag -> interpreter, for every CPython 3.9-3.13 under /root/.pyenv/versions."""
    found: dict[str, Path] = {}
    for minor in range(9, 14):
        for candidate in sorted(PYENV.glob(f"3.{minor}.*/bin/python3.{minor}")):
            found[f"cp3{minor}"] = candidate
    return found


@pytest.fixture(scope="session")
def pythons() -> dict[str, Path]:
    found = local_pythons()
    if not found:
        pytest.skip("no CPython under /root/.pyenv/versions")
    return found


@pytest.fixture(scope="session")
def built_extensions(
    tmp_path_factory: pytest.TempPathFactory, pythons: dict[str, Path]
) -> dict[str, tuple[str, bytes]]:
    """abi -> (EXT_SUFFIX, compiled _spam bytes), one gcc run per interpreter."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    work = tmp_path_factory.mktemp("ext")
    (work / "spam.c").write_text(SPAM_C)
    out: dict[str, tuple[str, bytes]] = {}
    for abi, python in pythons.items():
        info = python_info(python)
        target = work / f"_spam{info['ext_suffix']}"
        subprocess.run(
            [
                "gcc",
                "-shared",
                "-fPIC",
                "-O1",
                "-I",
                info["include"],
                str(work / "spam.c"),
                "-o",
                str(target),
            ],
            check=True,
        )
        out[abi] = (info["ext_suffix"], target.read_bytes())
    return out


@pytest.fixture(scope="session")
def native_wheels(
    tmp_path_factory: pytest.TempPathFactory, built_extensions: dict[str, tuple[str, bytes]]
) -> dict[str, Path]:
    """abi -> one per-CPython manylinux wheel of tinyext."""
    out_dir = tmp_path_factory.mktemp("native")
    wheels = {}
    for abi, (suffix, binary) in built_extensions.items():
        files = {
            f"{NAME}/__init__.py": INIT_PY,
            f"{NAME}/data.txt": b"shared payload\n",
            f"{NAME}/_spam{suffix}": binary,
        }
        wheels[abi] = make_wheel(
            out_dir, f"{abi}-{abi}-{LINUX_PLATFORM}", files, executable=[f"{NAME}/_spam{suffix}"]
        )
    return wheels


@pytest.fixture(scope="session")
def windows_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    compiler = shutil.which("x86_64-w64-mingw32-gcc")
    if compiler is None:
        pytest.skip("x86_64-w64-mingw32-gcc not installed (apt-get install gcc-mingw-w64-x86-64)")
    work = tmp_path_factory.mktemp("pe")
    (work / "spam.c").write_text(SPAM_PE_C)
    subprocess.run(
        [compiler, "-shared", "-O1", str(work / "spam.c"), "-o", str(work / "spam.pyd")], check=True
    )
    pyd = (work / "spam.pyd").read_bytes()
    wheels = {}
    for abi in ("cp310", "cp311", "cp312", "cp313"):
        files = {f"{NAME}/__init__.py": INIT_PY, f"{NAME}/_spam.{abi}-win_amd64.pyd": pyd}
        wheels[abi] = make_wheel(work, f"{abi}-{abi}-win_amd64", files)
    return wheels


def synthetic_files(abi: str, platform_suffix: str = "x86_64-linux-gnu") -> dict[str, bytes]:
    """A per-CPython file set with fake binaries, for merge tests that do not load ELF."""
    return {
        f"{NAME}/__init__.py": INIT_PY,
        f"{NAME}/data.txt": b"shared payload\n",
        f"{NAME}/_spam.cpython-{abi[2:]}-{platform_suffix}.so": f"binary for {abi}".encode(),
    }


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The builders above, for tests (test modules cannot import a conftest reliably)."""
    return SimpleNamespace(
        INIT_PY=INIT_PY,
        make_wheel=make_wheel,
        metadata=metadata,
        record_line=record_line,
        synthetic_files=synthetic_files,
        write_zip=write_zip,
    )
