"""The ABI guard: do a wheel's ELF files get every dynamic symbol they need from the
libraries of an environment (e.g. a pinned torch's lib directory)?

For each ELF in the wheel, every undefined GLOBAL symbol of its .dynsym is resolved the way
the dynamic linker binds it, against the libraries it names in DT_NEEDED that are present in
one of the given directories (matched by soname) or in the wheel itself:
  - a versioned reference (.gnu.version_r) binds to the library its version need names; when
    that library is one of the directories', it must define the symbol with that version;
  - an unversioned reference must be defined by one of those libraries, unless it is the
    interpreter's: ``Py*`` / ``_Py*`` symbols, which extension modules take from the running
    python (manylinux forbids linking libpython).
An ELF that needs no library of the directories is not checked. Defined means st_shndx is not
SHN_UNDEF, the binding GLOBAL or WEAK and the visibility default or protected. Weak undefined
references may stay unresolved at run time and are not reported.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

ELF_MAGIC = b"\x7fELF"
INTERPRETER_PREFIXES = ("Py", "_Py")
UNVERSIONED = None
_EXPORTED_VISIBILITY = ("STV_DEFAULT", "STV_PROTECTED")
_HIDDEN_BIT = 0x8000


class SymbolsError(Exception):
    """A directory or library that cannot be read as asked."""


@dataclass(frozen=True)
class MissingSymbol:
    path: str  # the wheel member
    symbol: str
    version: str | None
    libraries: tuple[str, ...]  # where it was looked for

    @property
    def message(self) -> str:
        where = ", ".join(self.libraries)
        wanted = self.symbol + (f"@{self.version}" if self.version else "")
        return f"needs {wanted}, which {where} {'does' if len(self.libraries) == 1 else 'do'} not export"


@dataclass
class _Elf:
    soname: str | None
    needed: list[str]
    # name -> versions it is defined with (UNVERSIONED for none)
    exports: dict[str, set[str | None]]
    # (name, version or None, library the version need names or None)
    imports: list[tuple[str, str | None, str | None]]


def _versions(elf: ELFFile) -> tuple[GNUVerSymSection | None, dict[int, str], dict[int, tuple[str, str]]]:
    versym = None
    defined: dict[int, str] = {}
    needed: dict[int, tuple[str, str]] = {}  # index -> (library, version)
    for section in elf.iter_sections():
        if isinstance(section, GNUVerSymSection):
            versym = section
        elif isinstance(section, GNUVerDefSection):
            for verdef, auxiliaries in section.iter_versions():
                names = [aux.name for aux in auxiliaries]
                if names and not verdef["vd_flags"] & 0x1:  # VER_FLG_BASE names the file itself
                    defined[verdef["vd_ndx"]] = names[0]
        elif isinstance(section, GNUVerNeedSection):
            for verneed, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    needed[aux["vna_other"]] = (str(verneed.name), str(aux.name))
    return versym, defined, needed


def read_elf(data: bytes, name: str) -> _Elf:
    try:
        elf = ELFFile(io.BytesIO(data))
        dynsym = elf.get_section_by_name(".dynsym")
        soname, needed = None, []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                # pyelftools sets .needed / .soname on the tags it resolves through .dynstr
                for tag in cast(Any, section).iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(str(tag.needed))
                    elif tag.entry.d_tag == "DT_SONAME":
                        soname = str(tag.soname)
        versym, defined, version_needs = _versions(elf)
        exports: dict[str, set[str | None]] = defaultdict(set)
        imports: list[tuple[str, str | None, str | None]] = []
        symbols = dynsym.iter_symbols() if isinstance(dynsym, SymbolTableSection) else iter(())
        for index, sym in enumerate(symbols):
            if not sym.name or sym["st_info"]["type"] == "STT_SECTION":
                continue
            ndx = versym.get_symbol(index).entry["ndx"] if versym is not None else "VER_NDX_GLOBAL"
            ndx = ndx & ~_HIDDEN_BIT if isinstance(ndx, int) else None
            bind = sym["st_info"]["bind"]
            if sym["st_shndx"] == "SHN_UNDEF":
                if bind == "STB_GLOBAL":
                    library, version = version_needs.get(ndx, (None, None)) if ndx else (None, None)
                    imports.append((sym.name, version, library))
            elif bind in ("STB_GLOBAL", "STB_WEAK") and sym["st_other"]["visibility"] in _EXPORTED_VISIBILITY:
                exports[sym.name].add(defined.get(ndx) if ndx else UNVERSIONED)
    except (ELFError, ValueError, KeyError, AttributeError) as exc:
        raise SymbolsError(f"{name}: not a readable ELF file ({exc})") from None
    return _Elf(soname, needed, dict(exports), imports)


class Libraries:
    """The shared libraries of some directories, by soname (read lazily: torch's are large)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.paths: dict[str, Path] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise SymbolsError(f"{directory}: not a directory (--symbols-from wants a library directory)")
            found = 0
            for path in sorted(directory.iterdir()):
                if path.is_file() and (path.name.endswith(".so") or ".so." in path.name):
                    with path.open("rb") as f:
                        if f.read(4) != ELF_MAGIC:
                            continue
                    # the file name is what DT_NEEDED names for torch's and CUDA's wheels; a
                    # library whose soname differs is found under both
                    self.paths.setdefault(path.name, path)
                    found += 1
            if not found:
                raise SymbolsError(f"{directory}: holds no ELF shared library (*.so, *.so.N)")
        self._read: dict[str, _Elf] = {}

    def get(self, soname: str) -> _Elf | None:
        if soname not in self.paths:
            return None
        if soname not in self._read:
            path = self.paths[soname]
            self._read[soname] = read_elf(path.read_bytes(), str(path))
        return self._read[soname]


def _exports(lib: _Elf, symbol: str, version: str | None) -> bool:
    versions = lib.exports.get(symbol)
    if not versions:
        return False
    return version is None or version in versions


def check_symbols(binaries: Mapping[str, bytes], dirs: Sequence[Path]) -> list[MissingSymbol]:
    """Every symbol the ELF files of *binaries* (wheel path -> bytes) need from the libraries
    in *dirs* and do not get there (or from the wheel's own libraries)."""
    libs = Libraries(dirs)
    elves = {path: read_elf(data, path) for path, data in sorted(binaries.items()) if data[:4] == ELF_MAGIC}
    own = {Path(path).name: elf for path, elf in elves.items()}
    own.update({elf.soname: elf for elf in elves.values() if elf.soname})
    missing: list[MissingSymbol] = []
    for path, elf in elves.items():
        from_dirs = [n for n in elf.needed if libs.get(n) is not None]
        if not from_dirs:
            continue
        visible = {n: lib for n in elf.needed if (lib := own.get(n) or libs.get(n)) is not None}
        for symbol, version, library in elf.imports:
            if library is not None:
                if library in from_dirs and not _exports(libs.get(library), symbol, version):  # type: ignore[arg-type]
                    missing.append(MissingSymbol(path, symbol, version, (library,)))
                continue
            if symbol.startswith(INTERPRETER_PREFIXES):
                continue
            if not any(_exports(lib, symbol, None) for lib in visible.values()):
                missing.append(MissingSymbol(path, symbol, None, tuple(visible)))
    return missing
