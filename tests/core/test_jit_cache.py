"""The on-disk cache: integrity checks, concurrent writers, unwritable directories."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_corrupted_entry_is_detected_and_rebuilt(jit, capfd):
    first = jit.compile(name="corrupt_me")
    (entry,) = jit.entries()
    data = bytearray(entry.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit pattern inside the cubin
    entry.write_bytes(bytes(data))

    jit.init()  # drop the memory cache so the disk entry is read
    rebuilt = jit.compile(name="corrupt_me")
    assert rebuilt == first  # compiled again, not served the bad bytes
    err = capfd.readouterr().err
    assert "corrupt_me" in err and "checksum mismatch" in err and str(entry) in err

    jit.init()
    assert jit.compile(name="corrupt_me")["from_cache"] is True  # the rewrite is valid
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("keep", [0, 20, 60, -1])
def test_truncated_entry_is_detected_and_rebuilt(jit, capfd, keep):
    first = jit.compile(name="truncate_me")
    (entry,) = jit.entries()
    size = entry.stat().st_size
    with open(entry, "r+b") as f:
        f.truncate(keep % size)  # -1: one byte short
    jit.init()
    assert jit.compile(name="truncate_me") == first
    err = capfd.readouterr().err
    assert "is corrupted" in err and ("bad header" in err or "truncated" in err)
    jit.init()
    assert jit.compile(name="truncate_me")["from_cache"] is True


# Each worker imports deep_gemm, points it at the shared cache, waits until all workers
# are ready (a file barrier), then compiles the same kernel at the same moment.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[1], "tests", "core")]
    from conftest import WGMMA_SOURCE
    from deep_gemm import _C, _loader
    cache, barrier, index, count = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    _C.init(**dict(_loader.jit_paths(), cache_dir=cache))
    open(os.path.join(barrier, index), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(barrier)) < count:
        if time.time() > deadline:
            sys.exit("barrier timeout")
        time.sleep(0.001)
    print(json.dumps(_C.jit_compile("concurrent", WGMMA_SOURCE)))
    """
)


@pytest.mark.slow  # processes importing torch
def test_concurrent_processes_compile_the_same_kernel(jit, tmp_path):
    count = 4
    cache, barrier = tmp_path / "shared-cache", tmp_path / "barrier"
    barrier.mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", WORKER, str(REPO), str(cache), str(barrier), str(i), str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(count)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert "warning" not in err, err
        results.append(json.loads(out))
    assert len({r["size"] for r in results}) == 1
    compiled = sum(not r["from_cache"] for r in results)
    assert compiled >= 1
    print(f"{compiled} of {count} processes compiled, the others read the cache")

    files = [p for p in (cache / "cubin").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".entry", files  # no temporaries left
    jit.init(cache_dir=str(cache))
    assert jit.compile(name="concurrent")["from_cache"] is True  # and the entry is valid


def test_cache_dir_under_a_regular_file_falls_back_to_temp(jit, tmp_path, capfd):
    # Tests run as root, which ignores chmod: a path below a regular file is
    # unwritable for root too (mkdir fails with ENOTDIR).
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    wanted = blocker / "cache"
    jit.init(cache_dir=str(wanted))
    err = capfd.readouterr().err
    assert err.count("warning") == 1
    assert str(wanted) in err and "not writable" in err
    assert f"'{blocker}' exists and is not a directory" in err
    used = Path(jit.C.jit_cache_dir())
    assert used != wanted and used.is_dir() and str(used) in err
    assert jit.compile(name="fallback")["from_cache"] is False
    assert jit.compile(name="fallback")["from_cache"] is True
    assert len(jit.entries()) == 1 and jit.entries()[0].is_relative_to(used)
    assert capfd.readouterr().err == ""  # one warning, not one per compile


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_cache_dir_falls_back_to_temp(jit, tmp_path, capfd):
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    jit.init(cache_dir=str(read_only))
    err = capfd.readouterr().err
    assert err.count("warning") == 1 and str(read_only) in err and "Permission denied" in err
    assert jit.compile(name="read_only")["size"] > 0


def _read_only_bind(directory: Path) -> list[str] | None:
    """A command prefix that runs under a read-only bind mount of `directory` (a private
    mount namespace: needs CAP_SYS_ADMIN, which CI containers may lack), or None."""
    prefix = ["unshare", "-m", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"', str(directory)]
    probe = subprocess.run(prefix + ["sh", "-c", f'! touch "{directory}/probe"'], capture_output=True)
    return prefix if probe.returncode == 0 else None


@pytest.mark.slow  # processes importing torch
def test_read_only_mount_falls_back_to_temp(tmp_path):
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    prefix = _read_only_bind(cache)
    if prefix is None:
        pytest.skip("cannot make a read-only bind mount here (unshare -m / mount not permitted)")
    script = textwrap.dedent(
        """
        import json, sys
        sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests/core"]
        from conftest import WGMMA_SOURCE
        from deep_gemm import _C, _loader
        _C.init(**dict(_loader.jit_paths(), cache_dir=sys.argv[2]))
        print(json.dumps(dict(_C.jit_compile("ro", WGMMA_SOURCE), dir=_C.jit_cache_dir())))
        """
    )
    run = subprocess.run(prefix + [sys.executable, "-W", "ignore", "-c", script, str(REPO), str(cache)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["size"] > 0 and result["dir"] != str(cache)
    assert run.stderr.count("warning") == 1 and "Read-only file system" in run.stderr
    assert not Path(result["dir"]).exists()  # the temporary cache is removed at exit


def test_cache_entries_are_readable_by_other_users(jit):
    jit.compile(name="mode")
    (entry,) = jit.entries()
    assert entry.stat().st_mode & 0o777 == 0o644
