"""The backup format's names and patterns, shared by the writers and the reader (issue 15):
module_utils/backup_format.py."""

from __future__ import annotations

import pytest

from tests.unit.collection import module_utils


@pytest.fixture
def fmt():
    return module_utils("backup_format")


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("mysql-bin.000007", ("mysql-bin", "000007", None)),
        ("mysql-bin.000007.age", ("mysql-bin", "000007", ".age")),
        ("mysql-bin.000007.enc", ("mysql-bin", "000007", ".enc")),
        ("srv.example-bin.000123", ("srv.example-bin", "000123", None)),
        ("mysql-bin.000007.sha256", None),
        (".mysql-bin.000007.age.tmp", None),
        ("mysql-bin.index", None),
    ],
)
def test_one_binlog_pattern_for_the_shipper_the_listing_and_the_restore(fmt, name, parts):
    match = fmt.BINLOG_RE.match(name)
    assert (match and (match["base"], match["number"], match["suffix"])) == (parts if parts else None)


def test_the_writer_and_the_reader_share_the_same_objects(fmt):
    backup, restore = module_utils("backup"), module_utils("restore")
    for name in ("AGE_SUFFIX", "BINLOG_RE", "UTC", "iso", "parse_iso", "encryption_tool"):
        assert getattr(backup, name) is getattr(fmt, name)
        assert getattr(restore, name) is getattr(fmt, name)
    assert restore.quote("it's") == fmt.quote_str("it's") == "'it\\'s'"


def test_times_and_suffixes(fmt):
    moment = fmt.parse_iso("2026-12-03T01:00:00Z")
    assert fmt.iso(moment) == "2026-12-03T01:00:00Z"
    assert fmt.parse_iso("2026-12-03T08:00:00+07:00") == moment
    with pytest.raises(ValueError, match="no time zone"):
        fmt.parse_iso("2026-12-03T01:00:00")
    assert fmt.file_suffix({"encrypted": True, "encryption": {"tool": "age"}}) == ".age"
    assert fmt.file_suffix({"encrypted": True, "encryption": {"tool": "openssl enc"}}) == ".enc"
    assert fmt.file_suffix({"encrypted": False}) == ""
