"""The collection's Jinja test `simrs.downtime.ipv4_address`, used by every preflight that takes an
address (ip_takeover, fence, client_probe, the drill's test address)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "test" / "ipv4_address.py"
spec = importlib.util.spec_from_file_location("ipv4_address", PLUGIN)
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)


@pytest.mark.parametrize("value", ["198.18.0.10", "0.1.2.3", "255.255.255.255", "10.10.1.13"])
def test_addresses(value):
    assert plugin.TestModule().tests()["ipv4_address"](value)


@pytest.mark.parametrize(
    "value",
    [
        "198.18.0.300",
        "198.18.0",
        "198.18.0.10/24",
        "010.1.1.1",
        "a.b.c.d",
        "1.2.3.4.5",
        "",
        None,
        198,
        "\uff11.2.3.4",
    ],
)
def test_not_addresses(value):
    assert not plugin.TestModule().tests()["ipv4_address"](value)
