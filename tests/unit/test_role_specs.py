"""Each role's defaults and its meta/argument_specs.yml name the same variables (issue 15): a
default that no entry point documents is a setting nobody can find; an option of the role's own
that has no default must say why (required, or a commented line in defaults/main.yml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from orchestrator.settings import REPO

ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


def specs(role: Path) -> dict[str, dict]:
    """Every option of every entry point (the last entry point's spec wins for a shared name)."""
    found: dict[str, dict] = {}
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text()) or {}
    for entry in (data.get("argument_specs") or {}).values():
        found.update((entry or {}).get("options") or {})
    return found


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_argument_specs_name_the_same_variables(role):
    text = (role / "defaults" / "main.yml").read_text() if (role / "defaults" / "main.yml").exists() else ""
    defaults = set((yaml.safe_load(text) or {}).keys())
    commented = set(re.findall(r"^# ?([a-z][a-z0-9_]+):", text, flags=re.MULTILINE))
    options = specs(role)
    assert defaults - options.keys() == set(), f"{role.name}: defaults no entry point documents"
    own = {name for name in options if name.startswith(f"{role.name}_")}
    silent = {name for name in own - defaults if not options[name].get("required") and name not in commented}
    assert silent == set(), f"{role.name}: options without a default and without a word why"


def test_the_check_finds_a_default_nobody_documents(tmp_path):
    role = tmp_path / "demo_role"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text("demo_role_a: 1\ndemo_role_b: 2\n")
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      demo_role_a: {type: int}\n      demo_role_c: {type: int}\n"
    )
    with pytest.raises(AssertionError, match="defaults no entry point documents"):
        test_defaults_and_argument_specs_name_the_same_variables(role)
    (role / "defaults" / "main.yml").write_text("demo_role_a: 1\n")
    with pytest.raises(AssertionError, match="without a word why"):
        test_defaults_and_argument_specs_name_the_same_variables(role)
    (role / "defaults" / "main.yml").write_text("demo_role_a: 1\n# demo_role_c: (set by the caller)\n")
    test_defaults_and_argument_specs_name_the_same_variables(role)
