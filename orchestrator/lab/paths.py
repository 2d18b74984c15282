"""Where the lab keeps its state (per machine) and its image build cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("SIMRS_CACHE_DIR", str(Path(base) / "simrs")))


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("SIMRS_LAB_STATE", str(Path(base) / "simrs-lab")))
