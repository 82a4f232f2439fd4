"""The torch a fleet run builds against: its pin, its hash-locked build site, and the
CPythons it publishes wheels for.

A torch is an INPUT of the fleet (``tools/fleet --torch X``). What it needs, in one place each:
  - the default is ``requirements/torch.txt`` (the GPU machine's torch);
  - its build site is ``tools/fleet/torch-sites/torch-X.txt``: torch and the CUDA pieces a build
    needs (runtime, NVRTC, the crt/ host headers), hash-locked; ``tools/fleet lock-torch X``
    writes it from what ``uv pip compile torch==X`` resolves (adding a torch = that one file);
  - the CPythons it supports are derived from PyPI's file list for torch X (PEP 691 JSON, the
    manylinux x86_64 wheels, parsed with packaging), cached per version beside its site.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TORCH_PIN_FILE = REPO / "requirements" / "torch.txt"
SITE_LOCKS = HERE / "torch-sites"
PYPI_SIMPLE = "https://pypi.org/simple/torch/"
# the wheel of the build-time torch: any CPython's has the same headers and libraries
SITE_PYTHON = "3.12"
SITE_PLATFORM = "x86_64-manylinux_2_28"
# What the build needs besides torch: libcudart, NVRTC (the JIT), and the crt/ host headers
# (which torch's CUDA wheels lack; nvidia-cuda-crt follows the NVRTC version).
SITE_CUDA_PACKAGES = ("nvidia-cuda-runtime", "nvidia-cuda-nvrtc")
SITE_CRT_PACKAGE = "nvidia-cuda-crt"


class TorchError(Exception):
    """A torch pin, lock or index problem; the message says what to do."""


def default_torch(path: Path = TORCH_PIN_FILE) -> str:
    pins = re.findall(r"^\s*torch\s*==\s*(\S+)\s*$", path.read_text(), flags=re.M)
    if len(pins) != 1:
        raise TorchError(f"{path}: expected exactly one 'torch==X.Y.Z' line, found {len(pins)}")
    return pins[0]


def parse_torch_version(text: str) -> str:
    """'2.15.0' as given on the command line: a plain X.Y.Z release (no local part, no wildcard)."""
    try:
        version = Version(text)
    except InvalidVersion:
        raise TorchError(f"--torch {text!r}: not a version (expected e.g. 2.15.0)") from None
    if len(version.release) != 3 or version.local or version.is_devrelease or str(version) != text:
        raise TorchError(f"--torch {text!r}: give an exact release as PyPI names it, e.g. 2.15.0")
    return text


def site_lock(version: str, locks: Path = SITE_LOCKS) -> Path:
    return locks / f"torch-{version}.txt"


def pinned(text: str) -> dict[str, str]:
    """{name: version} of the ``name==version`` lines of a requirements file's text."""
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.M))


def require_lock(version: str, locks: Path = SITE_LOCKS) -> Path:
    """The lock of torch *version*; fails closed when it is missing or locks another torch."""
    lock = site_lock(version, locks)
    if not lock.is_file():
        raise TorchError(f"no build site lock for torch {version} ({lock}): write it with "
                         f"`.venv/bin/python tools/fleet lock-torch {version}` and commit it")  # fmt: skip
    locked = pinned(lock.read_text()).get("torch")
    if locked != version:
        raise TorchError(f"{lock} locks torch=={locked}, not torch=={version}: regenerate it with "
                         f"`tools/fleet lock-torch {version}`")  # fmt: skip
    return lock


# --------------------------------------------------------------------------- published CPythons


def wheel_abis(filenames: list[str], version: str) -> set[str]:
    """ABIs (cp312, cp314t) of torch *version*'s manylinux x86_64 CPython wheels in *filenames*."""
    out = set()
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        try:
            project, wheel_version, _, tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if project != "torch" or wheel_version != Version(version):
            continue
        out |= {t.abi for t in tags if _linux_x86_64_cpython(t)}
    return out


def _linux_x86_64_cpython(tag: Tag) -> bool:
    return (tag.platform.startswith("manylinux") and tag.platform.endswith("_x86_64")
            and tag.interpreter.startswith("cp") and tag.abi.removesuffix("t") == tag.interpreter)  # fmt: skip


def fetch_file_names(url: str = PYPI_SIMPLE) -> list[str]:
    """File names of the project page *url* (PEP 691 JSON of the simple API)."""
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise TorchError(f"{url}: cannot read torch's file list ({exc}); the fleet derives the "
                         "CPythons to build from it (cached once read)") from None  # fmt: skip
    return [f["filename"] for f in data.get("files", [])]


def published_abis(version: str, cache_dir: Path, fetch=fetch_file_names) -> set[str]:
    """The CPython ABIs torch *version* has Linux x86_64 wheels for (read once, then cached)."""
    cached = cache_dir / f"torch-{version}-abis.json"
    if cached.is_file():
        return set(json.loads(cached.read_text()))
    abis = wheel_abis(fetch(), version)
    if not abis:
        raise TorchError(f"PyPI lists no manylinux x86_64 CPython wheel of torch {version}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache_dir, prefix=f".{cached.name}.", delete=False) as tmp:
        json.dump(sorted(abis), tmp)
    os.replace(tmp.name, cached)
    return abis


# --------------------------------------------------------------------------- lock-torch


LOCK_HEADER = """\
# The build-time torch {version} of the fleet: torch and the CUDA pieces a build needs
# (torch/include, torch/lib, nvidia/cu13/include incl. crt/ host headers, nvidia/cu13/lib),
# at the versions `uv pip compile torch=={version}` resolves. Installed ONCE per cache key
# with --no-deps --require-hashes into <cache>/torch-site-<key>/ and mounted read-only into
# the build container as DG_TORCH_SITE. Written by `tools/fleet lock-torch {version}`.
"""


def _compile(uv: str, requirements: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory(prefix="lock-torch.") as tmp:
        src = Path(tmp) / "in.txt"
        src.write_text(requirements)
        cmd = [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version",
               SITE_PYTHON, "--python-platform", SITE_PLATFORM, *extra, str(src)]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True,
                                env=dict(os.environ, UV_PYTHON_DOWNLOADS="never"))  # fmt: skip
    if result.returncode:
        raise TorchError(f"`uv pip compile` of {requirements.split()} failed:\n{result.stderr.strip()[-2000:]}")
    return result.stdout


def lock_torch(version: str, uv: str, locks: Path = SITE_LOCKS) -> Path:
    """Write tools/fleet/torch-sites/torch-<version>.txt (temp name + rename)."""
    resolved = pinned(_compile(uv, f"torch=={version}\n"))
    missing = [p for p in SITE_CUDA_PACKAGES if p not in resolved]
    if missing:
        raise TorchError(f"torch=={version} does not depend on {', '.join(missing)}: the build site "
                         "needs them (libcudart, NVRTC); this torch is not a CUDA 13 build")  # fmt: skip
    pins = [f"torch=={version}"] + [f"{p}=={resolved[p]}" for p in SITE_CUDA_PACKAGES]
    pins.append(f"{SITE_CRT_PACKAGE}=={resolved['nvidia-cuda-nvrtc']}")
    body = _compile(uv, "\n".join(pins) + "\n", "--no-deps", "--generate-hashes")
    locks.mkdir(parents=True, exist_ok=True)
    lock = site_lock(version, locks)
    with tempfile.NamedTemporaryFile("w", dir=locks, prefix=f".{lock.name}.", delete=False) as tmp:
        tmp.write(LOCK_HEADER.format(version=version) + body)
    os.replace(tmp.name, lock)
    return lock
