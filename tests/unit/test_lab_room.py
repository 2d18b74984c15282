"""`simrs lab up --clients N`: a count this machine cannot hold is refused (exit 2) before
anything is created."""

from __future__ import annotations

import pytest

from orchestrator.lab import lab, topology
from orchestrator.lab.podman import LabError


def test_max_clients_follows_the_memory_available():
    assert lab.max_clients(lab.RESERVE_MB) == 0
    assert lab.max_clients(lab.RESERVE_MB + 10 * lab.CLIENT_MB) == 10
    assert lab.max_clients(10**7) == topology.MAX_CLIENTS


def test_a_lab_larger_than_the_memory_allows_is_refused_with_exit_2():
    spec = topology.LabSpec(clients=200)
    with pytest.raises(LabError, match="more than this machine can hold now") as info:
        lab.require_room(spec, free_mb=lab.RESERVE_MB + 100 * lab.CLIENT_MB)
    assert info.value.exit_code == 2
    assert "at most 100" in str(info.value)
    lab.require_room(spec, free_mb=lab.RESERVE_MB + 200 * lab.CLIENT_MB)  # fits: no error


def test_the_refusal_comes_before_anything_is_created(monkeypatch, tmp_path):
    created = []
    monkeypatch.setattr(lab.hostfs, "require_root", lambda: None)
    monkeypatch.setattr(lab.podman, "require_podman", lambda: "podman")
    monkeypatch.setattr(lab, "available_mb", lambda: lab.RESERVE_MB + 10 * lab.CLIENT_MB)
    monkeypatch.setattr(lab.podman, "run", lambda *a, **k: created.append(a))
    monkeypatch.setattr(lab, "save_state", created.append)
    with pytest.raises(LabError, match="at most 10"):
        lab.up(topology.LabSpec(clients=11))
    assert created == []


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20480000 kB\n")
    assert lab.available_mb(meminfo) == 20000
