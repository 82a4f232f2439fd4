#!/usr/bin/env python3
"""Prove a built interpreter is usable: venv (stdlib and uv), pip and uv installs of torch, import torch.

    python tools/cpython/check_torch.py PREFIX/bin/python [--torch 2.11.0] [--workdir DIR] [--pip-full]

Prints one JSON report on stdout (timings, the wheel each installer chose, the GIL state before and
after `import torch`, with PYTHON_GIL unset / 0 / 1, and any RuntimeWarning about the GIL).

* stdlib venv + `pip install --no-deps torch==X`: proves pip picks the right wheel tag
  (cp314t for a free-threaded 3.14) and installs it; `--pip-full` installs torch's CUDA
  dependencies with pip too (several GB of downloads unless pip's cache is warm).
* `uv venv` + `uv pip install torch==X`: the whole dependency set (fast when uv's cache is warm),
  then `import torch` in both venvs (the pip venv gets the CUDA dependencies from uv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, sys, warnings, time
warnings.simplefilter("always")
out = {"gil_at_start": getattr(sys, "_is_gil_enabled", lambda: True)()}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    t = time.monotonic()
    import torch
    out["import_s"] = round(time.monotonic() - t, 2)
out["gil_after_import_torch"] = getattr(sys, "_is_gil_enabled", lambda: True)()
out["gil_warnings"] = [str(w.message) for w in caught if "GIL" in str(w.message)]
out["torch"] = torch.__version__
out["torch_file"] = torch.__file__
out["cuda_built"] = torch.version.cuda
x = torch.arange(6.0).reshape(2, 3)
out["matmul_ok"] = (x @ x.T).tolist() == [[5.0, 14.0], [14.0, 50.0]]
print(json.dumps(out))
"""


def uv_cmd() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    return [sys.executable, "-m", "uv"]


def run(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    print("+ " + " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    t = time.monotonic()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    dt = time.monotonic() - t
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return round(dt, 1), r


def installed_wheel(venv_python: Path) -> str:
    code = ("import importlib.metadata as m; d = m.distribution('torch');"
            " print([l for l in d.read_text('WHEEL').splitlines() if l.startswith('Tag:')])")  # fmt: skip
    return subprocess.run([str(venv_python), "-c", code], capture_output=True, text=True).stdout.strip()


def probe(venv_python: Path) -> dict:
    out = {}
    for label, gil in (("default", None), ("PYTHON_GIL=0", "0"), ("PYTHON_GIL=1", "1")):
        env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
        if gil is not None:
            env["PYTHON_GIL"] = gil
        r = subprocess.run([str(venv_python), "-c", PROBE], capture_output=True, text=True, env=env)
        if r.returncode:
            out[label] = {"error": r.stderr.strip()[-1500:]}
        else:
            out[label] = json.loads(r.stdout.strip().splitlines()[-1])
            out[label]["stderr_gil_lines"] = [ln for ln in r.stderr.splitlines() if "GIL" in ln]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("python", type=Path)
    p.add_argument("--torch", default="2.11.0")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--pip-full", action="store_true", help="pip installs torch's dependencies too")
    args = p.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="check-torch."))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"python": str(args.python), "torch": args.torch}
    _, r = run([args.python, "-c", "import sys, sysconfig; print(sys.version.split()[0], repr(sys.abiflags), "
                "sysconfig.get_config_var('Py_GIL_DISABLED'))"])  # fmt: skip
    report["interpreter"] = r.stdout.strip()
    uv = uv_cmd()

    pip_venv = work / "venv-pip"
    report["venv_s"], _ = run([args.python, "-m", "venv", "--clear", pip_venv])
    vpy = pip_venv / "bin" / "python"
    pip_args = [] if args.pip_full else ["--no-deps"]
    report["pip_install_s"], r = run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                      *pip_args, f"torch=={args.torch}"])  # fmt: skip
    report["pip_wheel_tags"] = installed_wheel(vpy)
    if not args.pip_full:
        report["uv_deps_into_pip_venv_s"], _ = run([*uv, "pip", "install", "-q", "--python", vpy, f"torch=={args.torch}"])
    report["pip_venv"] = probe(vpy)

    uv_venv = work / "venv-uv"
    report["uv_venv_s"], _ = run([*uv, "venv", "-q", "--clear", "--python", args.python, uv_venv])
    upy = uv_venv / "bin" / "python"
    report["uv_install_s"], _ = run([*uv, "pip", "install", "-q", "--python", upy, f"torch=={args.torch}"])
    report["uv_wheel_tags"] = installed_wheel(upy)
    report["uv_venv"] = probe(upy)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
