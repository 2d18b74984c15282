"""The backup format of docs/backup-format.md in one place: the writers (module_utils/backup.py and
the backup_* modules) and the reader (module_utils/restore.py) import these names, patterns, time
formats, file names and suffixes, encryption tools and SQL quoting from here, so that the two sides
cannot drift apart. Standard library only; runs on the servers' Python 3.9.
"""

from __future__ import annotations

import datetime as dt
import re

FORMAT = 1
ROOT_DIR = "simrs-backups"
BINLOG_DIR = "binlogs"
MARKER = ".simrs-backup-disk"
MANIFEST = "manifest.json"
VERIFY = "verify.json"
LOCK = ".lock"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
METHODS = ("dump", "physical")
# A set this format writes: <stamp>-<method>.
SET_RE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<method>dump|physical)$")
# Any folder shaped like a set, whatever its method: the restore reads it and says why it cannot
# use a method it does not know (instead of not seeing the set at all).
SET_NAME_ANY = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<method>[a-z]+)$")
# Dot-directories are never read as sets: a set being written, or one being deleted.
HIDDEN_RE = re.compile(r"^\.(?P<name>\d{8}T\d{6}Z-(?:dump|physical))\.(?P<kind>partial|deleting)$")
# A shipped binary log: mysql-bin.NNNNNN, encrypted .age (to recipients) or .enc (the older
# passphrase); its .sha256 and a dot-name (a copy in flight) are not logs.
BINLOG_RE = re.compile(r"^(?P<base>[^./][^/]*?)\.(?P<number>\d{6})(?P<suffix>\.age|\.enc)?$")

DATA_FILES = {"dump": "data.sql.zst", "physical": "data.mbstream.zst"}
ACCOUNTS_FILE = "accounts.sql.zst"
AGE_SUFFIX = ".age"
ENC_SUFFIX = ".enc"
# The older passphrase scheme; the passphrase follows as ["-pass", "fd:N"] (a pipe): never on a
# command line or in an environment.
OPENSSL_ENC = ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-salt"]
OPENSSL_DEC = ["openssl", "enc", "-d", "-aes-256-cbc", "-pbkdf2"]

# Not the datetime module's UTC constant (3.11): the servers' Python may be 3.9 (Debian 11).
UTC = dt.timezone.utc


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def parse_iso(text: str) -> dt.datetime:
    """A manifest's time (2026-12-03T01:00:00Z); other ISO 8601 forms with a zone are read too.
    ValueError for anything else (a time without a zone is refused, not taken as local)."""
    try:
        return dt.datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone") from None
        return moment.astimezone(UTC)


def parse_stamp(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)


def encryption_tool(manifest: dict) -> str:
    """'age' (to recipients), 'openssl' (the older passphrase sets) or '' (a plain set)."""
    if not manifest.get("encrypted"):
        return ""
    return "age" if (manifest.get("encryption") or {}).get("tool") == "age" else "openssl"


def file_suffix(manifest: dict) -> str:
    """What the set's data and account files end in after .zst: .age, .enc or nothing."""
    return {"age": AGE_SUFFIX, "openssl": ENC_SUFFIX, "": ""}[encryption_tool(manifest)]


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_str(value: str) -> str:
    """A string literal for the mariadb client (no bind parameters there)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
