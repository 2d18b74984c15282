"""The journal never holds a secret: values under a secret-named key (by name), and the inventory's
known secret values wherever they appear in text (a password quoted in a failure message, a token
in a URL). The values are learned from the inventory once, where the journal is built."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator import settings
from orchestrator.ansible import AnsibleGateway
from orchestrator.cli import base
from orchestrator.journal import MIN_SECRET_LENGTH, Journal, scrub
from orchestrator.secrets import secret_values

REPO = Path(__file__).resolve().parents[2]
DB_PASSWORD = "db-Pass-9931"  # noqa: S105 (throwaway values made up for this test)
TOKEN = "tok-77aa-webhook"  # noqa: S105


def stored_text(path: Path) -> bytes:
    """Everything SQLite has on disk for the journal (the database and its write-ahead log)."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_a_known_secret_is_replaced_inside_any_text(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.learn_secrets([DB_PASSWORD, TOKEN, "abc", ""])
    event = journal.append(
        "INC-1",
        "fact",
        {
            "detail": f"mysql: Access denied for user 'app' (using password: {DB_PASSWORD})",
            "hosts": {"kasir-01": [f"POST https://gw.example/hook?token={TOKEN} failed", 3]},
            f"odd key {TOKEN}": "abc stays: too short to look for",
        },
    )
    want = {
        "detail": "mysql: Access denied for user 'app' (using password: ***)",
        "hosts": {"kasir-01": ["POST https://gw.example/hook?token=*** failed", 3]},
        "odd key ***": "abc stays: too short to look for",
    }
    assert event.data == want
    assert journal.events("INC-1")[0].data == want
    text = stored_text(tmp_path / "journal.sqlite")
    assert DB_PASSWORD.encode() not in text
    assert TOKEN.encode() not in text
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        (row,) = db.execute("SELECT data FROM events").fetchall()
    assert TOKEN not in row[0]


def test_the_longest_secret_goes_first_and_key_names_still_count():
    secrets = ("secret-long-1234", "secret")  # as learn_secrets orders them
    assert scrub({"note": "a secret-long-1234 b secret"}, secrets) == {"note": "a *** b ***"}
    assert scrub({"smtp_password": "whatever"}) == {"smtp_password": "***"}
    assert scrub(["plain"], ()) == ["plain"]


def test_short_values_are_not_learned(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.learn_secrets(["x" * (MIN_SECRET_LENGTH - 1), "y" * MIN_SECRET_LENGTH, None])  # type: ignore[list-item]
    assert journal.secrets == ("y" * MIN_SECRET_LENGTH,)
    journal.learn_secrets(["y" * MIN_SECRET_LENGTH, "zzzzzz"])
    assert journal.secrets == ("zzzzzz", "y" * MIN_SECRET_LENGTH)


def listing(**hostvars) -> dict:
    return {"_meta": {"hostvars": {"srv-simrs-01": hostvars}}, "all": {"children": ["ungrouped"]}}


def test_the_inventorys_secret_values_are_found_by_name_nested_too():
    raw = listing(
        simrs_db_app_password=DB_PASSWORD,
        notify_channels=[{"type": "webhook", "url": "http://gw", "token": TOKEN}, {"type": "screen"}],
        vault_smtp=["smtp-Secret-1"],
        backup_encryption_key="backup-Key-123456",
        ansible_ssh_private_key_file="/root/.ssh/id_ed25519",
        notify_token_ref="{{ vault_notify_webhook_token }}",  # noqa: S106 (a template, not a value)
        simrs_service_ip="198.18.0.10",
        power_ipmi_password="",
    )
    assert secret_values(raw) == {DB_PASSWORD, TOKEN, "smtp-Secret-1", "backup-Key-123456"}


def test_an_inline_vault_value_is_decrypted_with_the_password_file(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret  # noqa: PLC0415

    password_file = tmp_path / "vault-pass"
    password_file.write_text("vault-pw-for-this-test\n")
    password_file.chmod(0o600)
    lib = VaultLib([("default", VaultSecret(b"vault-pw-for-this-test"))])
    ciphertext = lib.encrypt("inline-Vault-Secret").decode()
    raw = listing(simrs_lab_thing={"__ansible_vault": ciphertext})
    assert secret_values(raw, password_file) == {"inline-Vault-Secret"}
    assert secret_values(raw) == set()  # no password file: nothing to learn, nothing fails


def test_make_journal_learns_the_lab_inventorys_secrets(tmp_path, monkeypatch):
    """The real inventory read through the gateway (ansible-inventory), the journal built by the CLI."""
    monkeypatch.setattr(settings, "journal_path", lambda: tmp_path / "journal.sqlite")
    gateway = AnsibleGateway(REPO / "inventory" / "lab", tmp_path / "runs")
    journal = base.make_journal(gateway, gateway.inventory())
    assert {"lab-only-app-secret", "lab-only-login-secret", "lab-only-webhook-token"} <= set(journal.secrets)
    journal.append("INC-1", "fact", {"detail": "login failed for lab-only-login-secret"})
    assert journal.events("INC-1")[0].data == {"detail": "login failed for ***"}
    assert b"lab-only-login-secret" not in stored_text(tmp_path / "journal.sqlite")


@pytest.mark.parametrize("name", ["simrs_service_ip", "simrs_hospital", "simrs_unit"])
def test_ordinary_settings_are_not_secrets(name):
    assert secret_values(listing(**{name: "kasir"})) == set()
