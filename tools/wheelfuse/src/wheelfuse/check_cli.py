"""check-wheel WHEEL [--python-range SPEC] [--free-threaded] [--allow-external GLOB ...]
[--symbols-from DIR ...] [--json]"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from . import __version__
from .check import DEFAULT_ALLOWED_EXTERNAL, Report, check_wheel
from .pythons import RELEASED_MINORS

PROG = "check-wheel"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check that a wheel has an extension module for every CPython it claims.",
    )
    parser.add_argument("wheel", type=Path, metavar="WHEEL")
    parser.add_argument(
        "--python-range",
        metavar="SPEC",
        help="required CPython range (default: the wheel's Requires-Python), e.g. '>=3.10,<3.14'",
    )
    parser.add_argument(
        "--free-threaded",
        action="store_true",
        help="also require the free-threaded ABI (cp314t ...) for every minor from 3.14 on",
    )
    parser.add_argument(
        "--allow-external",
        action="append",
        metavar="GLOB",
        help="soname pattern that may stay un-grafted (repeatable; replaces the default list:"
        f" {' '.join(DEFAULT_ALLOWED_EXTERNAL)})",
    )
    parser.add_argument(
        "--symbols-from",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="library directories (e.g. a pinned torch's torch/lib): every undefined symbol an ELF"
        " of the wheel needs from a library there (by DT_NEEDED soname) must be exported by it",
    )
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def render_table(report: Report) -> str:
    lines = [f"wheel: {report.wheel}"]
    known = " ".join(f"{a}.{b}" for a, b in RELEASED_MINORS)
    lines.append(f"known CPython minors: {known}")
    if report.python_spec is not None:
        r = report.python_range
        required = " ".join(r.abis) if r else "-"
        extra = " (open-ended: resolved against the known minors)" if r and r.open_ended else ""
        lines.append(f"{report.python_spec_source}: {report.python_spec} -> {required}{extra}")
    if report.platforms:
        lines.append(f"platforms: {' '.join(report.platforms)}")
    if report.rows:
        table = [("ABI", "required", "tagged", "module", "status")]
        for row in report.rows:
            yes = (
                "yes" if row.required else "no",
                "yes" if row.tagged else "NO" if row.required else "no",
            )
            if not row.modules:
                table.append((row.abi, *yes, "-", "MISSING" if row.tagged or row.required else "-"))
            for m in row.modules:
                table.append(
                    (row.abi, *yes, m.module, "ok" if m.problem is None else f"FAIL: {m.problem}")
                )
        widths = [max(len(cells[i]) for cells in table) for i in range(4)]
        for cells in table:
            lines.append(
                "  "
                + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))
                + "  "
                + cells[4]
            )
    if report.policy is not None:
        p = report.policy
        if p.note:
            lines.append(f"policy: {p.note}")
        else:
            lines.append(f"policy: claims {' '.join(p.claimed)}; auditwheel: {p.analysed}")
            lines.append(
                "un-grafted libraries outside the allow list: "
                + (" ".join(p.external_libs) or "none")
            )
    if report.problems:
        lines.append(f"problems ({len(report.problems)}):")
        for prob in report.problems:
            where = ": ".join(x for x in (prob.abi, prob.path) if x)
            lines.append(f"  [{prob.check}] {where + ': ' if where else ''}{prob.message}")
    for warning in report.warnings:
        lines.append(f"warning [{warning.check}]: {warning.message}")
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.python_range is not None:
        try:
            SpecifierSet(args.python_range)
        except InvalidSpecifier as exc:
            parser.error(f"--python-range: {exc}")
    report = check_wheel(
        args.wheel,
        python_range=args.python_range,
        free_threaded=args.free_threaded,
        allowed_external=tuple(args.allow_external or DEFAULT_ALLOWED_EXTERNAL),
        symbols_from=args.symbols_from,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(render_table(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
