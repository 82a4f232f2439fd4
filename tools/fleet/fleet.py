"""The wheel fleet driver: one fat deep_gemm wheel for every CPython that Requires-Python
allows AND the pinned torch publishes wheels for.

    .venv/bin/python tools/fleet                     # all stages, all CPythons, the default torch
    .venv/bin/python tools/fleet --torch 2.15.0      # another torch: dist/torch-2.15.0/, +torch2.15.0
    .venv/bin/python tools/fleet lock-torch 2.15.0   # write tools/fleet/torch-sites/torch-2.15.0.txt
    .venv/bin/python tools/fleet --pythons 3.12      # a subset (the 1-vs-4 measurement)
    .venv/bin/python tools/fleet --official-image    # quay.io/pypa/manylinux_2_28_x86_64
    .venv/bin/python tools/fleet torch-site          # stage (a) only; prints the path

Stages, each timed:
  fetch   the build-time torch (tools/fleet/torch-sites/torch-<X>.txt) into
          <cache>/torch-site-<key>/, once per key (later runs reuse it)
  image   the local build image (tools/image/build_image.py), rebuilt only when stale
  build   cibuildwheel --platform linux --output-dir wheelhouse/, output live; the
          torch site is mounted read-only at /opt/torch-site (DG_TORCH_SITE)
  merge   merge-wheels wheelhouse/*.whl -o dist/   (dist/ ends up with ONE wheel)
  check   check-wheel dist/<wheel> --symbols-from <the torch site's torch/lib and nvidia/cu13/lib>

then a summary: tags, per-wheel sizes, merged size, time per stage, and the CPythons of
the range it did not build, with the reason (also written as JSON to
<wheelhouse>/fleet-summary.json).

The default torch (requirements/torch.txt) writes wheelhouse/ and dist/ as before; any other
torch X writes wheelhouse/torch-X/ and dist/torch-X/, and its wheel's version carries the local
label +torchX (what `pip list` shows). Every wheel's Requires-Dist pins the minor of the torch
it was built against and its Requires-Python is narrowed to the CPythons that torch has.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tools" / "image"))

import build_image  # noqa: E402
import torches  # noqa: E402
from cpythons import CPython, CPythonError, build_cpythons, not_local_reason, read_requires_python, select_subset  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402
from packaging.utils import InvalidWheelFilename, parse_wheel_filename  # noqa: E402
from torches import TorchError, default_torch  # noqa: E402

STAGES = ("fetch", "image", "build", "merge", "check")
DEFAULT_CACHE = Path(os.environ.get("DG_FLEET_CACHE", "/var/cache/deep-gemm-fleet"))
CONTAINER_TORCH_SITE = "/opt/torch-site"
OFFICIAL_IMAGE = "quay.io/pypa/manylinux_2_28_x86_64"


T = TypeVar("T")


class FleetError(Exception):
    """A stage failed; the message says which and what to do."""


# --------------------------------------------------------------------------- options


@dataclasses.dataclass
class Options:
    torch: str
    pythons: list[CPython]
    subset: bool
    # the wheel's Requires-Python: the CPythons of the range this torch has wheels for
    wheel_requires_python: str
    # CPythons of Requires-Python this run does not build, with the reason (the summary says so)
    not_built: dict[str, str]
    stages: tuple[str, ...]
    official_image: bool
    engine: str
    cache_dir: Path
    wheelhouse: Path
    dist: Path
    pyproject: Path


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="tools/fleet", description="Build one fat deep_gemm wheel for every CPython in Requires-Python."
    )
    parser.add_argument("command", nargs="?", default="run", choices=("run", "torch-site", "pythons", "lock-torch"),
                        help="run: the stages (default); torch-site: fetch stage only, print the path; "
                             "pythons: print the CPythons built for the torch; lock-torch [VERSION]: "
                             "write tools/fleet/torch-sites/torch-VERSION.txt")  # fmt: skip
    parser.add_argument("version", nargs="?", help="lock-torch: the torch version (default: --torch)")
    parser.add_argument("--torch", metavar="X.Y.Z",
                        help="the torch to build against (default: requirements/torch.txt's pin)")  # fmt: skip
    parser.add_argument("--pythons", nargs="+", metavar="X.Y",
                        help="build only these CPythons (e.g. 3.12); check-wheel then checks only them")  # fmt: skip
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated subset of {','.join(STAGES)} (default: all)")  # fmt: skip
    parser.add_argument("--official-image", action="store_true",
                        help=f"build in {OFFICIAL_IMAGE} instead of the local image (needs quay.io)")  # fmt: skip
    parser.add_argument("--engine", choices=("podman", "docker"), default="podman",
                        help="container engine (GitHub Actions uses docker)")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"where the build-time torch is kept (default {DEFAULT_CACHE}, or $DG_FLEET_CACHE)")  # fmt: skip
    parser.add_argument("--wheelhouse", type=Path, help="default: wheelhouse/ (another torch: wheelhouse/torch-X/)")
    parser.add_argument("--dist", type=Path, help="default: dist/ (another torch: dist/torch-X/)")
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    parser.add_argument("--json", action="store_true", help="pythons: print a JSON list (a CI matrix)")
    args = parser.parse_args(argv)
    return args.command, args


def resolve_options(args: argparse.Namespace) -> Options:
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise FleetError(f"--stages: unknown stage(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(STAGES)}")
    if args.official_image and "image" in stages:
        stages = tuple(s for s in stages if s != "image")
    torch = torch_version(args)
    cache_dir = args.cache_dir.resolve()
    spec = read_requires_python(args.pyproject)
    targets = torch_cpythons(spec, torch, cache_dir)
    not_built = {py.abi: f"torch {torch} has no {py.abi} wheel on PyPI" for py in build_cpythons(spec) if py not in targets}
    if not args.official_image:
        not_built |= {py.abi: r for py in targets if (r := not_local_reason(py))}
    all_pys = [py for py in targets if py.abi not in not_built]
    pythons = select_subset(all_pys, args.pythons) if args.pythons else all_pys
    if args.pythons and "check" in stages:
        subset_range(pythons)  # fail before building, not after
    wheelhouse, dist = output_dirs(torch)
    return Options(
        torch=torch,
        pythons=pythons,
        subset=bool(args.pythons) and pythons != all_pys,
        wheel_requires_python=contiguous_range(targets),
        not_built=not_built,
        stages=stages,
        official_image=args.official_image,
        engine=args.engine,
        cache_dir=cache_dir,
        wheelhouse=(args.wheelhouse or wheelhouse).resolve(),
        dist=(args.dist or dist).resolve(),
        pyproject=args.pyproject.resolve(),
    )


def output_dirs(torch: str) -> tuple[Path, Path]:
    """(wheelhouse, dist) of a run for *torch*: the default torch's are wheelhouse/ and dist/."""
    sub = "" if torch == default_torch() else f"torch-{torch}"
    return REPO / "wheelhouse" / sub, REPO / "dist" / sub


def local_pythons(torch: str | None = None) -> list[CPython]:
    """The CPythons a plain local run for *torch* builds (what `make wheels [TORCH=X]` puts in its wheel)."""
    _, args = parse_args([] if torch is None else ["--torch", torch])
    return resolve_options(args).pythons


def torch_version(args: argparse.Namespace) -> str:
    return torches.parse_torch_version(args.torch) if args.torch else default_torch()


def torch_cpythons(spec: SpecifierSet, torch: str, cache_dir: Path) -> list[CPython]:
    """The CPythons of *spec* (cibuildwheel's selection) that torch *torch* has wheels for."""
    published = torches.published_abis(torch, cache_dir)
    pys = [py for py in build_cpythons(spec) if py.abi in published]
    if not pys:
        raise FleetError(f"torch {torch} has wheels for {', '.join(sorted(published))}, none of which "
                         f"requires-python {str(spec)!r} allows")  # fmt: skip
    return pys


def contiguous_range(pythons: list[CPython]) -> str:
    """'>=3.10,<3.15' for cp310..cp314 (free-threaded builds share their minor's range)."""
    versions = sorted({(py.major, py.minor) for py in pythons})
    (a0, b0), (a1, b1) = versions[0], versions[-1]
    if len(versions) != (b1 - b0 + 1) or a0 != a1:
        raise FleetError(
            f"CPythons {' '.join(f'{a}.{b}' for a, b in versions)} are not contiguous: "
            "one wheel has one Requires-Python range, so a subset must be contiguous (e.g. 3.11 3.12)"
        )
    return f"=={a0}.{b0}.*" if len(versions) == 1 else f">={a0}.{b0},<{a1}.{b1 + 1}"


# --------------------------------------------------------------------------- host tools

HOST_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap", "tar": "tar"}


def ensure_host_tools(engine: str, need_image: bool, *, which=shutil.which, runner=subprocess.run) -> list[str]:
    """Install the Debian packages the fleet needs when they are missing (as root, via apt).

    Returns the packages installed. `apt-get update` runs once, only when something is missing.
    """
    wanted = ["podman", "runc"] if engine == "podman" else []
    if need_image:
        wanted += ["podman", "runc", "debootstrap", "tar"]
    missing = sorted({HOST_PACKAGES[tool] for tool in wanted if which(tool) is None})
    if not missing:
        return []
    if engine == "docker" and not need_image:
        return []
    if os.geteuid() != 0 or which("apt-get") is None:
        raise FleetError(
            f"missing host tools: {', '.join(missing)}; install them with "
            f"`apt-get update && apt-get install -y --no-install-recommends {' '.join(missing)}`"
        )
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
        echo(cmd)
        if runner(cmd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive")).returncode:
            raise FleetError(f"`{shlex.join(cmd)}` failed; install {', '.join(missing)} by hand")
    return missing


# --------------------------------------------------------------------------- stage (a): torch


torch_pin = default_torch


def torch_site_key(lock: Path) -> str:
    h = hashlib.sha256(lock.read_bytes())
    h.update(f"{torches.SITE_PYTHON} {torches.SITE_PLATFORM}".encode())
    return h.hexdigest()[:16]


def beside_interpreter(name: str) -> Path | None:
    """The console script *name* of the environment running the fleet (installed by its pins), if there."""
    path = Path(sys.executable).with_name(name)
    return path if path.is_file() else None


def uv_executable() -> str:
    """The dev env's own uv (pinned in requirements/dev.txt, beside this interpreter), else one on PATH."""
    beside = beside_interpreter("uv")
    if beside is not None:
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise FleetError(f"uv not found beside {sys.executable} nor on PATH: the fetch stage installs the "
                         "pinned torch with uv (`make dev` installs it into .venv)")
    return found


def ensure_torch_site(cache_dir: Path, torch: str) -> tuple[Path, bool]:
    """<cache>/torch-site-<key> of torch *torch*, installed unless complete. Returns (path, fetched)."""
    lock = torches.require_lock(torch)
    site = cache_dir / f"torch-site-{torch_site_key(lock)}"
    if (site / ".complete").is_file():
        return site, False
    uv = uv_executable()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{site.name}.tmp.", dir=cache_dir))
    try:
        cmd = [uv, "pip", "install", "--quiet", "--target", str(tmp), "--no-deps", "--require-hashes",
               "--python-version", torches.SITE_PYTHON, "--python-platform", torches.SITE_PLATFORM,
               "-r", str(lock)]  # fmt: skip
        echo(cmd)
        if subprocess.run(cmd).returncode:
            raise FleetError(f"fetch: installing {lock.name} failed (see uv's message above)")
        for need in ("torch/include", "torch/lib/libtorch.so", "nvidia/cu13/include/crt/host_config.h",
                     "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libnvrtc.so.13"):  # fmt: skip
            if not (tmp / need).exists():
                raise FleetError(f"fetch: {need} missing from the installed torch site; fix {lock.name}")
        (tmp / ".complete").write_text(lock.read_text())
        if site.exists():  # an incomplete leftover
            shutil.rmtree(site)
        tmp.rename(site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return site, True


def point_default_link(cache_dir: Path, site: Path) -> None:
    """<cache>/torch-site -> torch-site-<key>: the path pyproject's create-args mounts,
    so a hand-run `cibuildwheel` uses the current torch too."""
    link = cache_dir / "torch-site"
    tmp = cache_dir / f".torch-site.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(site.name)
    tmp.replace(link)


# --------------------------------------------------------------------------- stage (c): build


def staged_source(dest: Path, opts: Options | None = None) -> Path:
    """Copy the project's tracked and untracked-but-not-ignored files to *dest*; with *opts*,
    the copy is made for that run's torch (retarget_source).

    cibuildwheel copies its working directory into the container wholesale; the
    checkout also holds .venv/ (GBs of torch) and build/, which must not go in.
    """
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for rel in filter(None, listing.split("\0")):
        src = REPO / rel
        if not src.exists() and not src.is_symlink():  # deleted in the work tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, target)
    if opts is not None:
        retarget_source(dest, opts)
    return dest


def _replace_one(path: Path, pattern: str, line: str) -> None:
    text = path.read_text()
    new, n = re.subn(pattern, line, text, count=2, flags=re.M)
    if n != 1:
        raise FleetError(f"{path}: expected one line matching {pattern!r} to retarget, found {n}")
    path.write_text(new)


def retarget_source(src: Path, opts: Options) -> None:
    """Make the staged copy build for opts.torch: requirements/torch.txt pins it (setup.py
    derives Requires-Dist from it and checks the site against it), pyproject's requires-python
    is narrowed to the CPythons that torch has, and another torch than the default gets a
    local version label (+torch2.15.0) so the wheel's name and `pip list` say which it is for."""
    _replace_one(src / "requirements" / "torch.txt", r"^\s*torch\s*==.*$", f"torch=={opts.torch}")
    pyproject = src / "pyproject.toml"
    _replace_one(pyproject, r"^requires-python\s*=.*$", f'requires-python = "{opts.wheel_requires_python}"')
    if opts.torch != default_torch():
        _replace_one(pyproject, r'^version\s*=\s*"([^"+]+)"\s*$', f'version = "\\g<1>+torch{opts.torch}"')


def cibuildwheel_env(opts: Options, site: Path | None, image: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    env = build_image.podman_env(base)
    env["CIBW_BUILD"] = " ".join(py.identifier for py in opts.pythons)
    env["CIBW_ARCHS_LINUX"] = "x86_64"
    # before-all compiles these CPythons' _C objects up front (setup.py build_runtime).
    env["DG_PREBUILD_PYTHONS"] = " ".join(f"{py.opt_dir}/bin/python" for py in opts.pythons)
    if opts.official_image:
        env["CIBW_MANYLINUX_X86_64_IMAGE"] = OFFICIAL_IMAGE
    elif image:
        env["CIBW_MANYLINUX_X86_64_IMAGE"] = image
    if site is not None:
        create_args = [f"--volume={site}:{CONTAINER_TORCH_SITE}:ro"]
        env["CIBW_CONTAINER_ENGINE"] = f"{opts.engine}; create_args: {shlex.join(create_args)}; disable_host_mount: true"
    # cibuildwheel hands this bundle to pip in the container (and uses it itself)
    env.setdefault("SSL_CERT_FILE", str(build_image.HOST_CA_BUNDLE))
    return env


BUILD_START = re.compile(r"Building (cp\d+t?-\S+) wheel")


def run_live(cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path,
             on_line: Callable[[str, float], None] | None = None) -> int:  # fmt: skip
    """Run *cmd*, echoing its output live and into *log*; *on_line* sees each line and its time."""
    echo(cmd)
    with log.open("w") as logf:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            logf.write(line)
            if on_line:
                on_line(line, time.monotonic())
        return proc.wait()


def per_python_times(events: list[tuple[str, float]], end: float) -> dict[str, float]:
    """From (identifier, start time) events, the seconds each build took."""
    out = {}
    for i, (ident, start) in enumerate(events):
        stop = events[i + 1][1] if i + 1 < len(events) else end
        out[ident] = round(stop - start, 1)
    return out


def build_wheels(opts: Options, site: Path | None, image: str | None) -> dict[str, float]:
    cibw = beside_interpreter("cibuildwheel")
    if cibw is None:
        raise FleetError(f"cibuildwheel not found beside {sys.executable}: install the fleet's pins with "
                         "`uv pip install -r tools/fleet/requirements.txt`")
    opts.wheelhouse.mkdir(parents=True, exist_ok=True)
    for old in opts.wheelhouse.glob("*.whl"):
        old.unlink()
    events: list[tuple[str, float]] = []

    def on_line(line: str, now: float) -> None:
        if m := BUILD_START.search(line):
            events.append((m.group(1), now))

    with tempfile.TemporaryDirectory(prefix="deep-gemm-fleet-src.") as tmp:
        src = staged_source(Path(tmp), opts)
        env = cibuildwheel_env(opts, site, image)
        rc = run_live(
            [str(cibw), "--platform", "linux", "--output-dir", str(opts.wheelhouse), str(src)],
            env=env, cwd=src, log=opts.wheelhouse / "cibuildwheel.log", on_line=on_line,
        )  # fmt: skip
        end = time.monotonic()
    if rc:
        raise FleetError(f"build: cibuildwheel failed (exit {rc}); its output is in {opts.wheelhouse / 'cibuildwheel.log'}")
    wheels = sorted(opts.wheelhouse.glob("*.whl"))
    got = {wheel_abis(w) for w in wheels}
    want = {(py.abi,) for py in opts.pythons}
    if got != want:
        raise FleetError(
            f"build: expected one wheel per {', '.join(sorted(a for (a,) in want))}, "
            f"got {', '.join(w.name for w in wheels) or 'none'} in {opts.wheelhouse}"
        )
    return per_python_times(events, end)


# --------------------------------------------------------------------------- merge / check


def wheel_abis(wheel: Path) -> tuple[str, ...]:
    try:
        _, _, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise FleetError(f"{wheel}: {exc}") from None
    return tuple(sorted({t.abi for t in tags}))


def wheel_tool(name: str) -> list[str]:
    """The wheelfuse CLI *name* (merge-wheels / check-wheel) of the dev venv, or its module."""
    exe = beside_interpreter(name)
    if exe is not None:
        return [str(exe)]
    module = {"merge-wheels": "wheelfuse.merge_cli", "check-wheel": "wheelfuse.check_cli"}[name]
    return [sys.executable, "-m", module]


def wheel_tool_env() -> dict[str, str]:
    env = dict(os.environ)
    src = REPO / "tools" / "wheelfuse" / "src"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def merge_wheels(opts: Options) -> Path:
    wheels = sorted(opts.wheelhouse.glob("*.whl"))
    if not wheels:
        raise FleetError(f"merge: no wheels in {opts.wheelhouse}; run the build stage first")
    opts.dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".merge.", dir=opts.dist) as tmp:
        cmd = [*wheel_tool("merge-wheels"), *map(str, wheels), "-o", tmp]
        echo(cmd)
        if subprocess.run(cmd, env=wheel_tool_env()).returncode:
            raise FleetError(f"merge: merge-wheels refused {len(wheels)} wheel(s) from {opts.wheelhouse} (see above)")
        out = sorted(Path(tmp).glob("*.whl"))
        if len(out) != 1:
            raise FleetError(f"merge: merge-wheels wrote {len(out)} wheels, expected exactly one")
        for old in opts.dist.glob("*.whl"):
            old.unlink()
        merged = opts.dist / out[0].name
        out[0].replace(merged)
    return merged


def subset_range(pythons: list[CPython]) -> str:
    """The --python-range check-wheel needs for a --pythons subset (a contiguous one)."""
    try:
        return contiguous_range(pythons)
    except FleetError as exc:
        raise FleetError(f"--pythons: {exc}") from None


def check_wheel(opts: Options, merged: Path, site: Path) -> None:
    """check-wheel, with the torch-ABI guard against the libraries of the torch it was built for."""
    cmd = [*wheel_tool("check-wheel"), str(merged), "--symbols-from", *map(str, symbol_dirs(site))]
    if opts.subset:
        cmd += ["--python-range", subset_range(opts.pythons)]
    if any(py.free_threaded for py in opts.pythons):
        cmd.append("--free-threaded")  # the official image builds them: require every one
    echo(cmd)
    if subprocess.run(cmd, env=wheel_tool_env()).returncode:
        raise FleetError(f"check: check-wheel rejected {merged.name} (see above)")


def symbol_dirs(site: Path) -> list[Path]:
    return [site / "torch" / "lib", site / "nvidia" / "cu13" / "lib"]


# --------------------------------------------------------------------------- summary


def human(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def summarize(stage_times: dict[str, float], wheels: list[Path], merged: Path | None,
              build_times: dict[str, float], opts: Options) -> dict:  # fmt: skip
    sizes = [w.stat().st_size for w in wheels]
    per = [{"wheel": w.name, "abi": ",".join(wheel_abis(w)), "bytes": n} for w, n in zip(wheels, sizes, strict=True)]
    total = sum(sizes)
    summary = {
        "torch": opts.torch,
        "pythons": [py.version for py in opts.pythons],
        "not_built": opts.not_built,
        "image": "official" if opts.official_image else "local",
        "stage_seconds": {k: round(v, 1) for k, v in stage_times.items()},
        "build_seconds_per_python": build_times,
        "wheels": per,
        "wheels_sum_bytes": total,
        "merged": None,
    }
    if merged is not None:
        size = merged.stat().st_size
        summary["merged"] = {
            "wheel": merged.name,
            "bytes": size,
            # the compressed tag set of the file name (pip expands it to the cross product)
            "tags": merged.name[: -len(".whl")].split("-", 2)[2],
            "abis": list(wheel_abis(merged)),
            "vs_largest_per_python": round(size / max(sizes), 3) if sizes else None,
            "vs_sum": round(size / total, 3) if total else None,
        }
    return summary


def print_summary(summary: dict) -> None:
    print("\n=== fleet summary ===")
    print(f"torch {summary['torch']}   CPythons: {', '.join(summary['pythons'])}   image: {summary['image']}")
    for w in summary["wheels"]:
        took = summary["build_seconds_per_python"].get(next(iter(k for k in summary["build_seconds_per_python"] if k.startswith(w["abi"] + "-")), ""), None)
        print(f"  {w['wheel']:<72} {human(w['bytes']):>10}" + (f"  built in {took:.0f}s" if took else ""))
    if summary["wheels"]:
        print(f"  {'sum of per-Python wheels':<72} {human(summary['wheels_sum_bytes']):>10}")
    if m := summary["merged"]:
        print(f"merged: {m['wheel']}  {human(m['bytes'])}"
              f"  ({m['vs_largest_per_python']}x the largest per-Python wheel, {m['vs_sum']}x their sum)")  # fmt: skip
        print(f"  tags: {m['tags']}  (ABIs {', '.join(m['abis'])})")
    for abi, why in summary["not_built"].items():
        print(f"not built: {abi}: {why}")
    times = summary["stage_seconds"]
    print("stages: " + "  ".join(f"{k} {v:.1f}s" for k, v in times.items()) + f"  (total {sum(times.values()):.1f}s)")


# --------------------------------------------------------------------------- main


def echo(cmd: Sequence[str]) -> None:
    print("+ " + shlex.join(map(str, cmd)), flush=True)


def banner(stage: str) -> None:
    print(f"\n=== fleet: {stage} ===", flush=True)


def run(opts: Options) -> dict:
    times: dict[str, float] = {}
    site: Path | None = None
    image: str | None = None
    merged: Path | None = None
    build_times: dict[str, float] = {}

    def timed(stage: str, fn: Callable[[], T]) -> T:
        banner(stage)
        t = time.monotonic()
        try:
            return fn()
        finally:
            times[stage] = time.monotonic() - t

    if "image" in opts.stages or ("build" in opts.stages and opts.engine == "podman"):
        installed = ensure_host_tools(opts.engine, "image" in opts.stages)
        if installed:
            print(f"installed from Debian: {', '.join(installed)}")
    if {"fetch", "build", "check"} & set(opts.stages):
        site, fetched = timed("fetch", lambda: ensure_torch_site(opts.cache_dir, opts.torch))
        if opts.torch == default_torch():
            point_default_link(opts.cache_dir, site)
        print(f"torch site: {site} ({'fetched' if fetched else 'cached'})")
    if "image" in opts.stages:
        image, _, _ = timed("image", lambda: build_image.ensure_image(opts.pyproject))
    if "build" in opts.stages:
        if image is None and not opts.official_image:
            image = build_image.image_name(build_image.image_tag(build_image.collect_inputs(opts.pyproject)))
            if not build_image.image_exists(image):
                raise FleetError(f"build: image {image} is missing; run the image stage (or drop --stages)")
        build_times = timed("build", lambda: build_wheels(opts, site, image))
    if "merge" in opts.stages:
        merged = timed("merge", lambda: merge_wheels(opts))
    if "check" in opts.stages:
        if merged is None:
            found = sorted(opts.dist.glob("*.whl"))
            if len(found) != 1:
                raise FleetError(f"check: expected one wheel in {opts.dist}, found {len(found)}")
            merged = found[0]
        checked, torch_site = merged, site
        assert torch_site is not None  # the fetch step above ran for "check"
        timed("check", lambda: check_wheel(opts, checked, torch_site))
    wheels = sorted(opts.wheelhouse.glob("*.whl")) if opts.wheelhouse.is_dir() else []
    summary = summarize(times, wheels, merged, build_times, opts)
    print_summary(summary)
    opts.wheelhouse.mkdir(parents=True, exist_ok=True)
    (opts.wheelhouse / "fleet-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    command, args = parse_args(argv)
    try:
        if command == "lock-torch":
            version = torches.parse_torch_version(args.version) if args.version else torch_version(args)
            print(torches.lock_torch(version, uv_executable()))
            return 0
        if command == "pythons":
            pys = torch_cpythons(read_requires_python(args.pyproject), torch_version(args), args.cache_dir.resolve())
            versions = [py.version for py in pys]
            print(json.dumps(versions) if args.json else " ".join(versions))
            return 0
        if command == "torch-site":
            torch = torch_version(args)
            site, _ = ensure_torch_site(args.cache_dir.resolve(), torch)
            if torch == default_torch():
                point_default_link(args.cache_dir.resolve(), site)
            print(site)
            return 0
        run(resolve_options(args))
        return 0
    except (FleetError, CPythonError, TorchError, build_image.ImageError) as exc:
        print(f"\nfleet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nfleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
