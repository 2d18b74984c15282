"""Test support that is real, not mocked: servers on loopback that record what arrives."""
