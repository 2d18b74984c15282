"""The restore role's scan (plugins/module_utils/restore.py, run by restore_step) trusts its own
recent hash of an unchanged file, so the takeover after a pre-staging does not read a large set
again; a changed file, an old hash or a zero setting is read in full."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.unit.collection import module_utils


@pytest.fixture
def restore_script():
    return module_utils("restore")


def make_set(root: Path) -> Path:
    folder = root / "simrs-backups" / "simrs-primary" / "20261126T010000Z-dump"
    folder.mkdir(parents=True)
    data = b"INSERT INTO pasien VALUES (1);\n" * 1000
    (folder / "data.sql.zst").write_bytes(data)
    manifest = {
        "format": 1,
        "source_host": "simrs-primary",
        "method": "dump",
        "databases": ["sik"],
        "created_at": "2026-11-26T01:00:00Z",
        "files": [{"name": "data.sql.zst", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (root / ".simrs-backup-disk").write_text("label=SIMRS-BACKUP\n")
    return folder


def scan(module, root: Path, cache: Path, seconds: int = 3600) -> dict:
    return module.step_scan(
        {
            "mount_point": str(root),
            "source_host": "simrs-primary",
            "methods": ["dump", "physical"],
            "databases": ["sik"],
            "have_key": False,
            "hash_cache": str(cache),
            "hash_cache_seconds": seconds,
            "write_hash_cache": True,
        }
    )


def test_an_unchanged_file_is_hashed_once_a_changed_one_again(restore_script, tmp_path, monkeypatch):
    folder = make_set(tmp_path / "disk")
    cache = tmp_path / "local" / ".hash-cache.json"
    reads = []
    real = restore_script.sha256_of
    monkeypatch.setattr(restore_script, "sha256_of", lambda p: reads.append(p) or real(p))

    assert scan(restore_script, tmp_path / "disk", cache)["chosen"]["set"] == folder.name
    assert len(reads) == 1
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    assert scan(restore_script, tmp_path / "disk", cache)["chosen"]["set"] == folder.name
    assert len(reads) == 1  # trusted: same size and modification time, hashed just now

    # Bytes flipped and the time touched: read again, and found corrupt.
    data = folder / "data.sql.zst"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF
    data.write_bytes(bytes(raw))
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 1_000_000_000))
    result = scan(restore_script, tmp_path / "disk", cache)
    assert len(reads) == 2
    assert result["chosen"] is None
    assert "corrupt" in result["checked"][0]["problem"]


def test_no_cache_when_switched_off(restore_script, tmp_path, monkeypatch):
    make_set(tmp_path / "disk")
    cache = tmp_path / "local" / ".hash-cache.json"
    reads = []
    real = restore_script.sha256_of
    monkeypatch.setattr(restore_script, "sha256_of", lambda p: reads.append(p) or real(p))
    scan(restore_script, tmp_path / "disk", cache, seconds=0)
    scan(restore_script, tmp_path / "disk", cache, seconds=0)
    assert len(reads) == 2
    assert not cache.exists()
