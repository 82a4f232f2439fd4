"""tools/cpython/build_cpython.py: the cache key, the layout, and (when cached) the built interpreters.

Nothing here builds CPython (many minutes on this machine); the tests of real interpreters run
only against builds already in the cache and skip, saying how to build one, when it is empty.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import build_cpython as bc
import pytest

SCRIPT = Path(bc.__file__).resolve()
SHA_A = "a" * 64
SHA_B = "b" * 64


# --------------------------------------------------------------------------- the key


def test_key_is_stable_for_the_same_inputs():
    flags = bc.configure_flags(False)
    assert bc.cache_key(SHA_A, flags, bc.script_sha256()) == bc.cache_key(SHA_A, list(flags), bc.script_sha256())
    assert bc.make_plan("3.14", False).key == bc.make_plan("3.14", False).key


def test_key_changes_with_the_tarball():
    flags = bc.configure_flags(False)
    assert bc.cache_key(SHA_A, flags, "s") != bc.cache_key(SHA_B, flags, "s")


def test_key_changes_with_the_configure_flags():
    assert bc.cache_key(SHA_A, bc.configure_flags(False), "s") != bc.cache_key(SHA_A, bc.configure_flags(True), "s")
    assert bc.cache_key(SHA_A, ["--x"], "s") != bc.cache_key(SHA_A, ["--x", "--y"], "s")
    # order is part of a configure line; the key does not paper over it
    assert bc.cache_key(SHA_A, ["--x", "--y"], "s") != bc.cache_key(SHA_A, ["--y", "--x"], "s")


def test_key_changes_with_the_script(tmp_path):
    copy = tmp_path / "build_cpython.py"
    shutil.copyfile(SCRIPT, copy)
    same = bc.script_sha256(copy)
    assert same == bc.script_sha256()
    copy.write_bytes(SCRIPT.read_bytes() + b"\n# one more line\n")
    assert bc.script_sha256(copy) != same
    flags = bc.configure_flags(False)
    assert bc.cache_key(SHA_A, flags, bc.script_sha256(copy)) != bc.cache_key(SHA_A, flags, same)


def test_key_ignores_the_cache_root(tmp_path):
    a = bc.make_plan("3.14", True, root=tmp_path / "a")
    b = bc.make_plan("3.14", True, root=tmp_path / "b")
    assert a.key == b.key
    assert a.prefix != b.prefix
    assert a.prefix == tmp_path / "a" / a.key / "cp314-cp314t"


def test_key_covers_exactly_the_documented_inputs():
    plan = bc.make_plan("3.14", False)
    inputs = bc.key_inputs(plan.source.sha256, plan.flags, bc.script_sha256())
    assert set(inputs) == {"format", "tarball_sha256", "configure_flags", "script_sha256"}
    assert plan.inputs()["key"] == plan.key
    assert plan.inputs()["tarball_sha256"] == bc.SOURCES["3.14"].sha256


def test_gil_and_free_threaded_builds_never_share_a_directory():
    gil, ft = bc.make_plan("3.14", False), bc.make_plan("3.14", True)
    assert gil.key != ft.key
    assert "--disable-gil" in ft.flags and "--disable-gil" not in gil.flags
    assert gil.prefix.name == "cp314-cp314" and ft.prefix.name == "cp314-cp314t"
    assert gil.exe_name == "python3.14" and ft.exe_name == "python3.14t"


def test_cache_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEP_GEMM_CPYTHON_CACHE", str(tmp_path))
    assert bc.cache_root() == tmp_path
    monkeypatch.delenv("DEEP_GEMM_CPYTHON_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bc.cache_root() == tmp_path / "xdg" / "deep_gemm-fleet" / "cpython"


def test_no_pgo_lto_and_ensurepip_installs():
    for ft in (False, True):
        flags = bc.configure_flags(ft)
        assert "--with-ensurepip=install" in flags
        assert not any(f.startswith(("--enable-optimizations", "--with-lto", "--prefix")) for f in flags)


# --------------------------------------------------------------------------- names and pins


def test_abi_dir_follows_cibuildwheel():
    """The directory names are the paths cibuildwheel looks for in a manylinux image."""
    tomllib = pytest.importorskip("tomllib")
    try:
        import cibuildwheel
    except ImportError:
        pytest.skip("cibuildwheel is not installed in this environment (it is in the dev .venv)")
    table = Path(cibuildwheel.__file__).parent / "resources" / "build-platforms.toml"
    data = tomllib.loads(table.read_text())
    paths = {c["identifier"]: c["path_str"] for c in data["linux"]["python_configurations"]}
    assert paths["cp314-manylinux_x86_64"] == "/opt/python/" + bc.abi_dir("3.14", False)
    assert paths["cp314t-manylinux_x86_64"] == "/opt/python/" + bc.abi_dir("3.14", True)
    assert bc.abi_dir("3.14", True) == "cp314-cp314t"


def test_pins_are_well_formed():
    for version, src in bc.SOURCES.items():
        assert src.version.startswith(version + ".")
        assert len(src.sha256) == 64 and int(src.sha256, 16) >= 0
        assert src.orig_name == f"python{version}_{src.version}.orig.tar.xz"
        assert src.pool_url.endswith(f"/pool/main/p/python{version}/{src.orig_name}")
        assert src.top_dir == f"Python-{src.version}"


def test_unknown_version_is_refused():
    with pytest.raises(bc.BuildError, match="no pinned source"):
        bc.make_plan("3.99", False)


# --------------------------------------------------------------------------- fetching (no network)


def test_a_local_tarball_must_match_the_pin(tmp_path):
    bogus = tmp_path / "python3.14_3.14.10.orig.tar.xz"
    bogus.write_bytes(b"not cpython")
    with pytest.raises(bc.BuildError, match="does not match the pin"):
        bc.ensure_tarball(bc.SOURCES["3.14"], tmp_path / "root", bogus)
    assert not (tmp_path / "root" / "src" / bogus.name).exists()


def test_a_corrupt_cached_tarball_is_not_trusted(tmp_path, monkeypatch):
    src = bc.SOURCES["3.14"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / src.orig_name).write_bytes(b"truncated")
    calls = []

    def refuse(*a, **k):
        calls.append(a)
        raise bc.BuildError("offline")

    monkeypatch.setattr(bc, "fetch_with_apt", refuse)
    monkeypatch.setattr(bc, "fetch_direct", refuse)
    with pytest.raises(bc.BuildError, match="--tarball PATH"):
        bc.ensure_tarball(src, tmp_path)
    assert len(calls) == 2  # both fetchers tried, after the corrupt copy was dropped
    assert not (tmp_path / "src" / src.orig_name).exists()


def test_apt_configuration_is_project_local(tmp_path):
    opts = bc.apt_config(tmp_path, "sid")
    values = [o for o in opts if o != "-o"]
    listed = (tmp_path / "apt" / "sid" / "sources.list").read_text()
    assert listed.startswith("deb-src [signed-by=") and " sid main" in listed
    for v in values:
        key, _, path = v.partition("=")
        if key.startswith("Dir::") and path.startswith("/") and key != "Dir::State::status":
            assert path.startswith(str(tmp_path)) or path == "/nonexistent", v
    assert not any("/etc/" in v for v in values)


# --------------------------------------------------------------------------- layout helpers


def test_finish_layout_adds_python_and_python3(tmp_path):
    plan = bc.make_plan("3.14", True, root=tmp_path)
    bindir = tmp_path / "p" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3.14t").write_text("")
    with pytest.raises(bc.BuildError, match="pip3: not installed"):
        bc.finish_layout(tmp_path / "p", plan)
    (bindir / "pip3").write_text("")
    bc.finish_layout(tmp_path / "p", plan)
    assert (bindir / "python").readlink() == Path("python3")
    assert (bindir / "python3").readlink() == Path("python3.14t")
    assert (bindir / "pip").readlink() == Path("pip3")
    (bindir / "python3.14t").unlink()
    with pytest.raises(bc.BuildError, match="not installed"):
        bc.finish_layout(tmp_path / "p", plan)


def test_missing_optional_modules_parser(tmp_path):
    log = tmp_path / "build.log"
    log.write_text(
        "x\nThe necessary bits to build these optional modules were not found:\n"
        "_tkinter                  _dbm\n"
        "To find the necessary bits, look in configure.ac and config.log.\n"
    )
    assert bc.missing_optional_modules(log) == ["_dbm", "_tkinter"]


def test_check_on_an_empty_cache_says_not_built(tmp_path):
    env = {"DEEP_GEMM_CPYTHON_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, str(SCRIPT), "--version", "3.14", "--free-threaded", "--check"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "not built" in r.stderr
    assert not any(tmp_path.iterdir())  # --check builds and fetches nothing


# --------------------------------------------------------------------------- real builds, when cached

BUILDS = [(v, ft) for v in sorted(bc.SOURCES) for ft in (False, True)]


@pytest.mark.parametrize(("version", "free_threaded"), BUILDS, ids=[bc.abi_dir(v, ft) for v, ft in BUILDS])
def test_cached_interpreter_reports_its_abi(version, free_threaded):
    plan = bc.make_plan(version, free_threaded)
    if bc.cached(plan) is None:
        pytest.skip(
            f"no cached build of {plan.prefix.name} (key {plan.key}) under {plan.root}; build it with "
            f"`python tools/cpython/build_cpython.py --version {version}"
            f"{' --free-threaded' if free_threaded else ''} --print-prefix` (2 to 4 minutes here with make -j2; too long for a unit test)"
        )
    code = (
        "import sys, sysconfig, json; print(json.dumps([sys.abiflags, sysconfig.get_config_var('Py_GIL_DISABLED'),"
        " sysconfig.get_config_var('EXT_SUFFIX'), sys.version_info[:2], getattr(sys, '_is_gil_enabled', lambda: True)()]))"
    )
    for exe in (plan.python, plan.prefix / "bin" / plan.exe_name):
        out = subprocess.run([str(exe), "-I", "-c", code], capture_output=True, text=True, check=True).stdout
        abiflags, gil_disabled, ext_suffix, ver, gil_enabled = json.loads(out)
        assert ver == [int(x) for x in version.split(".")]
        tag = version.replace(".", "")
        if free_threaded:
            assert (abiflags, gil_disabled, gil_enabled) == ("t", 1, False)
            assert ext_suffix == f".cpython-{tag}t-x86_64-linux-gnu.so"
        else:
            assert (abiflags, gil_disabled, gil_enabled) == ("", 0, True)
            assert ext_suffix == f".cpython-{tag}-x86_64-linux-gnu.so"
    # the names cibuildwheel runs: bin/python and bin/pip
    pip = subprocess.run([str(plan.prefix / "bin" / "pip"), "--version"], capture_output=True, text=True, check=True)
    assert f"(python {version})" in pip.stdout
    # --print-prefix on a cached build prints exactly the prefix and builds nothing
    r = subprocess.run([sys.executable, str(SCRIPT), "--version", version, *(["--free-threaded"] * free_threaded),
                        "--print-prefix"], capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert r.stdout == f"{plan.prefix}\n"


def test_prune_keeps_current_keys_only(tmp_path):
    current = bc.make_plan("3.14", True, root=tmp_path)
    (current.prefix / "bin").mkdir(parents=True)
    stale = tmp_path / ("0" * 20)
    leftover = tmp_path / (current.key + ".build-x1")
    other = tmp_path / "src"
    for d in (stale, leftover, other):
        d.mkdir()
    removed = bc.prune(tmp_path)
    assert sorted(removed) == sorted([stale, leftover])
    assert current.prefix.is_dir() and other.is_dir()


def fake_builds(monkeypatch, tmp_path):
    """ensure() with the fetch, the apt step and the compile replaced; returns the build calls."""
    calls = []

    def build(plan, tarball, *, jobs):
        calls.append(plan.prefix)
        (plan.prefix / "bin").mkdir(parents=True)
        (plan.prefix / bc.MARKER).write_text(json.dumps({"key": plan.key, "times_s": {"total": 1.0},
                                                          "missing_optional_modules": []}))  # fmt: skip
        return json.loads((plan.prefix / bc.MARKER).read_text())

    monkeypatch.setattr(bc, "ensure_tarball", lambda src, root, local=None: tmp_path / "t.tar.xz")
    monkeypatch.setattr(bc, "ensure_build_deps", lambda: None)
    monkeypatch.setattr(bc, "build", build)
    return calls


def test_ensure_builds_once_then_uses_the_cache(monkeypatch, tmp_path):
    calls = fake_builds(monkeypatch, tmp_path)
    monkeypatch.setattr(bc, "probe", lambda plan, python=None: {"abiflags": "t"})
    plan = bc.make_plan("3.14", True, root=tmp_path / "cache")
    first = bc.ensure(plan)
    second = bc.ensure(plan)
    assert calls == [plan.prefix]
    assert first["key"] == second["key"] == plan.key


def test_ensure_rebuilds_a_cached_build_that_no_longer_runs(monkeypatch, tmp_path):
    calls = fake_builds(monkeypatch, tmp_path)
    plan = bc.make_plan("3.14", False, root=tmp_path / "cache")
    (plan.prefix / "bin").mkdir(parents=True)
    (plan.prefix / bc.MARKER).write_text("{}")

    def broken_then_ok(p, python=None):
        if not calls:
            raise bc.BuildError("bin/python: missing")
        return {}

    monkeypatch.setattr(bc, "probe", broken_then_ok)
    # the real build() replaces a stale prefix; the fake one needs it gone first
    real_build = bc.build

    def build(p, tarball, *, jobs):
        shutil.rmtree(p.prefix)
        return real_build(p, tarball, jobs=jobs)

    monkeypatch.setattr(bc, "build", build)
    bc.ensure(plan)
    assert calls == [plan.prefix]


def test_a_marker_alone_is_not_a_valid_build(tmp_path):
    plan = bc.make_plan("3.14", False, root=tmp_path)
    (plan.prefix).mkdir(parents=True)
    (plan.prefix / bc.MARKER).write_text("{}")
    assert bc.cached(plan) is None  # no bin/python: the smoke test fails
