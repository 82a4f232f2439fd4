"""Extension modules: which EXT_SUFFIX a platform uses, and whether a binary is a loadable
module for it (ELF through pyelftools, PE through pefile) that exports `PyInit_<name>`."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pefile
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .platforms import Platform

# Linux multiarch triplets CPython puts in EXT_SUFFIX, and the ELF machine of each arch.
_ELF_ARCHES: dict[str, tuple[str, str, int]] = {
    # wheel arch: (triplet stem, e_machine, ELF class)
    "x86_64": ("x86_64-linux", "EM_X86_64", 64),
    "aarch64": ("aarch64-linux", "EM_AARCH64", 64),
    "i686": ("i386-linux", "EM_386", 32),
    "ppc64le": ("powerpc64le-linux", "EM_PPC64", 64),
    "s390x": ("s390x-linux", "EM_S390", 64),
    "riscv64": ("riscv64-linux", "EM_RISCV", 64),
    "armv7l": ("arm-linux", "EM_ARM", 32),
}
_PE_MACHINES = {
    "win_amd64": "IMAGE_FILE_MACHINE_AMD64",
    "win32": "IMAGE_FILE_MACHINE_I386",
    "win_arm64": "IMAGE_FILE_MACHINE_ARM64",
}

# Any CPython-versioned extension module:
# name.cpython-312-x86_64-linux-gnu.so, name.cp312-win_amd64.pyd
MODULE_NAME = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\."
    r"(?:cpython-(?P<elf_ver>3\d+)(?P<elf_t>t?)-(?P<elf_plat>[^.]+)\.so"
    r"|cp(?P<pe_ver>3\d+)(?P<pe_t>t?)-(?P<pe_plat>[^.]+)\.pyd)$"
)


@dataclass(frozen=True)
class Target:
    """How extension modules look on one wheel platform."""

    format: str  # "ELF" or "PE"
    machine: str
    bits: int
    suffix_platform: str  # "x86_64-linux-gnu" or "win_amd64"

    def ext_suffix(self, abi: str) -> str:
        if self.format == "PE":
            return f".{abi}-{self.suffix_platform}.pyd"
        return f".cpython-{abi.removeprefix('cp')}-{self.suffix_platform}.so"


def target_for(platform: Platform) -> Target | None:
    if platform.tag in _PE_MACHINES:
        return Target(
            "PE", _PE_MACHINES[platform.tag], 64 if platform.tag != "win32" else 32, platform.tag
        )
    arch = platform.arch or platform.tag.removeprefix("linux_")
    if platform.family in ("manylinux", "musllinux") or platform.tag.startswith("linux_"):
        if arch not in _ELF_ARCHES:
            return None
        stem, machine, bits = _ELF_ARCHES[arch]
        libc = (
            "musl"
            if platform.family == "musllinux"
            else ("gnueabihf" if arch == "armv7l" else "gnu")
        )
        return Target("ELF", machine, bits, f"{stem}-{libc}")
    return None


@dataclass(frozen=True)
class ModuleFile:
    path: str  # as installed (relative to site-packages)
    module: str  # dotted name, e.g. deep_gemm._C
    abi: str  # cp312, cp314t
    suffix_platform: str


def parse_module_path(path: str) -> ModuleFile | None:
    directory, _, basename = path.rpartition("/")
    m = MODULE_NAME.match(basename)
    if m is None:
        return None
    version = m["elf_ver"] or m["pe_ver"]
    threaded = m["elf_t"] or m["pe_t"] or ""
    module = ".".join([*directory.split("/"), m["name"]]) if directory else m["name"]
    return ModuleFile(path, module, f"cp{version}{threaded}", m["elf_plat"] or m["pe_plat"])


def _check_elf(data: bytes, target: Target, symbol: str) -> str | None:
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != target.bits:
            return f"ELF{elf.elfclass}, expected ELF{target.bits}"
        if elf["e_machine"] != target.machine:
            return f"machine {elf['e_machine']}, expected {target.machine}"
        if elf["e_type"] != "ET_DYN":
            return f"ELF type {elf['e_type']}, expected a shared object (ET_DYN)"
        for section in elf.iter_sections():
            if isinstance(section, SymbolTableSection) and section["sh_type"] == "SHT_DYNSYM":
                for sym in section.get_symbol_by_name(symbol) or []:
                    if (
                        sym["st_shndx"] != "SHN_UNDEF"
                        and sym["st_info"]["type"] == "STT_FUNC"
                        and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
                        and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")
                    ):
                        return None
    except (ELFError, ValueError, KeyError, AttributeError, TypeError) as exc:
        return f"not a valid ELF file ({exc})"
    return f"does not export {symbol}"


def _check_pe(data: bytes, target: Target, symbol: str) -> str | None:
    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(
            directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]]
        )
    except pefile.PEFormatError as exc:
        return f"not a valid PE file ({exc})"
    machine = pefile.MACHINE_TYPE.get(pe.FILE_HEADER.Machine, hex(pe.FILE_HEADER.Machine))
    if machine != target.machine:
        return f"machine {machine}, expected {target.machine}"
    if not pe.is_dll():
        return "PE file is not a DLL"
    exports = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    names = {s.name for s in exports.symbols} if exports else set()
    if symbol.encode() not in names:
        return f"does not export {symbol}"
    return None


def check_module_binary(data: bytes, target: Target, module: str) -> str | None:
    """None if `data` is a loadable module for `target` exporting PyInit_<last part>."""
    symbol = "PyInit_" + module.rpartition(".")[2]
    if target.format == "PE":
        return _check_pe(data, target, symbol)
    return _check_elf(data, target, symbol)
