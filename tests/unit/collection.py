"""Load one of the collection's plugin files in a unit test, with `ansible_collections.*` importable
from .collections (where scripts/setup installs containers.podman and links this collection)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"


def load(relative: str, *needs: str) -> ModuleType:
    """The plugin file at REPO/relative as a module; skip the test when a collection it imports
    (`needs`, e.g. "containers/podman") is not installed."""
    for name in ("simrs/downtime", *needs):
        if not (COLLECTIONS / "ansible_collections" / name).exists():
            pytest.skip(f"{name} is not in .collections (run scripts/setup)")
    sys.path.insert(0, str(COLLECTIONS))
    try:
        spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(COLLECTIONS))
    return module


def module_utils(name: str) -> ModuleType:
    """ansible_collections.simrs.downtime.plugins.module_utils.NAME, as the plugins import it."""
    sys.path.insert(0, str(COLLECTIONS))
    try:
        return importlib.import_module(f"ansible_collections.simrs.downtime.plugins.module_utils.{name}")
    finally:
        sys.path.remove(str(COLLECTIONS))
