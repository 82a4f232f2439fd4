"""Fuzzing: real wheels mutated byte by byte and structurally. Each tool either refuses with
its own error (exit 1, `<tool>: error: ...` or a failed report) or, for merge-wheels,
writes a wheel that the strict reader accepts again. No other exception, no hang (the
deadline), nothing half-written (no file, not even a temporary one, after a refusal).

WHEELFUSE_FUZZ_EXAMPLES raises the number of examples per strategy (default 120)."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wheelfuse.check_cli import main as check_main
from wheelfuse.merge_cli import main as merge_main
from wheelfuse.wheelinfo import load_wheel

EXAMPLES = int(os.environ.get("WHEELFUSE_FUZZ_EXAMPLES", "120"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=20),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def structure(raw: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every integer field of the end record, central entries and local
    headers: the places a structural mutation aims at."""
    fields: list[tuple[int, int]] = []
    eocd = raw.rindex(b"PK\x05\x06")
    fields += [(eocd + o, w) for o, w in ((4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2))]
    count, _, offset = struct.unpack_from("<HII", raw, eocd + 10)
    central = [
        (4, 2),
        (6, 2),
        (8, 2),
        (10, 2),
        (16, 4),
        (20, 4),
        (24, 4),
        (28, 2),
        (30, 2),
        (32, 2),
        (34, 2),
        (38, 4),
        (42, 4),
    ]
    local = [(4, 2), (6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)]
    for _ in range(count):
        fields += [(offset + o, w) for o, w in central]
        header = struct.unpack_from("<I", raw, offset + 42)[0]
        fields += [(header + o, w) for o, w in local]
        nlen, elen, clen = struct.unpack_from("<HHH", raw, offset + 28)
        offset += 46 + nlen + elen + clen
    return fields


@st.composite
def byte_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
        if not data:
            break
    return bytes(data)


@st.composite
def structural_mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    data = bytearray(raw)
    fields = structure(raw)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "field", "field", "prepend", "append", "eocd", "swap"]))
        if op == "field":
            at, width = draw(st.sampled_from(fields))
            if at + width > len(data):
                continue
            current = int.from_bytes(data[at : at + width], "little")
            top = (1 << (8 * width)) - 1
            value = draw(st.sampled_from([0, 1, top, current + 1, current - 1, current ^ 0x0800, current * 2]))
            data[at : at + width] = (value & top).to_bytes(width, "little")
        elif op == "prepend":
            data[0:0] = draw(st.binary(min_size=1, max_size=64))
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "eocd":
            eocd = data.rfind(b"PK\x05\x06")
            if eocd >= 0:
                data += data[eocd : eocd + 22]
        else:  # two central entries' header offsets exchanged
            offsets = [at for at, width in fields if width == 4]
            a, b = draw(st.sampled_from(offsets)), draw(st.sampled_from(offsets))
            data[a : a + 4], data[b : b + 4] = data[b : b + 4], data[a : a + 4]
    return bytes(data)


def run_tools(mutated: bytes, name: str, other: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as work:
        wheel = Path(work) / "in" / name
        wheel.parent.mkdir()
        wheel.write_bytes(mutated)
        out = Path(work) / "out"
        code = merge_main([str(other), str(wheel), "-o", str(out)])
        err = capsys.readouterr().err
        written = sorted(out.iterdir()) if out.exists() else []
        # --hypothesis-show-statistics shows which rules the mutations hit.
        event("merged" if code == 0 else err.partition("[rule: ")[2].partition("]")[0] or "other")
        if code == 0:
            assert len(written) == 1, written
            load_wheel(written[0])  # the strict reader accepts what was written
        else:
            assert code == 1, err
            assert err.startswith("merge-wheels: error: "), err
            assert written == [], written
        code = check_main([str(wheel), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert code == (0 if report["ok"] else 1)


@pytest.fixture(scope="module")
def target(native_wheels: dict[str, Path]) -> tuple[bytes, str, Path]:
    if not {"cp311", "cp312"} <= set(native_wheels):
        pytest.skip("needs CPython 3.11 and 3.12 under /root/.pyenv/versions")
    wheel = native_wheels["cp312"]
    return wheel.read_bytes(), wheel.name, native_wheels["cp311"]


@SETTINGS
@given(data=st.data())
def test_byte_mutations(target, capsys, data) -> None:
    raw, name, other = target
    run_tools(data.draw(byte_mutations(raw)), name, other, capsys)


@SETTINGS
@given(data=st.data())
def test_structural_mutations(target, capsys, data) -> None:
    raw, name, other = target
    run_tools(data.draw(structural_mutations(raw)), name, other, capsys)
