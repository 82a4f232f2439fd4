"""Upstream DeepGEMM beside this project's deep_gemm in one process, for the benchmarks.

`--upstream PATH` names a directory from which upstream imports as `deep_gemm`: its source
tree with its `_C` built in place, outside this repository (never committed). Upstream
54e2261 built with the GPU machine's /opt/gcc g++ 13 crashes in std::regex unless the
system's libstdc++ is preloaded: LD_PRELOAD=$(g++ -print-file-name=libstdc++.so.6).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", metavar="PATH",
                        help="also time upstream DeepGEMM, importable as deep_gemm from PATH")


def load_libraries(upstream: str | None):
    """This project's deep_gemm, and upstream's from `upstream` under the same name: the first
    import's modules are set aside before the second, so both live in one process."""
    ours = importlib.import_module("deep_gemm")
    if upstream is None:
        return ours, None
    saved = {name: mod for name, mod in sys.modules.items() if name == "deep_gemm" or name.startswith("deep_gemm.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, upstream)
    try:
        theirs = importlib.import_module("deep_gemm")
    finally:
        sys.path.remove(upstream)
    if Path(theirs.__path__[0]).resolve() == Path(ours.__path__[0]).resolve():
        sys.exit(f"--upstream {upstream}: importing deep_gemm from there found this project's package again")
    sys.modules.update(saved)
    return ours, theirs
