"""The ABI guard (wheelfuse.symbols, check-wheel --symbols-from) on real ELF files: tiny
providers and consumers compiled with gcc here, and the fleet's real merged wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wheelfuse.check import check_wheel
from wheelfuse.symbols import Libraries, SymbolsError, check_symbols, read_elf

REPO = Path(__file__).resolve().parents[2]

CONSUMER_C = """
#include <stdio.h>
extern int prov_a(void);
extern int prov_b(void);
extern int ver_f(void);
extern void *PyLong_FromLong(long);  /* the interpreter's: never reported */
__attribute__((weak)) extern int maybe(void);
int use(void) { printf("x"); PyLong_FromLong(1); return prov_a() + prov_b() + ver_f() + (maybe ? maybe() : 0); }
"""


def gcc(work: Path, out: str, source: str, *args: str) -> Path:
    src = work / (out + ".c")
    src.write_text(source)
    target = work / out
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", str(src), "-o", str(target), *args], check=True)
    return target


def provider(work: Path, *, with_b: bool = True, b_hidden: bool = False, version: str = "VER_2") -> Path:
    """libprov.so (prov_a, prov_b) and libver.so (ver_f@version), in their own directory."""
    work.mkdir()
    b = ""
    if with_b:
        b = ('__attribute__((visibility("hidden"))) ' if b_hidden else "") + "int prov_b(void) { return 2; }"
    gcc(work, "libprov.so", f"int prov_a(void) {{ return 1; }}\n{b}\n", "-Wl,-soname,libprov.so")
    script = work / "ver.map"
    script.write_text(f"{version} {{ global: ver_f; local: *; }};\n")
    gcc(work, "libver.so", "int ver_f(void) { return 3; }\n", "-Wl,-soname,libver.so",
        f"-Wl,--version-script={script}")  # fmt: skip
    return work


@pytest.fixture(scope="module")
def elves(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    base = tmp_path_factory.mktemp("symbols")
    new = provider(base / "new")
    consumer = gcc(base, "_ext.so", CONSUMER_C, f"-L{new}", "-lprov", "-lver", "-Wl,--no-as-needed")
    return {
        "new": new,
        "consumer": consumer,
        "old_without_b": provider(base / "old_without_b", with_b=False),
        "old_b_hidden": provider(base / "old_b_hidden", b_hidden=True),
        "old_version": provider(base / "old_version", version="VER_1"),
    }


def missing(elves, directory: str) -> list[tuple[str, str | None]]:
    found = check_symbols({"pkg/_ext.so": elves["consumer"].read_bytes()}, [elves[directory]])
    return sorted((m.symbol, m.version) for m in found)


def test_the_consumer_really_imports_what_the_test_is_about(elves):
    elf = read_elf(elves["consumer"].read_bytes(), "consumer")
    assert {"libprov.so", "libver.so"} <= set(elf.needed)
    imports = {name: (version, lib) for name, version, lib in elf.imports}
    assert imports["ver_f"] == ("VER_2", "libver.so")
    assert imports["prov_b"] == (None, None) and "PyLong_FromLong" in imports
    assert "maybe" not in imports  # weak undefined


def test_the_libraries_it_was_built_against_satisfy_it(elves):
    assert missing(elves, "new") == []


def test_a_missing_symbol_is_reported(elves):
    assert missing(elves, "old_without_b") == [("prov_b", None)]
    (m,) = check_symbols({"pkg/_ext.so": elves["consumer"].read_bytes()}, [elves["old_without_b"]])
    assert m.path == "pkg/_ext.so" and "prov_b" in m.message and "libprov.so" in m.message


def test_a_hidden_symbol_is_not_exported(elves):
    assert missing(elves, "old_b_hidden") == [("prov_b", None)]


def test_a_symbol_of_another_version_is_missing(elves):
    assert missing(elves, "old_version") == [("ver_f", "VER_2")]


def test_the_wheels_own_library_provides_symbols(elves, tmp_path):
    # the consumer finds prov_b in a library of the wheel (as _C does in libdeep_gemm_runtime.so)
    own = gcc(tmp_path, "libprov.so", "int prov_a(void) { return 1; }\nint prov_b(void) { return 2; }\n",
              "-Wl,-soname,libprov.so")  # fmt: skip
    binaries = {"pkg/_ext.so": elves["consumer"].read_bytes(), "pkg/libprov.so": own.read_bytes()}
    assert check_symbols(binaries, [elves["old_without_b"]]) == []


def test_an_elf_needing_nothing_from_the_directories_is_not_checked(elves, tmp_path):
    lonely = gcc(tmp_path, "_lonely.so", "extern int nowhere(void); int f(void) { return nowhere(); }\n")
    assert check_symbols({"pkg/_lonely.so": lonely.read_bytes()}, [elves["old_without_b"]]) == []


def test_bad_directories_fail_closed(tmp_path):
    with pytest.raises(SymbolsError, match="not a directory"):
        Libraries([tmp_path / "absent"])
    (tmp_path / "libfake.so").write_text("not an ELF")
    with pytest.raises(SymbolsError, match="holds no ELF shared library"):
        Libraries([tmp_path])


def test_check_wheel_fails_a_wheel_whose_module_needs_a_missing_symbol(elves, tmp_path, kit):
    abi = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    suffix = f".cpython-{sys.version_info[0]}{sys.version_info[1]}-x86_64-linux-gnu.so"
    wheel = kit.make_wheel(tmp_path, f"{abi}-{abi}-manylinux_2_17_x86_64",
                       {"tinyext/__init__.py": b"", f"tinyext/_ext{suffix}": elves["consumer"].read_bytes()})  # fmt: skip
    spec = f"=={sys.version_info[0]}.{sys.version_info[1]}.*"
    ext = ("libprov.so", "libver.so")
    ok = check_wheel(wheel, python_range=spec, allowed_external=ext, symbols_from=[elves["new"]])
    assert not [p for p in ok.problems if p.check == "symbols"]
    bad = check_wheel(wheel, python_range=spec, allowed_external=ext, symbols_from=[elves["old_without_b"]])
    (problem,) = [p for p in bad.problems if p.check == "symbols"]
    assert problem.path == f"tinyext/_ext{suffix}" and "prov_b" in problem.message and not bad.ok


def fleet_wheel() -> Path:
    wheels = sorted((REPO / "dist").glob("deep_gemm-*.whl"))
    if len(wheels) != 1:
        pytest.skip("no merged wheel in dist/: run `make wheels` first")
    return wheels[0]


def torch_lib() -> Path:
    lib = Path("/var/cache/deep-gemm-fleet/torch-site/torch/lib")
    if not (lib / "libc10.so").is_file():
        pytest.skip(f"{lib}: no torch site (the fleet's fetch stage makes it)")
    return lib


@pytest.mark.slow  # real wheels and torch libraries: ~16 s each
def test_the_real_c_extension_against_a_torch_that_lacks_its_symbols(tmp_path):
    """The fleet's _C against libc10.so / libtorch_python.so that export nothing it needs."""
    wheel, lib = fleet_wheel(), torch_lib()
    assert not [p for p in check_wheel(wheel, symbols_from=[lib]).problems if p.check == "symbols"]
    stripped = tmp_path / "lib"
    stripped.mkdir()
    for name in ("libc10.so", "libtorch_python.so"):
        gcc(stripped, name, "int unrelated(void) { return 0; }\n", f"-Wl,-soname,{name}")
    for other in lib.iterdir():  # the rest of that torch as it is
        if not (stripped / other.name).exists() and other.is_file():
            (stripped / other.name).symlink_to(other)
    problems = [p for p in check_wheel(wheel, symbols_from=[stripped]).problems if p.check == "symbols"]
    assert {Path(p.path).name.split(".")[0] for p in problems} >= {"_C"}
    assert any("c10" in p.message and "libc10.so" in p.message for p in problems)


def torch_sites() -> dict[str, Path]:
    """torch version -> a fetched fleet torch site (torch/lib, nvidia/cu13/lib)."""
    sites = {}
    for version_py in sorted(Path("/var/cache/deep-gemm-fleet").glob("torch-site-*/torch/version.py")):
        text = version_py.read_text()
        version = text.split("__version__ = '", 1)[1].split("'", 1)[0].split("+")[0]
        sites[version] = version_py.parents[1]
    return sites


@pytest.mark.slow  # real wheels and torch libraries: ~16 s each
def test_a_wheel_built_for_one_torch_fails_against_anothers_libraries():
    """torch 2.11.0's fat wheel against torch 2.15.0's libraries: the runtime library needs c10
    symbols 2.15 no longer exports (upstream DeepGEMM's issue 330, caught before install)."""
    sites = torch_sites()
    if "2.15.0" not in sites or "2.11.0" not in sites:
        pytest.skip("needs the fleet's torch 2.11.0 and 2.15.0 sites (make wheels; make wheels-torch TORCH=2.15.0)")
    wheel = fleet_wheel()
    dirs = {v: [s / "torch" / "lib", s / "nvidia" / "cu13" / "lib"] for v, s in sites.items()}
    assert not [p for p in check_wheel(wheel, symbols_from=dirs["2.11.0"]).problems if p.check == "symbols"]
    problems = [p for p in check_wheel(wheel, symbols_from=dirs["2.15.0"]).problems if p.check == "symbols"]
    assert problems and all(p.path == "deep_gemm/libdeep_gemm_runtime.so" for p in problems)
    assert all("_ZN3c10" in p.message and "libc10.so" in p.message for p in problems)
