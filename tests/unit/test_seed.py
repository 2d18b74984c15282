from __future__ import annotations

import re

from orchestrator.lab import seed


def _rows(sql: str, table: str) -> list[str]:
    rows = []
    for stmt in sql.split(";\n"):
        if stmt.startswith(f"INSERT INTO {table} VALUES"):
            rows += stmt.split("\n")[1:]
    return rows


def test_seed_is_deterministic_and_sized():
    a = "".join(seed.seed_sql(1200, seed=7))
    b = "".join(seed.seed_sql(1200, seed=7))
    c = "".join(seed.seed_sql(1200, seed=8))
    assert a == b
    assert a != c
    assert len(_rows(a, "pasien")) == 1200
    assert len(_rows(a, "reg_periksa")) == 1200 * seed.VISITS_PER_PATIENT
    assert a.startswith("SET autocommit=0;")
    assert a.rstrip().endswith("COMMIT;")


def test_visit_keys_are_unique_and_khanza_shaped():
    sql = "".join(seed.seed_sql(1000))
    keys = re.findall(r"'(\d{4}/\d{2}/\d{2}/\d{6})'", sql)
    assert len(keys) == 1000 * seed.VISITS_PER_PATIENT
    assert len(set(keys)) == len(keys)


def test_every_visit_refers_to_a_seeded_patient():
    sql = "".join(seed.seed_sql(300))
    patients = {r.split(",")[0].strip("(',") for r in _rows(sql, "pasien")}
    for row in _rows(sql, "reg_periksa"):
        assert row.split(",")[5].strip("'") in patients


def test_quotes_in_values_are_escaped():
    assert seed._q("O'Brien\\x") == "'O''Brien\\\\x'"
    sql = seed.accounts_sql("app", "pa'ss", "admin", "se'cret")
    assert "IDENTIFIED BY 'pa''ss'" in sql
    assert "AES_ENCRYPT('se''cret', 'windi')" in sql
