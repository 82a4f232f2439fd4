#!/usr/bin/env python3
"""Build CPython from Debian's copy of the upstream tarball, cached, with or without the GIL.

    python tools/cpython/build_cpython.py --version 3.14 --print-prefix
    python tools/cpython/build_cpython.py --version 3.14 --free-threaded --print-prefix
    python tools/cpython/build_cpython.py --version 3.14 --free-threaded --check   # 0 if cached, 1 if not
    python tools/cpython/build_cpython.py --version 3.14 --inputs                  # what the key hashes

`--print-prefix` prints ONE line on stdout, the install prefix (building first when the cache has no
valid build); everything else goes to stderr. The prefix is laid out like a manylinux
``/opt/python/<dir>``: ``bin/python`` (cibuildwheel checks `which python` == ``<prefix>/bin/python``),
``bin/python3``, ``bin/python3.14[t]``, ``bin/pip`` (cibuildwheel checks `which pip` too).

Source: the upstream tarball as Debian ships it (``python3.14_3.14.N.orig.tar.xz``; Debian's
``.orig.tar.xz.asc`` is upstream's own signature, so the bytes are python.org's
``Python-3.14.N.tar.xz``). It is fetched with ``apt-get source --download-only`` through a
PROJECT-LOCAL apt configuration (nothing under /etc is read or written: its own sources.list, lists
and cache under the cache root), which authenticates the file through the suite's signed InRelease;
failing that, straight from the Debian pool. Either way the file must match the sha256 pinned in
SOURCES below, or nothing is built. ``--tarball PATH`` takes a local copy (same pin).

Build: configure + ``nice -n 10 make -j2`` (2 shared cores) + ``make install``, no PGO/LTO, static
libpython like manylinux (see README.md for why), ``--with-ensurepip=install``, the test modules
left out. It installs into a staging DESTDIR and is renamed into the cache only after a smoke test,
so a half-built interpreter is never found. One build at a time (a lock under the cache root).

Cache: ``<cache root>/<key>/<cpXY-cpXY[t]>/`` where key = sha256 of (tarball sha256, configure
flags, this script's bytes). The cache root is ``$DEEP_GEMM_CPYTHON_CACHE`` or
``~/.cache/deep_gemm-fleet/cpython``. ``<key>/build.json`` records the inputs and the step times.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()

FORMAT = 1
DEFAULT_JOBS = 2
NICE = 10
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclasses.dataclass(frozen=True)
class Source:
    """One pinned upstream tarball, as Debian's source archive carries it."""

    version: str  # upstream, e.g. 3.14.10
    debian_package: str  # source package, e.g. python3.14
    debian_version: str  # e.g. 3.14.10-1
    suite: str  # a suite whose Sources lists debian_version
    sha256: str  # of the .orig.tar.xz (from the suite's signed Sources index)
    size: int

    @property
    def orig_name(self) -> str:
        return f"{self.debian_package}_{self.version}.orig.tar.xz"

    @property
    def pool_url(self) -> str:
        pkg = self.debian_package
        return f"{DEBIAN_MIRROR}/pool/main/{pkg[0]}/{pkg}/{self.orig_name}"

    @property
    def top_dir(self) -> str:
        return f"Python-{self.version}"


# The pins. To move to a newer patch release: `apt-cache showsrc python3.14` (with the deb-src
# line of apt_config() below) prints Version and the Checksums-Sha256 of the .orig.tar.xz.
# 3.13 is here because its tarball is the one this machine's mirror serves (trixie): it proves the
# whole path, --disable-gil included, where 3.14's source cannot be fetched (see README.md).
SOURCES: dict[str, Source] = {
    "3.14": Source(
        version="3.14.10",
        debian_package="python3.14",
        debian_version="3.14.10-1",
        suite="sid",
        sha256="de414a57119abef52784d8993e341d53aed635fc2b05c2607d9f98a2c5b72032",
        size=24240392,
    ),
    "3.13": Source(
        version="3.13.5",
        debian_package="python3.13",
        debian_version="3.13.5-2+deb13u5",
        suite="trixie",
        sha256="93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640",
        size=22856016,
    ),
}

# Flags every build gets (the prefix is added per build and is NOT part of the key: it is
# derived from the key). No --enable-optimizations / --with-lto: they cost minutes here.
# The bundled libmpdecimal, always: bookworm has no libmpdec-dev, and a host that has it would
# otherwise link a libmpdec3 that the build image does not carry.
BASE_CONFIGURE_FLAGS: tuple[str, ...] = (
    "--with-ensurepip=install",
    "--disable-test-modules",
    "--with-system-libmpdec=no",
)
FREE_THREADED_FLAGS: tuple[str, ...] = ("--disable-gil",)

# What a valid build must import (the build image's smoke list, plus the brief's four).
SMOKE_IMPORTS = ("ssl", "hashlib", "ctypes", "sqlite3", "bz2", "lzma", "zlib", "uuid", "readline",
                 "decimal", "pyexpat", "curses", "dbm.gnu", "venv", "ensurepip")  # fmt: skip
SMOKE_IMPORTS_314 = ("compression.zstd",)

# Debian packages the build needs (headers); installed with apt-get when missing.
BUILD_DEPS = ("build-essential", "pkg-config", "libssl-dev", "zlib1g-dev", "libffi-dev", "libbz2-dev",
              "liblzma-dev", "libsqlite3-dev", "libreadline-dev", "libncurses-dev", "uuid-dev",
              "libgdbm-dev", "libgdbm-compat-dev", "libexpat1-dev", "libzstd-dev")  # fmt: skip

MARKER = ".deep_gemm_cpython.json"


class BuildError(Exception):
    """Anything that stops a build; the message says what to do."""


def log(msg: str) -> None:
    print(f"build_cpython: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs and key


def source_for(version: str) -> Source:
    try:
        return SOURCES[version]
    except KeyError:
        raise BuildError(f"--version {version}: no pinned source (known: {', '.join(sorted(SOURCES))})") from None


def abi_dir(version: str, free_threaded: bool) -> str:
    """cibuildwheel's manylinux directory name: cp314-cp314, cp314-cp314t (cibuildwheel 4.3.5,
    resources/build-platforms.toml: cp314t-manylinux_x86_64 -> /opt/python/cp314-cp314t)."""
    tag = "cp" + version.replace(".", "")
    return f"{tag}-{tag}{'t' if free_threaded else ''}"


def configure_flags(free_threaded: bool) -> list[str]:
    return list(BASE_CONFIGURE_FLAGS) + (list(FREE_THREADED_FLAGS) if free_threaded else [])


def script_sha256(script: Path = SCRIPT) -> str:
    return hashlib.sha256(script.read_bytes()).hexdigest()


def key_inputs(tarball_sha256: str, flags: list[str], script_hash: str) -> dict:
    return {"format": FORMAT, "tarball_sha256": tarball_sha256, "configure_flags": list(flags),
            "script_sha256": script_hash}  # fmt: skip


def cache_key(tarball_sha256: str, flags: list[str], script_hash: str) -> str:
    blob = json.dumps(key_inputs(tarball_sha256, flags, script_hash), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_root() -> Path:
    env = os.environ.get("DEEP_GEMM_CPYTHON_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deep_gemm-fleet" / "cpython"


@dataclasses.dataclass(frozen=True)
class Plan:
    version: str
    free_threaded: bool
    source: Source
    flags: list[str]
    key: str
    root: Path

    @property
    def key_dir(self) -> Path:
        return self.root / self.key

    @property
    def prefix(self) -> Path:
        return self.key_dir / abi_dir(self.version, self.free_threaded)

    @property
    def exe_name(self) -> str:
        return f"python{self.version}{'t' if self.free_threaded else ''}"

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def inputs(self) -> dict:
        return {
            **key_inputs(self.source.sha256, self.flags, script_sha256()),
            "key": self.key,
            "version": self.source.version,
            "free_threaded": self.free_threaded,
            "abi_dir": abi_dir(self.version, self.free_threaded),
            "debian": {"package": self.source.debian_package, "version": self.source.debian_version,
                       "suite": self.source.suite, "file": self.source.orig_name},  # fmt: skip
            "prefix": str(self.prefix),
        }


def make_plan(version: str, free_threaded: bool, root: Path | None = None) -> Plan:
    src = source_for(version)
    flags = configure_flags(free_threaded)
    key = cache_key(src.sha256, flags, script_sha256())
    return Plan(version, free_threaded, src, flags, key, root or cache_root())


# --------------------------------------------------------------------------- validity


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def smoke_code(plan: Plan) -> str:
    imports = SMOKE_IMPORTS + (SMOKE_IMPORTS_314 if version_tuple(plan.version) >= (3, 14) else ())
    return (
        "import sys, sysconfig, importlib\n"
        f"[importlib.import_module(m) for m in {list(imports)!r}]\n"
        "import json\n"
        "print(json.dumps({'version': sys.version.split()[0], 'abiflags': sys.abiflags,"
        " 'Py_GIL_DISABLED': sysconfig.get_config_var('Py_GIL_DISABLED'),"
        " 'Py_ENABLE_SHARED': sysconfig.get_config_var('Py_ENABLE_SHARED'),"
        " 'EXT_SUFFIX': sysconfig.get_config_var('EXT_SUFFIX'), 'prefix': sys.prefix}))\n"
    )


def probe(plan: Plan, python: Path | None = None) -> dict:
    """Run the smoke test with *python* (default: the cached one); raise BuildError on failure."""
    exe = python or plan.python
    if not exe.exists():
        raise BuildError(f"{exe}: missing")
    r = subprocess.run([str(exe), "-I", "-c", smoke_code(plan)], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # fmt: skip
    if r.returncode:
        raise BuildError(f"{exe}: smoke test failed: {r.stderr.strip()[-2000:]}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    want_t = "t" if plan.free_threaded else ""
    if info["abiflags"] != want_t or bool(info["Py_GIL_DISABLED"]) != plan.free_threaded:
        raise BuildError(f"{exe}: wrong ABI: abiflags={info['abiflags']!r} Py_GIL_DISABLED={info['Py_GIL_DISABLED']}")
    if info["version"] != plan.source.version:
        raise BuildError(f"{exe}: is {info['version']}, expected {plan.source.version}")
    for name in ("pip", "python", "python3"):
        if not (plan.prefix / "bin" / name).exists():
            raise BuildError(f"{plan.prefix}/bin/{name}: missing (cibuildwheel needs bin/python and bin/pip)")
    return info


def cached(plan: Plan) -> dict | None:
    """The recorded build when the cache holds a valid one, else None."""
    marker = plan.prefix / MARKER
    if not marker.is_file():
        return None
    try:
        probe(plan)
    except BuildError as exc:
        log(f"cached build at {plan.prefix} is not usable ({exc}); rebuilding")
        return None
    return json.loads(marker.read_text())


# --------------------------------------------------------------------------- fetching


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def apt_config(root: Path, suite: str) -> list[str]:
    """apt-get options for a private deb-src configuration under *root* (nothing in /etc)."""
    base = root / "apt" / suite
    for sub in ("lists/partial", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sources = base / "sources.list"
    sources.write_text(f"deb-src [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n")
    return [
        "-o", f"Dir::Etc::sourcelist={sources}",
        "-o", "Dir::Etc::sourceparts=/nonexistent",
        "-o", f"Dir::State::Lists={base / 'lists'}",
        "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "Dir::State::status=/dev/null",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def fetch_with_apt(src: Source, root: Path, dest_dir: Path) -> Path:
    opts = apt_config(root, src.suite)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".apt-") as tmp:
        for cmd in (["apt-get", "-q", *opts, "update"],
                    ["apt-get", "-q", *opts, "source", "--download-only", "--only-source",
                     f"{src.debian_package}={src.debian_version}"]):  # fmt: skip
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if r.returncode:
                raise BuildError(f"`{' '.join(cmd[:2] + cmd[-2:])}` failed: {(r.stderr or r.stdout).strip()[-800:]}")
        got = Path(tmp) / src.orig_name
        if not got.is_file():
            raise BuildError(f"apt-get source left no {src.orig_name}")
        final = dest_dir / src.orig_name
        os.replace(got, final)
        return final


def fetch_direct(src: Source, dest_dir: Path) -> Path:
    part = dest_dir / (src.orig_name + f".part-{os.getpid()}")
    try:
        with urllib.request.urlopen(src.pool_url, timeout=120) as resp, part.open("wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
        final = dest_dir / src.orig_name
        os.replace(part, final)
        return final
    except OSError as exc:
        raise BuildError(f"{src.pool_url}: {exc}") from None
    finally:
        part.unlink(missing_ok=True)


def check_tarball(src: Source, path: Path) -> None:
    got = sha256_file(path)
    if got != src.sha256:
        raise BuildError(
            f"{path}: sha256 {got} does not match the pin {src.sha256} for {src.orig_name}; "
            "if this is a newer release on purpose, update SOURCES in tools/cpython/build_cpython.py"
        )


def ensure_tarball(src: Source, root: Path, local: Path | None = None) -> Path:
    """The verified tarball in <root>/src/, fetched when absent."""
    dest_dir = root / "src"
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / src.orig_name
    if final.is_file():
        try:
            check_tarball(src, final)
            return final
        except BuildError as exc:
            log(f"{exc}; fetching it again")
            final.unlink()
    if local is not None:
        check_tarball(src, local)
        shutil.copyfile(local, final)
        return final
    errors = []
    for name, fetch in (("apt-get source", lambda: fetch_with_apt(src, root, dest_dir)),
                        ("Debian pool", lambda: fetch_direct(src, dest_dir))):  # fmt: skip
        log(f"fetching {src.orig_name} ({src.size / 1e6:.1f} MB) via {name}")
        try:
            path = fetch()
            check_tarball(src, path)
            return path
        except BuildError as exc:
            errors.append(f"  {name}: {exc}")
            (dest_dir / src.orig_name).unlink(missing_ok=True)
    raise BuildError(
        f"could not fetch {src.orig_name} (Debian {src.suite} {src.debian_package} {src.debian_version}):\n"
        + "\n".join(errors)
        + f"\nPass a local copy with --tarball PATH (python.org's Python-{src.version}.tar.xz is the same file), "
        "or move the pin in SOURCES to a version the mirror serves."
    )


# --------------------------------------------------------------------------- building


def missing_build_deps() -> list[str]:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *BUILD_DEPS],
                       capture_output=True, text=True)  # fmt: skip
    have = {line.split()[0] for line in r.stdout.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in BUILD_DEPS if p not in have]


def ensure_build_deps() -> None:
    if shutil.which("dpkg-query") is None:
        log("not a Debian host: make sure the headers of " + ", ".join(BUILD_DEPS) + " are installed")
        return
    missing = missing_build_deps()
    if not missing:
        return
    if os.geteuid() != 0:
        raise BuildError(f"missing build dependencies: {' '.join(missing)} (apt-get install -y {' '.join(missing)})")
    log(f"installing build dependencies: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    if r.returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    if r.returncode:
        raise BuildError(f"apt-get install {' '.join(missing)} failed")


def run_logged(cmd: list[str], *, cwd: Path, logfile: Path, env: dict[str, str]) -> float:
    printable = " ".join(shlex.quote(c) for c in cmd)
    log(f"+ {printable}")
    t = time.monotonic()
    with logfile.open("ab") as f:
        f.write(f"\n+ {printable}\n".encode())
        f.flush()
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    dt = time.monotonic() - t
    log(f"  {dt:.0f}s")
    if r.returncode:
        tail = logfile.read_text(errors="replace").splitlines()[-40:]
        raise BuildError(f"failed (exit {r.returncode}) after {dt:.0f}s: {printable}\n--- {logfile} ---\n" + "\n".join(tail))
    return dt


def missing_optional_modules(logfile: Path) -> list[str]:
    """Modules `make` reported it could not build (e.g. _tkinter without tk-dev)."""
    text = logfile.read_text(errors="replace")
    out: list[str] = []
    for m in re.finditer(r"(?:necessary bits to build these optional modules were not found|"
                         r"Failed to build these modules|could not be imported):\n((?:[ \w.]+\n)+)", text):  # fmt: skip
        out += m.group(1).split()
    return sorted(set(out))


def finish_layout(prefix: Path, plan: Plan) -> None:
    """manylinux-style names: bin/python and bin/pip (cibuildwheel checks both on PATH).

    `make install` makes python3 and python3.X (python3.Xt and a python3.X link when
    free-threaded); its ensurepip step runs without --default-pip, so there is pip3 but no pip.
    """
    bindir = prefix / "bin"
    for exe in (plan.exe_name, "pip3"):
        if not (bindir / exe).exists():
            raise BuildError(f"{bindir}/{exe}: not installed")
    for name, target in (("python", "python3"), ("python3", plan.exe_name), ("pip", "pip3")):
        link = bindir / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(target)


def build(plan: Plan, tarball: Path, *, jobs: int) -> dict:
    root = plan.root
    staging = Path(tempfile.mkdtemp(prefix=f"{plan.key}.build-", dir=root))
    logfile = plan.key_dir / "build.log"
    plan.key_dir.mkdir(parents=True, exist_ok=True)
    logfile.write_text(f"# build of {plan.prefix} ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})\n")
    times: dict[str, float] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CFLAGS", "LDFLAGS", "CPPFLAGS"))}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
    nice = ["nice", "-n", str(NICE)]
    t0 = time.monotonic()
    try:
        t = time.monotonic()
        with tarfile.open(tarball) as tf:
            tf.extractall(staging, filter="data")
        src = staging / plan.source.top_dir
        times["extract"] = time.monotonic() - t
        times["configure"] = run_logged([*nice, "./configure", f"--prefix={plan.prefix}", *plan.flags],
                                        cwd=src, logfile=logfile, env=env)  # fmt: skip
        times["make"] = run_logged([*nice, "make", f"-j{jobs}"], cwd=src, logfile=logfile, env=env)
        destdir = staging / "dest"
        times["install"] = run_logged([*nice, "make", "install", f"DESTDIR={destdir}"],
                                      cwd=src, logfile=logfile, env=env)  # fmt: skip
        staged_prefix = destdir / str(plan.prefix).lstrip("/")
        finish_layout(staged_prefix, plan)
        missing = missing_optional_modules(logfile)
        times["total"] = time.monotonic() - t0
        record = {**plan.inputs(), "times_s": {k: round(v, 1) for k, v in times.items()},
                  "jobs": jobs, "nice": NICE, "missing_optional_modules": missing,
                  "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "host": os.uname().nodename, "cc": first_line(["gcc", "--version"])}  # fmt: skip
        (staged_prefix / MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        # Move into place, then prove it from its final path (the prefix is baked in).
        if plan.prefix.exists():
            shutil.rmtree(plan.prefix)
        os.replace(staged_prefix, plan.prefix)
        try:
            record["probe"] = probe(plan)
        except BuildError:
            shutil.rmtree(plan.prefix, ignore_errors=True)
            raise
        (plan.prefix / MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        (plan.key_dir / "build.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        return record
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def first_line(cmd: list[str]) -> str:
    with contextlib.suppress(OSError):
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    return ""


@contextlib.contextmanager
def build_lock(root: Path):
    """One CPython build at a time on this machine (2 shared cores)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another CPython build holds {root / '.build.lock'}; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure(plan: Plan, *, tarball: Path | None = None, jobs: int = DEFAULT_JOBS, force: bool = False) -> dict:
    """A valid cached build for *plan*, building it when needed. Returns its record."""
    if not force and (rec := cached(plan)):
        return rec
    with build_lock(plan.root):
        if not force and (rec := cached(plan)):  # built by another process meanwhile
            return rec
        path = ensure_tarball(plan.source, plan.root, tarball)
        ensure_build_deps()
        log(f"building CPython {plan.source.version}{' (free-threaded)' if plan.free_threaded else ''} "
            f"into {plan.prefix} (make -j{jobs}, nice {NICE}); log: {plan.key_dir / 'build.log'}")  # fmt: skip
        rec = build(plan, path, jobs=jobs)
        times = rec["times_s"]
        log(f"built {plan.prefix} in {times['total']:.0f}s ("
            + ", ".join(f"{k} {v:.0f}s" for k, v in times.items() if k != "total") + ")")  # fmt: skip
        if rec["missing_optional_modules"]:
            log(f"optional modules not built: {', '.join(rec['missing_optional_modules'])}")
        return rec


def prune(root: Path) -> list[Path]:
    """Remove cached builds that no current (version, GIL/free-threaded) plan points at."""
    keep = {make_plan(v, ft, root).key for v in SOURCES for ft in (False, True)}
    removed = []
    if not root.is_dir():
        return removed
    with build_lock(root):
        for child in sorted(root.iterdir()):
            stale_key = re.fullmatch(r"[0-9a-f]{20}", child.name) and child.name not in keep
            leftover = re.fullmatch(r"[0-9a-f]{20}\.build-.*", child.name)
            if child.is_dir() and (stale_key or leftover):
                shutil.rmtree(child)
                removed.append(child)
    return removed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", required=True, choices=sorted(SOURCES), help="CPython minor version")
    p.add_argument("--free-threaded", action="store_true", help="build with --disable-gil (cpXY-cpXYt)")
    p.add_argument("--tarball", type=Path, help="use this local copy of the pinned tarball")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"make -j (default {DEFAULT_JOBS})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--print-prefix", action="store_true", help="print the prefix (build if needed)")
    mode.add_argument("--check", action="store_true", help="exit 0 if a valid build is cached, 1 if not")
    mode.add_argument("--inputs", action="store_true", help="print what the cache key hashes (JSON)")
    mode.add_argument("--print-key", action="store_true", help="print the cache key")
    mode.add_argument("--force", action="store_true", help="rebuild even if cached")
    mode.add_argument("--prune", action="store_true", help="delete cached builds of other keys (stale)")
    args = p.parse_args(argv)
    try:
        plan = make_plan(args.version, args.free_threaded)
        if args.inputs:
            print(json.dumps(plan.inputs(), indent=1, sort_keys=True))
            return 0
        if args.print_key:
            print(plan.key)
            return 0
        if args.prune:
            for path in prune(plan.root):
                log(f"removed {path}")
            return 0
        if args.check:
            ok = cached(plan) is not None
            log(f"{plan.prefix}: {'valid' if ok else 'not built'}")
            return 0 if ok else 1
        ensure(plan, tarball=args.tarball, jobs=args.jobs, force=args.force)
        if args.print_prefix:
            print(plan.prefix)
        else:
            log(f"ready: {plan.prefix}")
        return 0
    except BuildError as exc:
        print(f"build_cpython: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
