"""Exceptions. Every refusal names the input it is about and, where there is one, the path."""

from __future__ import annotations


class WheelError(Exception):
    """A wheel, or a set of wheels, cannot be used as asked."""

    def __init__(self, source: str, message: str, path: str | None = None) -> None:
        self.source = source
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.path, self.message) if part)


class UnsafeArchive(WheelError):
    """The archive is not a zip, or not an unambiguous one: `rule` names the rule it breaks
    (layout, eocd, zip64, central, local-header, descriptor, data, name, mode, flags,
    method, sizes, extra, limits, io, changed)."""

    def __init__(self, source: str, message: str, path: str | None = None, *, rule: str) -> None:
        self.rule = rule
        super().__init__(source, f"{message} [rule: {rule}]", path)


class RecordMismatch(WheelError):
    """RECORD is malformed, or does not describe the archive's files exactly."""


class InvalidWheel(WheelError):
    """The archive is a zip but not a usable wheel (name, WHEEL, dist-info, tags)."""


class IncompatibleInputs(WheelError):
    """The inputs cannot be merged: names, versions, METADATA, tags or platforms differ."""


class PathConflict(WheelError):
    """A path is in several inputs with different bytes, and no override names it."""
