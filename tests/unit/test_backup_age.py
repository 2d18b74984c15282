"""Backups encrypted to age recipients (plugins/module_utils/backup.py writes, restore.py reads):
with the real age, zstd and a key pair made in tmp_path. The writer holds only the public key; the
private key reaches age by a pipe (never argv, environment or a file); a changed byte fails the
read loudly even when the manifest's sha256 was changed with it; a set whose key is not given is
not "bad" but stops the scan."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.collection import module_utils

PLAIN = b"".join(b"INSERT INTO reg_periksa VALUES (%d,'pasien');\n" % i for i in range(100_000))

pytestmark = pytest.mark.skipif(
    not (shutil.which("age") and shutil.which("age-keygen") and shutil.which("zstd")),
    reason="age, age-keygen and zstd are needed (scripts/setup installs age)",
)


def keypair(tmp_path: Path, name: str) -> tuple[str, str]:
    """(identity line AGE-SECRET-KEY-1..., recipient age1...), made with age-keygen."""
    path = tmp_path / f"{name}.key"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    secret = next(line for line in path.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    public = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True)
    path.unlink()
    return secret, public.stdout.strip()


@pytest.fixture
def keys(tmp_path):
    return {"right": keypair(tmp_path, "right"), "wrong": keypair(tmp_path, "wrong")}


@pytest.fixture
def backup():
    return module_utils("backup")


@pytest.fixture
def restore():
    script = module_utils("restore")
    yield script
    script.set_identity("")
    script.set_key("")


def write_set(backup, tmp_path: Path, recipient: str) -> tuple[Path, dict]:
    """A dump set as backup_take writes it: data.sql.zst.age and its manifest."""
    folder = tmp_path / "srv-simrs-01" / "20261203T010000Z-dump"
    folder.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    writer = backup.StreamWriter(level=3, key="", recipients=[recipient], prefix=[], workdir=str(work))
    size, digest = writer.write(str(folder / "data.sql.zst.age"), data=PLAIN)
    size_a, digest_a = writer.write(str(folder / "accounts.sql.zst.age"), data=b"FLUSH PRIVILEGES;\n")
    manifest = {
        "format": 1,
        "created_at": "2026-12-03T01:00:00Z",
        "source_host": "srv-simrs-01",
        "method": "dump",
        "databases": ["sik"],
        "compression": "zstd",
        "encrypted": True,
        "encryption": {"tool": "age", "format": "age-encryption.org/v1", "recipients": [recipient]},
        "files": [
            {"name": "data.sql.zst.age", "size": size, "sha256": digest},
            {"name": "accounts.sql.zst.age", "size": size_a, "sha256": digest_a},
        ],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, manifest


def scan_args(tmp_path: Path) -> dict:
    return {
        "source_host": "srv-simrs-01",
        "methods": ["dump", "physical"],
        "databases": ["sik"],
        "have_key": False,
        "hash_cache": str(tmp_path / "cache.json"),
        "hash_cache_seconds": 0,
    }


def test_a_set_written_to_a_recipient_is_age_and_reads_back_only_with_its_private_key(
    backup, restore, keys, tmp_path
):
    secret, public = keys["right"]
    folder, manifest = write_set(backup, tmp_path, public)
    data = folder / "data.sql.zst.age"
    assert data.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert PLAIN[:40] not in data.read_bytes()
    restore.set_identity(secret)
    reading = restore.open_stream(data, True, manifest["files"][0])
    # The private key is on no command line: age reads it from /dev/fd/N, a pipe.
    age = reading.procs[0]
    assert age.args[:3] == ["age", "--decrypt", "--identity"]
    assert age.args[3].startswith("/dev/fd/")
    assert not any(secret in str(arg) for arg in age.args)
    assert not any(secret in value for value in os.environ.values())
    assert reading.stream.read() == PLAIN
    restore.finish(reading, "load")
    assert restore.check_set(folder, scan_args(tmp_path)) == (manifest, None)


def test_without_the_private_key_the_scan_stops_at_the_set_instead_of_falling_back(
    backup, restore, keys, tmp_path
):
    _secret, public = keys["right"]
    folder, _manifest = write_set(backup, tmp_path, public)
    _, problem = restore.check_set(folder, scan_args(tmp_path))
    assert problem.startswith(restore.KEY_PROBLEM)
    assert "no backup_private_key" in problem
    mount = tmp_path / "disk"
    (mount / "simrs-backups").mkdir(parents=True)
    shutil.move(str(tmp_path / "srv-simrs-01"), str(mount / "simrs-backups" / "srv-simrs-01"))
    older = mount / "simrs-backups" / "srv-simrs-01" / "20261201T010000Z-dump"
    older.mkdir()  # an older set (unfinished here): the scan must not reach it
    result = restore.step_scan({**scan_args(tmp_path), "mount_point": str(mount), "write_hash_cache": False})
    assert result["chosen"] is None
    assert "no backup_private_key" in result["key_problem"]
    assert [c["set"] for c in result["checked"]] == ["20261203T010000Z-dump"]


def test_the_wrong_private_key_is_named_before_anything_is_read(backup, restore, keys, tmp_path):
    _secret, public = keys["right"]
    folder, _manifest = write_set(backup, tmp_path, public)
    restore.set_identity(keys["wrong"][0])
    _, problem = restore.check_set(folder, scan_args(tmp_path))
    assert problem.startswith(restore.KEY_PROBLEM)
    assert "not to the key in backup_private_key" in problem
    assert keys["wrong"][0] not in problem


def test_a_flipped_byte_fails_the_read_loudly_even_with_a_matching_sha256(backup, restore, keys, tmp_path):
    """age authenticates every 64 KiB chunk: a byte changed on the disk (and the manifest's sha256
    changed with it, so the hash check passes) still fails the step; nothing is loaded after it."""
    secret, public = keys["right"]
    folder, manifest = write_set(backup, tmp_path, public)
    data = folder / "data.sql.zst.age"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    entry = {**manifest["files"][0], "sha256": hashlib.sha256(raw).hexdigest()}
    restore.set_identity(secret)
    reading = restore.open_stream(data, True, entry)
    got = reading.stream.read()
    assert got != PLAIN
    with pytest.raises(restore.StepError, match="age exited"):
        restore.finish(reading, "load")


def test_an_age_binlog_is_decrypted_with_the_identity_and_refused_without(backup, restore, keys, tmp_path):
    secret, public = keys["right"]
    work = tmp_path / "work"
    work.mkdir()
    shipped = tmp_path / "disk" / "mysql-bin.000007.age"
    shipped.parent.mkdir()
    plain = b"binlog bytes " * 1000
    writer = backup.StreamWriter(level=None, key="", recipients=[public], prefix=[], workdir=str(work))
    writer.write(str(shipped), data=plain)
    assert restore.shipped_binlogs(shipped.parent, "mysql-bin") == {7: shipped}
    got, problem = restore.plain_binlog(shipped, tmp_path / "scratch")
    assert got is None
    assert "no backup_private_key" in problem
    restore.set_identity(secret)
    got, problem = restore.plain_binlog(shipped, tmp_path / "scratch")
    assert problem is None
    assert got.read_bytes() == plain
    assert oct(got.stat().st_mode & 0o777) == "0o600"


def test_only_public_keys_are_accepted_as_recipients(backup, keys):
    secret, public = keys["right"]
    assert backup.check_recipients([f" {public} ", ""]) == [public]
    with pytest.raises(backup.BackupError, match="PRIVATE key") as caught:
        backup.check_recipients([secret])
    assert secret not in str(caught.value)
    with pytest.raises(backup.BackupError, match="not an age public key"):
        backup.check_recipients(["age1short"])


def test_the_older_passphrase_sets_still_read(restore, tmp_path):
    """Sets made before (openssl enc, a passphrase) stay restorable: .enc goes to openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed")
    src = tmp_path / "data.zst"
    src.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=PLAIN, capture_output=True, check=True).stdout)
    enc = tmp_path / "data.sql.zst.enc"
    r, w = os.pipe()
    os.write(w, b"an-older-passphrase-1234\n")
    os.close(w)
    subprocess.run(
        [
            "openssl",
            "enc",
            "-aes-256-cbc",
            "-pbkdf2",
            "-salt",
            "-pass",
            f"fd:{r}",
            "-in",
            str(src),
            "-out",
            str(enc),
        ],
        check=True,
        pass_fds=(r,),
    )
    os.close(r)
    restore.set_key("an-older-passphrase-1234")
    reading = restore.open_stream(enc, True, None)
    assert reading.procs[0].args[0] == "openssl"
    assert reading.stream.read() == PLAIN
    restore.finish(reading, "load")
