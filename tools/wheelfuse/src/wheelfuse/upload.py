"""What PyPI checks at upload, offline, beyond what `load_wheel` already proves (an
unambiguous archive, RECORD matching every file, WHEEL's tags equal to the file name's):

- the file name's compressed tag parts sorted (PEP 425; `packaging` validates the order);
- WHEEL's `Tag:` lines expanded, one tag each;
- METADATA as `twine check --strict` judges it: every field known and well formed
  (`packaging.metadata`, as twine validates it), a long description with a content type,
  reStructuredText that renders (`readme_renderer`, twine's renderer);
- the file size against PyPI's default upload limit (a warning: projects may get more).
"""

from __future__ import annotations

import email.message
import io
from dataclasses import dataclass

from packaging.metadata import ExceptionGroup, Metadata, parse_email
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from .wheelinfo import LoadedWheel, unexpanded_tag_lines

PYPI_DEFAULT_LIMIT = 100 << 20  # warehouse's MAX_FILESIZE: 100 MiB, refused when exceeded


@dataclass(frozen=True)
class Finding:
    check: str  # "tags" | "metadata" | "size"
    message: str
    path: str | None = None


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    message = email.message.EmailMessage()
    message["content-type"] = value
    return message.get_content_type(), dict(message["content-type"].params)


def metadata_findings(wheel: LoadedWheel) -> list[Finding]:
    """What `twine check --strict` fails on (its warnings count, as --strict makes them)."""
    path = wheel.dist_info_path("METADATA")
    raw, unparsed = parse_email(wheel.metadata)
    # twine drops setuptools' License-File lines under Metadata-Version < 2.4, as PyPI does.
    if Version(raw.get("metadata_version", "0")) < Version("2.4"):
        raw.pop("license_files", None)
        unparsed.pop("license-file", None)
    found = [
        Finding("metadata", f"unrecognized or malformed field {key!r}", path) for key in unparsed
    ]
    try:
        Metadata.from_raw(raw)
    except ExceptionGroup as group:
        found += [Finding("metadata", str(e), path) for e in group.exceptions]
    description = raw.get("description")
    content_type = raw.get("description_content_type")
    if content_type is None:
        found.append(Finding("metadata", "Description-Content-Type missing", path))
        content_type = "text/x-rst"
    if not description or description.rstrip() == "UNKNOWN":
        found.append(Finding("metadata", "long description missing", path))
        return found
    kind, params = _content_type(content_type)
    if kind in ("text/plain", "text/markdown"):
        return found  # rendering these cannot fail
    # readme_renderer is imported here: docutils is slow to import and only rst needs it.
    import readme_renderer.rst

    warnings = io.StringIO()
    if readme_renderer.rst.render(description, stream=warnings, **params) is None:
        detail = " ".join(warnings.getvalue().split())
        found.append(
            Finding("metadata", f"the reStructuredText description does not render: {detail}", path)
        )
    return found


def upload_findings(wheel: LoadedWheel, size: int) -> tuple[list[Finding], list[Finding]]:
    """(problems, warnings) for uploading this wheel to PyPI."""
    problems: list[Finding] = []
    try:
        parse_wheel_filename(wheel.source, validate_order=True)
    except InvalidWheelFilename as exc:
        problems.append(Finding("tags", str(exc)))
    for line in unexpanded_tag_lines(wheel.wheel):
        problems.append(
            Finding(
                "tags",
                f"Tag line {line!r} is not one expanded tag (or is repeated)",
                wheel.dist_info_path("WHEEL"),
            )
        )
    problems += metadata_findings(wheel)
    warnings = []
    if size > PYPI_DEFAULT_LIMIT:
        warnings.append(
            Finding(
                "size",
                f"{size} bytes ({size / (1 << 20):.1f} MiB) is over PyPI's default upload limit"
                f" of {PYPI_DEFAULT_LIMIT} bytes (100 MiB): ask PyPI for a larger limit first",
            )
        )
    return problems, warnings
