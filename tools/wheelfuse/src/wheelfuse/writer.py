"""Writing the merged wheel (and the vendored tree) reproducibly and atomically.

Reproducible: members in a fixed order (sorted, `.dist-info` last, RECORD at the very end),
one timestamp for all (SOURCE_DATE_EPOCH when set, else 1980-01-01 00:00:00, the earliest
a zip can hold), mode 0644 or 0755 (executable if any input had an executable bit), Unix
as the creating system, deflate at a fixed level, no extra fields or comments.
Atomic: the wheel goes to a temporary name in the output directory, is read back by the
strict reader (RECORD verified) and renamed at the end; the vendored tree is staged the
same way. A failure removes what was staged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .archive import Member, read_wheel
from .errors import WheelError
from .plan import MergePlan
from .record import render_record, verify_record
from .wheelinfo import installed_paths

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_timestamp(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[int, ...]:
    value = environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return ZIP_EPOCH
    try:
        stamp = time.gmtime(int(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise WheelError("SOURCE_DATE_EPOCH", f"not a valid time: {value!r}") from exc
    if not 1980 <= stamp.tm_year <= 2107:
        raise WheelError(
            "SOURCE_DATE_EPOCH", f"{value} is outside what a zip can store (1980-2107)"
        )
    return tuple(stamp[:6])


def archive_order(plan: MergePlan) -> list[str]:
    prefix = plan.dist_info + "/"
    body = sorted(p for p in plan.files if not p.startswith(prefix))
    dist_info = sorted(p for p in plan.files if p.startswith(prefix))
    return body + dist_info


def _zip_member(zf: zipfile.ZipFile, name: str, member: Member, date_time: tuple[int, ...]) -> None:
    """Stream one member in; zipfile deflates at zlib's default level (6) and, on a seekable
    file, rewrites the local header with CRC and sizes (no data descriptor)."""
    info = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
    info.create_system = 3
    info.external_attr = (0o100755 if member.executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = member.size  # lets zipfile choose ZIP64 up front for a member over 2 GiB
    with zf.open(info, "w") as out:
        for chunk in member.chunks():
            out.write(chunk)


def write_wheel(plan: MergePlan, out_dir: Path, date_time: tuple[int, ...]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / plan.filename
    order = archive_order(plan)
    record = render_record(plan.record_path, ((p, plan.files[p]) for p in order))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{plan.filename}.", suffix=".tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as zf:
                for path in order:
                    _zip_member(zf, path, plan.files[path], date_time)
                _zip_member(zf, plan.record_path, Member.generated(record), date_time)
            raw.flush()
            os.fsync(raw.fileno())
        # Fail closed on the output too: the strict reader accepts it and RECORD holds.
        verify_record(plan.filename, plan.record_path, record, read_wheel(tmp))
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


@contextmanager
def staged_vendor_tree(plan: MergePlan, vendor_dir: Path) -> Iterator[None]:
    """Unpack the import packages under a staging directory; move them in on success.

    Refuses when a top-level name already exists in `vendor_dir`: remove the old copy
    first (nothing is overwritten silently).
    """
    tree = {
        installed: plan.files[path]
        for installed, path in installed_paths(plan.dist_info, plan.files).items()
    }
    tops = sorted({path.split("/", 1)[0] for path in tree})
    for top in tops:
        if (vendor_dir / top).exists() or (vendor_dir / top).is_symlink():
            raise WheelError(str(vendor_dir), "already exists; remove it before vendoring", top)
    vendor_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wheelfuse-vendor.", dir=vendor_dir))
    try:
        for path, member in tree.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for chunk in member.chunks():
                    out.write(chunk)
            target.chmod(0o755 if member.executable else 0o644)
        yield
        for top in tops:
            os.replace(staging / top, vendor_dir / top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
