"""The restore reads a set's file once (plugins/module_utils/restore.py, run by restore_step): the
bytes go to sha256 and to (openssl,) zstd in one pass, and the step fails on a hash that does not
match the manifest before it looks at the tools. Also: the row counts' split over parallel clients,
and a cached hash dropped when the file fails its check. With the real zstd and openssl."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.collection import module_utils

PLAIN = b"".join(b"INSERT INTO reg_periksa VALUES (%d);\n" % i for i in range(200_000))
KEY = "unit-test-only-key"  # a throwaway passphrase for a file made in tmp_path


@pytest.fixture
def restore_script():
    return module_utils("restore")


@pytest.fixture
def packed(tmp_path, monkeypatch) -> dict[str, Path]:
    """data.zst and data.zst.enc of PLAIN, as a backup writes them."""
    if not (shutil.which("zstd") and shutil.which("openssl")):
        pytest.skip("zstd and openssl are needed")
    monkeypatch.setenv("SIMRS_RESTORE_KEY", KEY)
    plain = tmp_path / "data"
    plain.write_bytes(PLAIN)
    subprocess.run(["zstd", "-q", "-3", str(plain), "-o", str(tmp_path / "data.zst")], check=True)
    subprocess.run(
        [
            *("openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "env:SIMRS_RESTORE_KEY"),
            *("-in", str(tmp_path / "data.zst"), "-out", str(tmp_path / "data.zst.enc")),
        ],
        check=True,
    )
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
