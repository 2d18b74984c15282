"""The restore reads a set's file once (plugins/module_utils/restore.py, run by restore_step): the
bytes go to sha256 and to (openssl,) zstd in one pass, and the step fails on a hash that does not
match the manifest before it looks at the tools. Also: the row counts' split over parallel clients,
and a cached hash dropped when the file fails its check. With the real zstd and openssl."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.collection import load, module_utils

PLAIN = b"".join(b"INSERT INTO reg_periksa VALUES (%d);\n" % i for i in range(200_000))
KEY = "unit-test-only-key"  # a throwaway passphrase for a file made in tmp_path


@pytest.fixture
def restore_script():
    script = module_utils("restore")
    script.set_key(KEY)  # what restore_step does with its no_log option encryption_key
    yield script
    script.set_key("")


def encrypt(src: Path, dest: Path) -> None:
    """As a backup encrypts (backup.py: openssl enc, the key in openssl's own environment)."""
    subprocess.run(
        [
            *("openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "env:SIMRS_BACKUP_KEY"),
            *("-in", str(src), "-out", str(dest)),
        ],
        check=True,
        env={**os.environ, "SIMRS_BACKUP_KEY": KEY},
    )


@pytest.fixture
def packed(tmp_path) -> dict[str, Path]:
    """data.zst and data.zst.enc of PLAIN, as a backup writes them."""
    if not (shutil.which("zstd") and shutil.which("openssl")):
        pytest.skip("zstd and openssl are needed")
    plain = tmp_path / "data"
    plain.write_bytes(PLAIN)
    subprocess.run(["zstd", "-q", "-3", str(plain), "-o", str(tmp_path / "data.zst")], check=True)
    encrypt(tmp_path / "data.zst", tmp_path / "data.zst.enc")
    return {"plain": tmp_path / "data.zst", "encrypted": tmp_path / "data.zst.enc"}


def entry(path: Path, **override) -> dict:
    data = path.read_bytes()
    return {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **override}


@pytest.mark.parametrize("kind", ["plain", "encrypted"])
def test_a_good_file_is_read_once_hashed_and_decompressed(restore_script, packed, kind):
    path = packed[kind]
    reading = restore_script.open_stream(path, kind == "encrypted", entry(path))
    assert reading.stream.read() == PLAIN
    restore_script.finish(reading, "reading")
    assert reading.feed.size == path.stat().st_size
    assert reading.feed.digest == entry(path)["sha256"]


def test_the_passphrase_reaches_openssl_by_a_pipe_never_by_argv_or_environment(restore_script, packed):
    path = packed["encrypted"]
    reading = restore_script.open_stream(path, True, entry(path))
    openssl = reading.procs[0]
    assert openssl.args[0] == "openssl"
    assert not any(KEY in arg for arg in openssl.args)
    assert "-pass" in openssl.args
    assert openssl.args[openssl.args.index("-pass") + 1].startswith("fd:")
    assert not any(KEY in value for value in os.environ.values())
    assert reading.stream.read() == PLAIN
    restore_script.finish(reading, "reading")
    # The pipe's end in this process is closed again: no descriptor left holding the key.
    fd = int(openssl.args[openssl.args.index("-pass") + 1][3:])
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_an_encrypted_set_without_the_key_fails_the_step(restore_script, packed):
    restore_script.set_key("")
    with pytest.raises(restore_script.StepError, match="no restore_encryption_key"):
        restore_script.open_stream(packed["encrypted"], True, entry(packed["encrypted"]))


def test_an_encrypted_binlog_is_decrypted_with_the_key_and_refused_without(restore_script, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed")
    plain = tmp_path / "mysql-bin.000007"
    plain.write_bytes(b"binlog bytes " * 1000)
    shipped = tmp_path / "disk" / "mysql-bin.000007.enc"
    shipped.parent.mkdir()
    encrypt(plain, shipped)
    scratch = tmp_path / "scratch"
    got, problem = restore_script.plain_binlog(shipped, scratch)
    assert problem is None
    assert got.read_bytes() == plain.read_bytes()
    assert oct(got.stat().st_mode & 0o777) == "0o600"
    restore_script.set_key("")
    got, problem = restore_script.plain_binlog(shipped, scratch)
    assert got is None
    assert "no restore_encryption_key" in problem


@pytest.mark.parametrize("kind", ["plain", "encrypted"])
def test_a_hash_that_does_not_match_fails_the_step(restore_script, packed, kind):
    path = packed[kind]
    reading = restore_script.open_stream(path, kind == "encrypted", entry(path, sha256="0" * 64))
    reading.stream.read()
    with pytest.raises(restore_script.StepError, match="does not match the manifest"):
        restore_script.finish(reading, "reading")


def test_corrupt_bytes_are_named_as_corruption_not_as_the_tool_failing(restore_script, packed):
    path = packed["plain"]
    good = entry(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reading = restore_script.open_stream(path, False, good)
    reading.stream.read()
    with pytest.raises(restore_script.StepError, match="does not match the manifest"):
        restore_script.finish(reading, "reading")
    # Read to its end although zstd may have stopped early: the whole file was hashed.
    assert reading.feed.size == len(data)


def test_good_bytes_that_the_tool_refuses_fail_with_the_tools_message(restore_script, tmp_path):
    if not shutil.which("zstd"):
        pytest.skip("zstd is needed")
    path = tmp_path / "data.zst"
    path.write_bytes(b"not zstd at all\n" * 1000)
    reading = restore_script.open_stream(path, False, entry(path))
    reading.stream.read()
    with pytest.raises(restore_script.StepError, match="zstd exited"):
        restore_script.finish(reading, "reading")


@pytest.mark.parametrize(
    ("rows", "workers", "lists"),
    [
        ({"sik.a": 10}, 2, [["sik.a"]]),
        ({"sik.a": 100, "sik.b": 90, "sik.c": 20, "sik.d": 5}, 2, [["sik.a", "sik.d"], ["sik.b", "sik.c"]]),
        ({"sik.a": 1, "sik.b": 1, "sik.c": 1}, 1, [["sik.a", "sik.b", "sik.c"]]),
        ({"sik.a": 0, "sik.b": 0}, 4, [["sik.a"], ["sik.b"]]),
    ],
)
def test_the_row_counts_are_spread_by_rows_over_the_clients(restore_script, rows, workers, lists):
    tables = [(key, "sik__restore_x", key.split(".")[1]) for key in rows]
    got = restore_script.spread(tables, rows, workers)
    assert [[stmt.split("'")[1] for stmt in part] for part in got] == lists
    assert all(
        stmt.startswith("SELECT 'sik.") and "`sik__restore_x`." in stmt for part in got for stmt in part
    )


def test_a_file_that_failed_its_check_is_hashed_again_by_the_next_scan(restore_script, tmp_path):
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"/disk/a": {"sha256": "x"}, "/disk/b": {"sha256": "y"}}))
    restore_script.forget_hash(str(cache), Path("/disk/a"))
    assert json.loads(cache.read_text()) == {"/disk/b": {"sha256": "y"}}
    restore_script.forget_hash(None, Path("/disk/b"))  # no cache: nothing to do
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_a_backup_encrypted_by_pipe_is_restored_by_pipe(restore_script, tmp_path):
    """backup.py's StreamWriter (backup_take, binlog shipping) and the test restore's decode_chain
    hand the passphrase to openssl by a pipe too, and what they write the restore reads."""
    if not (shutil.which("zstd") and shutil.which("openssl")):
        pytest.skip("zstd and openssl are needed")
    backup = module_utils("backup")
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def watch(cmd, *args, **kwargs):
        started.append(list(cmd))
        assert KEY not in str(kwargs.get("env") or {})
        return real_popen(cmd, *args, **kwargs)

    dest = tmp_path / "data.sql.zst.enc"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", watch)
        size, digest = backup.StreamWriter(level=3, key=KEY, prefix=[], workdir=str(tmp_path)).write(
            str(dest), data=PLAIN
        )
        test_restore = load("plugins/modules/backup_test_restore.py")
        procs = test_restore.decode_chain(str(dest), True, KEY, [], str(tmp_path))
        with procs[-1].stdout as plain:
            assert plain.read() == PLAIN
        for proc in procs:
            proc.wait()
    assert [c for c in started if c[0] == "openssl"]
    assert not any(KEY in arg for cmd in started for arg in cmd)
    assert size == dest.stat().st_size
    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest()
    reading = restore_script.open_stream(dest, True, entry(dest))
    assert reading.stream.read() == PLAIN
    restore_script.finish(reading, "reading")
