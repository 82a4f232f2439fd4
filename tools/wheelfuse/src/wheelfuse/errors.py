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
    """Not a zip, truncated, duplicate entries, unsafe names, links, absurd sizes."""


class RecordMismatch(WheelError):
    """RECORD is malformed, or does not describe the archive's files exactly."""


class InvalidWheel(WheelError):
    """The archive is a zip but not a usable wheel (name, WHEEL, dist-info, tags)."""


class IncompatibleInputs(WheelError):
    """The inputs cannot be merged: names, versions, METADATA, tags or platforms differ."""


class PathConflict(WheelError):
    """A path is in several inputs with different bytes, and no override names it."""
