"""tools/cpython/sid_python.py: CPython 3.14 / 3.15 from Debian sid's binary packages.

The plan tests need nothing; the interpreter tests run the real relocated interpreters, made
once by `make test-deps` (a few seconds and ~50 MB of .debs each), and skip, saying how to make
them, when the cache has none.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sid_python as sp

SCRIPT = Path(sp.__file__).resolve()


def test_plan_pins_the_debian_versions_and_follows_them(tmp_path):
    plan = sp.make_plan("3.14", tmp_path)
    assert plan.full_version == "3.14.10"
    assert "python3.14=3.14.10-1" in plan.packages and "libpython3.14-dev=3.14.10-1" in plan.packages
    assert plan.prefix == tmp_path / plan.key / "cp314-cp314"
    assert sp.make_plan("3.14", tmp_path).key == plan.key
    assert sp.make_plan("3.15", tmp_path).key != plan.key


def test_unknown_version_refused(tmp_path):
    with pytest.raises(sp.SidPythonError, match="pinned for 3.14, 3.15 only"):
        sp.make_plan("3.13", tmp_path)


def test_nothing_cached_in_an_empty_cache(tmp_path):
    assert not sp.cached(sp.make_plan("3.14", tmp_path))


def made(version: str) -> sp.Plan:
    plan = sp.make_plan(version)
    if not sp.cached(plan):
        pytest.skip(f"CPython {version} from sid is not made: `python {SCRIPT} --version {version} --print-prefix`")
    return plan


PROBE = r"""
import json, sys, sysconfig, ssl, sqlite3, ctypes, subprocess
maps = open('/proc/self/maps').read().split('\n')
libs = sorted({line.split()[-1] for line in maps if '.so' in line})
child = subprocess.run([sys.executable, '-c', 'import sys; print(sys.version_info[:2])'], capture_output=True, text=True)
print(json.dumps({
    'version': sys.version.split()[0], 'executable': sys.executable, 'prefix': sys.prefix,
    'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), 'include': sysconfig.get_paths()['include'],
    'libs': libs, 'child': child.stdout.strip(), 'child_rc': child.returncode,
}))
"""


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_the_interpreter_runs_on_sids_glibc_only(version):
    plan = made(version)
    python = plan.prefix / "bin" / "python"
    info = json.loads(subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True).stdout)
    assert info["version"] == plan.full_version
    assert info["executable"] == str(python) and info["prefix"] == str(plan.prefix)
    assert info["ext_suffix"] == f".cpython-{version.replace('.', '')}-x86_64-linux-gnu.so"
    # every shared object in the process is sid's (glibc, libssl, libstdc++...), none the host's
    glibc = [lib for lib in info["libs"] if Path(lib).name.startswith(("libc.so", "libm.so", "ld-linux", "libssl"))]
    assert glibc and all(lib.startswith(str(plan.prefix)) for lib in glibc), glibc
    # sys.executable re-runs (pip, venv, build all do)
    assert info["child_rc"] == 0 and info["child"] == str(tuple(int(x) for x in version.split(".")))


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_headers_compile_an_extension_with_the_hosts_compiler(version, tmp_path):
    """_C is compiled by the host's (bookworm's) gcc against sid's headers; -I<include> suffices."""
    plan = made(version)
    include = plan.prefix / "usr" / "include" / f"python{version}"
    src = tmp_path / "m.c"
    src.write_text('#include <Python.h>\nstatic struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "m"};\n'
                   "PyMODINIT_FUNC PyInit_m(void) { return PyModuleDef_Init(&d); }\n")  # fmt: skip
    out = tmp_path / f"m.cpython-{version.replace('.', '')}-x86_64-linux-gnu.so"
    subprocess.run(["gcc", "-shared", "-fPIC", f"-I{include}", str(src), "-o", str(out)], check=True)
    python = plan.prefix / "bin" / "python"
    result = subprocess.run([str(python), "-c", "import m; print(m.__name__)"], cwd=tmp_path,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "m", result.stderr


@pytest.mark.parametrize("version", ["3.14", "3.15"])
def test_pip_and_the_manylinux_layout(version):
    plan = made(version)
    for name in ("python", f"python{version}", "pip"):
        assert (plan.prefix / "bin" / name).exists(), name
    pip = subprocess.run([str(plan.prefix / "bin" / "pip"), "--version"], capture_output=True, text=True)
    assert pip.returncode == 0 and f"python {version}" in pip.stdout
