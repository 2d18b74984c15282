"""Every option that carries a secret is no_log: the roles' argument specs (meta/argument_specs.yml,
nested options too) and the modules' argument_spec (plugins/modules/*.py). A secret's name says
what it is (password, token, secret, key, credential), so a new one without no_log fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRET = re.compile(
    r"password|passphrase|(^|_)pass($|_)|token|secret|(^|_)key($|_)|credential", re.IGNORECASE
)


def role_options(options: dict | None, where: str):
    for name, spec in (options or {}).items():
        yield f"{where}.{name}", name, spec
        if isinstance(spec, dict):
            yield from role_options(spec.get("options"), f"{where}.{name}")


def role_specs():
    for path in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(path.read_text())["argument_specs"]
        for entry, spec in specs.items():
            yield from role_options(spec.get("options"), f"{path.parts[-3]}:{entry}")


def module_specs():
    """(where, name, {key: literal}) of every option in the argument_spec dict literals."""
    for path in sorted(REPO.glob("plugins/modules/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.keyword) or node.arg != "argument_spec":
                continue
            if not isinstance(node.value, ast.Dict):
                continue
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Dict):
                    spec = {
                        k.value: v.value
                        for k, v in zip(value.keys, value.values, strict=True)
                        if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                    }
                    yield f"{path.name}:{key.value}", key.value, spec


def test_the_pattern_finds_secrets_and_leaves_the_rest():
    assert all(
        SECRET.search(n)
        for n in ["backup_encryption_key", "password", "power_ipmi_password", "token", "encryption_key"]
    )
    assert not any(SECRET.search(n) for n in ["keep_daily", "passes", "monkey", "compass_dir"])


@pytest.mark.parametrize(
    ("where", "spec"),
    [
        pytest.param(where, spec, id=where)
        for where, name, spec in [*role_specs(), *module_specs()]
        if SECRET.search(name)
    ],
)
def test_a_secret_option_is_no_log(where, spec):
    assert spec.get("no_log") is True, f"{where} carries a secret: give it no_log: true"


def test_the_modules_with_a_key_were_found():
    names = {where for where, name, _ in module_specs() if name == "encryption_key"}
    assert {"backup_take.py:encryption_key", "restore_step.py:encryption_key"} <= names


def test_the_backup_private_key_is_no_log_wherever_it_is_taken():
    """The age identity is named identity in the modules and *_private_key in the roles: both no_log."""
    found = {where: spec for where, name, spec in [*role_specs(), *module_specs()] if name in ("identity",)}
    found.update({where: spec for where, name, spec in role_specs() if name.endswith("private_key")})
    assert {
        "restore_step.py:identity",
        "backup_test_restore.py:identity",
    } <= set(found)
    assert len(found) >= 4
    assert all(spec.get("no_log") is True for spec in found.values()), found


def environments(node, where: str):
    if isinstance(node, dict):
        if isinstance(node.get("environment"), dict):
            yield where, node["environment"]
        for key, value in node.items():
            yield from environments(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from environments(value, f"{where}[{i}]")


def test_no_task_carries_a_secret_in_its_environment():
    """A task's environment is on the host's command line (ps), in sudo's log and in -vvv output,
    and no_log does not cover it: a secret goes as a module's no_log option instead."""
    found = []
    for path in sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("playbooks/*.yml")]):
        for where, env in environments(yaml.safe_load(path.read_text()), path.name):
            found += [f"{where}: {k}" for k, v in env.items() if SECRET.search(k) or SECRET.search(str(v))]
    assert found == []
