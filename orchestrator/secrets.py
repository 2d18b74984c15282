"""The inventory's secret values (for the journal, which never writes them): by variable name, and
Vault's own values decrypted with the vault password file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Inventory variables whose values are secrets, by name (a nested key counts too: notify_channels'
# token and password); vault_* is Ansible's naming for what comes from Vault. Not a path to one.
SECRET_VAR = re.compile(r"pass|token|secret|key|credential|^vault_", re.IGNORECASE)
NOT_SECRET_VAR = re.compile(r"_(file|path|dir)$", re.IGNORECASE)


def secret_values(raw: dict[str, Any], vault_password_file: Path | str | None = None) -> set[str]:
    """The secret values in an inventory listing (ansible-inventory JSON): every text under a
    variable whose name names a secret, and every Vault-encrypted value (decrypted with the vault
    password file when there is one). Templates ("{{ vault_x }}") are not values: the variable
    they name is found by its own name. For the journal, which never writes them (Journal.learn_secrets)."""
    found: set[str] = set()
    vault = _vault(vault_password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"))

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            if set(node) == {"__ansible_vault"}:
                plain = vault(node["__ansible_vault"]) if vault else None
                if plain:
                    found.add(plain)
                return
            for key, value in node.items():
                name = str(key)
                walk(value, secret or bool(SECRET_VAR.search(name) and not NOT_SECRET_VAR.search(name)))
        elif isinstance(node, list):
            for value in node:
                walk(value, secret)
        elif isinstance(node, str) and secret and "{{" not in node and node.strip():
            found.add(node)

    walk(raw, False)
    return found


def _vault(password_file: Path | str | None) -> Callable[[str], str | None] | None:
    """Decrypts an inline Vault value with a plain password file (not a script); None without one."""
    if not password_file or not Path(password_file).is_file() or os.access(password_file, os.X_OK):
        return None
    try:
        from ansible.parsing.vault import VaultLib, VaultSecret  # noqa: PLC0415 (slow import)

        lib = VaultLib([("default", VaultSecret(Path(password_file).read_bytes().strip()))])
    except (OSError, ImportError):
        return None

    def decrypt(ciphertext: str) -> str | None:
        try:
            return lib.decrypt(ciphertext).decode("utf-8", "replace")
        except Exception:  # another vault id, a damaged value: nothing to learn
            return None

    return decrypt
