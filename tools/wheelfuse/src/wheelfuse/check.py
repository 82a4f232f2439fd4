"""check-wheel: prove that a wheel carries a working extension module for every CPython
its Requires-Python admits, and nothing the tags do not claim.

The result is a Report: per-ABI rows (tags, modules, binary checks), the auditwheel policy
verdict for manylinux/musllinux wheels, and a flat list of problems. ok == no problems.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.metadata import parse_email
from packaging.specifiers import SpecifierSet

from . import __version__
from .binaries import Target, check_module_binary, parse_module_path, target_for
from .errors import WheelError
from .platforms import parse_platform
from .pythons import RELEASED_MINORS, PythonRange, resolve
from .symbols import ELF_MAGIC, SymbolsError, check_symbols
from .upload import upload_findings
from .wheelinfo import LoadedWheel, installed_paths, load_wheel

# Libraries a CUDA/torch extension may leave for the environment to provide.
DEFAULT_ALLOWED_EXTERNAL: tuple[str, ...] = (
    "libtorch*.so",
    "libc10*.so",
    "libshm.so",
    "libcudart.so.*",
    "libnvrtc*",
    "libcuda.so.1",
)
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Problem:
    check: str
    message: str
    abi: str | None = None
    path: str | None = None


@dataclass
class ModuleRow:
    module: str
    path: str
    problem: str | None = None


@dataclass
class AbiRow:
    abi: str
    required: bool
    tagged: bool  # in the file name and in WHEEL's Tag lines (load_wheel checks they agree)
    modules: list[ModuleRow] = field(default_factory=list)


@dataclass
class PolicyVerdict:
    claimed: list[str]
    analysed: str | None
    external_libs: list[str]
    allowed_external: list[str]
    note: str | None = None


@dataclass
class Report:
    wheel: str
    python_spec: str | None = None
    python_spec_source: str | None = None
    python_range: PythonRange | None = None
    platforms: list[str] = field(default_factory=list)
    rows: list[AbiRow] = field(default_factory=list)
    policy: PolicyVerdict | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # reported; ok stays true

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(
        self, check: str, message: str, abi: str | None = None, path: str | None = None
    ) -> None:
        self.problems.append(Problem(check, message, abi, path))

    def to_json(self) -> dict[str, Any]:
        r = self.python_range
        return {
            "schema": JSON_SCHEMA_VERSION,
            "tool": {"name": "wheelfuse", "version": __version__},
            "wheel": self.wheel,
            "ok": self.ok,
            "python": {
                "spec": self.python_spec,
                "source": self.python_spec_source,
                "known_minors": [f"{a}.{b}" for a, b in RELEASED_MINORS],
                "open_ended": r.open_ended if r else None,
                "required_abis": list(r.abis) if r else [],
            },
            "platforms": self.platforms,
            "abis": [
                {
                    "abi": row.abi,
                    "required": row.required,
                    "tagged": row.tagged,
                    "modules": [
                        {
                            "module": m.module,
                            "path": m.path,
                            "ok": m.problem is None,
                            "problem": m.problem,
                        }
                        for m in row.modules
                    ],
                }
                for row in self.rows
            ],
            "policy": None
            if self.policy is None
            else {
                "claimed": self.policy.claimed,
                "analysed": self.policy.analysed,
                "external_libs": self.policy.external_libs,
                "allowed_external": self.policy.allowed_external,
                "note": self.policy.note,
            },
            "problems": [
                {"check": p.check, "abi": p.abi, "path": p.path, "message": p.message}
                for p in self.problems
            ],
            "warnings": [
                {"check": w.check, "abi": w.abi, "path": w.path, "message": w.message}
                for w in self.warnings
            ],
        }


def _abi_sort_key(abi: str) -> tuple[int, str]:
    return (int(abi[2:].removesuffix("t")), abi)


def _python_range(
    report: Report, wheel: LoadedWheel, spec_text: str | None, free_threaded: bool
) -> None:
    if spec_text is None:
        raw, _ = parse_email(wheel.metadata)
        spec_text = raw.get("requires_python")
        report.python_spec_source = "Requires-Python"
        if spec_text is None:
            report.add("python-range", "METADATA has no Requires-Python; pass --python-range")
            return
    else:
        report.python_spec_source = "--python-range"
    report.python_spec = spec_text
    try:
        report.python_range = resolve(SpecifierSet(spec_text), free_threaded=free_threaded)
    except ValueError as exc:
        report.add("python-range", str(exc))


def _target(report: Report) -> Target | None:
    targets = {target_for(parse_platform(p)) for p in report.platforms}
    if None in targets:
        report.add("platform", f"no extension-module rules for platform(s) {report.platforms}")
        return None
    if len(targets) != 1:
        report.add("platform", f"platform tags {report.platforms} need different binaries")
        return None
    return targets.pop()


def _modules(report: Report, wheel: LoadedWheel, target: Target | None) -> None:
    tagged_abis: set[str] = set()
    for tag in sorted(wheel.tags, key=str):
        if tag.interpreter.startswith("cp") and tag.abi.removesuffix("t") == tag.interpreter:
            tagged_abis.add(tag.abi)
        elif tag.abi in ("abi3", "none") or not tag.interpreter.startswith("cp"):
            report.add("tags", f"tag {tag} is not tied to one CPython")

    by_abi: dict[str, list[ModuleRow]] = defaultdict(list)
    for installed, path in sorted(installed_paths(wheel.dist_info, wheel.archive.entries).items()):
        found = parse_module_path(installed)
        if found is None:
            continue
        module = ModuleRow(found.module, path)
        if target is not None:
            if found.suffix_platform != target.suffix_platform:
                module.problem = (
                    f"built for {found.suffix_platform}, expected {target.ext_suffix(found.abi)}"
                )
            else:
                data = wheel.archive.read(path)
                module.problem = check_module_binary(data, target, found.module)
        if module.problem:
            report.add("module", module.problem, found.abi, path)
        by_abi[found.abi].append(module)

    required = set(report.python_range.abis) if report.python_range else set()
    all_modules = {m.module for rows in by_abi.values() for m in rows}
    for abi in sorted(required | tagged_abis | set(by_abi), key=_abi_sort_key):
        row = AbiRow(abi, abi in required, abi in tagged_abis, by_abi.get(abi, []))
        report.rows.append(row)
        if row.required and not row.tagged:
            report.add(
                "tags",
                f"{report.python_spec_source} admits {abi} but no {abi} tag is in the file name"
                " or WHEEL",
                abi,
            )
        if row.tagged and not row.required and report.python_range:
            report.add(
                "tags",
                f"tag {abi} is outside {report.python_spec_source} {report.python_spec}",
                abi,
            )
        if not row.modules and (row.tagged or row.required):
            report.add(
                "modules", f"no extension module for {abi} (no tag without its binaries)", abi
            )
        if row.modules and not row.tagged:
            report.add(
                "modules",
                f"{len(row.modules)} module(s) for {abi}, which the wheel has no tag for",
                abi,
            )
        missing = sorted(all_modules - {m.module for m in row.modules})
        if row.modules and missing:
            report.add(
                "layout",
                f"{abi} lacks module(s) the other CPythons have: {', '.join(missing)}",
                abi,
            )


def _policy(report: Report, path: Path, allowed: Sequence[str]) -> None:
    claimed = [
        p for p in report.platforms if parse_platform(p).family in ("manylinux", "musllinux")
    ]
    if not claimed:
        report.policy = PolicyVerdict(
            [], None, [], list(allowed), "no manylinux/musllinux claim; auditwheel not run"
        )
        return
    # auditwheel is imported here: it is only needed for Linux wheels, and is slow to import.
    from auditwheel.error import AuditwheelError
    from auditwheel.wheel_abi import analyze_wheel_abi
    from auditwheel.wheeltools import get_wheel_architecture, get_wheel_libc

    logging.getLogger("auditwheel").setLevel(logging.ERROR)
    try:
        info = analyze_wheel_abi(
            get_wheel_libc(path.name),
            get_wheel_architecture(path.name),
            path,
            frozenset(allowed),  # excluded sonames are not treated as external
            disable_isa_ext_check=False,
            allow_graft=False,
        )
    except (AuditwheelError, RuntimeError, ValueError) as exc:
        report.policy = PolicyVerdict(claimed, None, [], list(allowed))
        report.add("policy", f"auditwheel could not analyse the wheel: {exc}")
        return
    external: set[str] = set()
    for tag in claimed:
        try:
            policy = info.policies.get_policy_by_name(tag)
        except LookupError:
            report.add("policy", f"auditwheel knows no policy {tag}")
            continue
        if info.overall_policy < policy:
            report.add(
                "policy",
                f"claims {tag} but auditwheel finds the binaries consistent only with"
                f" {info.overall_policy.name}",
            )
        external |= set(info.external_refs[policy.name].libs)
    report.policy = PolicyVerdict(
        claimed, info.overall_policy.name, sorted(external), list(allowed)
    )
    if external:
        report.add(
            "external-libs",
            f"un-grafted libraries outside the allow list: {', '.join(sorted(external))}",
        )


def _symbols(report: Report, wheel: LoadedWheel, dirs: Sequence[Path]) -> None:
    """The ABI guard (symbols.py): every ELF's symbols from the libraries of *dirs* are there."""
    archive = wheel.archive
    binaries = {name: data for name in archive.entries if (data := archive.read(name))[:4] == ELF_MAGIC}
    try:
        missing = check_symbols(binaries, dirs)
    except SymbolsError as exc:
        report.add("symbols", str(exc))
        return
    for m in missing:
        report.add("symbols", m.message, path=m.path)


def check_wheel(
    path: Path,
    *,
    python_range: str | None = None,
    free_threaded: bool = False,
    allowed_external: Sequence[str] = DEFAULT_ALLOWED_EXTERNAL,
    symbols_from: Sequence[Path] = (),
) -> Report:
    report = Report(wheel=path.name)
    try:
        wheel = load_wheel(path)
    except WheelError as exc:
        # Archive safety, RECORD, and name/WHEEL agreement: nothing else can be trusted.
        report.add(type(exc).__name__, exc.message, path=exc.path)
        return report
    upload_problems, upload_warnings = upload_findings(wheel, path.stat().st_size)
    report.problems += [Problem(f.check, f.message, path=f.path) for f in upload_problems]
    report.warnings += [Problem(f.check, f.message, path=f.path) for f in upload_warnings]
    report.platforms = sorted({t.platform for t in wheel.tags})
    _python_range(report, wheel, python_range, free_threaded)
    target = _target(report)
    _modules(report, wheel, target)
    if target is not None and target.format == "ELF":
        _policy(report, path, allowed_external)
        if symbols_from:
            _symbols(report, wheel, symbols_from)
    elif target is not None:
        report.policy = PolicyVerdict(
            [],
            None,
            [],
            list(allowed_external),
            "auditwheel covers Linux only; DLL imports are not checked",
        )
    return report
