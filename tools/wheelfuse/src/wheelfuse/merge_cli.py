"""merge-wheels WHEEL... -o DIR [--vendor-dir DIR] [--take PATH=TAG ...]"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from . import __version__
from .errors import WheelError
from .plan import Override, plan_merge
from .wheelinfo import load_wheel
from .writer import staged_vendor_tree, write_wheel, zip_timestamp

PROG = "merge-wheels"


def _override(text: str) -> Override:
    path, sep, abi = text.rpartition("=")
    if not sep or not path or not abi:
        raise argparse.ArgumentTypeError(
            f"expected PATH=TAG (e.g. pkg/_version.py=cp312), got {text!r}"
        )
    return Override(path, abi.lower())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Merge per-CPython wheels of one project into a single wheel.",
    )
    parser.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL")
    parser.add_argument("-o", "--out-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--vendor-dir",
        type=Path,
        metavar="DIR",
        help="also unpack the import package(s) into DIR (names must not exist there yet)",
    )
    parser.add_argument(
        "--take",
        type=_override,
        action="append",
        default=[],
        metavar="PATH=TAG",
        help="for a PATH whose bytes differ between inputs, use the input built for CPython TAG",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = [o.path for o in args.take]
    if len(set(paths)) != len(paths):
        parser.error("--take names the same path twice")
    try:
        date_time = zip_timestamp()
        wheels = [load_wheel(path) for path in args.wheels]
        plan = plan_merge(wheels, args.take)
        vendoring = staged_vendor_tree(plan, args.vendor_dir) if args.vendor_dir else nullcontext()
        with vendoring:
            target = write_wheel(plan, args.out_dir, date_time)
    except WheelError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
