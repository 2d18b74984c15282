"""Synthetic patients and visits for the lab's SIMRS (no real person's data, ever).

Deterministic for a given seed, so two labs of the same size hold the same rows and a test can
name what it expects. Yields SQL in batches, so a large lab streams instead of building one
huge string.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

FIRST = (
    "Siti",
    "Budi",
    "Agus",
    "Dewi",
    "Rina",
    "Andi",
    "Sri",
    "Eko",
    "Wahyu",
    "Nur",
    "Putri",
    "Joko",
    "Ayu",
    "Dian",
    "Hendra",
    "Indah",
    "Rudi",
    "Yuni",
    "Fajar",
    "Lestari",
)
LAST = (
    "Santoso",
    "Wijaya",
    "Rahmawati",
    "Saputra",
    "Hidayat",
    "Kusuma",
    "Pratama",
    "Handayani",
    "Setiawan",
    "Nugroho",
    "Lubis",
    "Siregar",
    "Harahap",
    "Sembiring",
    "Simanjuntak",
)
CITIES = ("Jakarta", "Bekasi", "Bogor", "Depok", "Tangerang", "Bandung", "Surabaya", "Medan")
STREETS = ("Jl. Pemuda", "Jl. Raya Bogor", "Jl. Kalimalang", "Jl. Pramuka", "Jl. Otista")
RELIGIONS = ("Islam", "Kristen", "Katolik", "Hindu", "Buddha", "Konghucu")
BATCH = 500
VISITS_PER_PATIENT = 2
BASE_DATE = dt.date(2026, 1, 1)


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def patient_row(rng: random.Random, i: int) -> tuple[str, ...]:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 80 * 365))
    return (
        f"{i:06d}",
        f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        f"31{rng.randrange(10**13, 10**14)}",
        rng.choice("LP"),
        rng.choice(CITIES),
        born.isoformat(),
        f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        f"{rng.choice(STREETS)} No. {rng.randrange(1, 200)}, {rng.choice(CITIES)}",
        rng.choice(("A", "B", "O", "AB", "-")),
        rng.choice(RELIGIONS),
        (BASE_DATE - dt.timedelta(days=rng.randrange(0, 3650))).isoformat(),
        f"08{rng.randrange(10**9, 10**10)}",
        rng.choice(("UMU", "BPJ")),
    )


def visit_row(rng: random.Random, patient: int, n: int) -> tuple[str, ...]:
    day = BASE_DATE + dt.timedelta(days=n % 300)
    seq = n // 300 + 1
    return (
        f"{seq % 1000:03d}",
        f"{day:%Y/%m/%d}/{seq:06d}",
        day.isoformat(),
        f"{rng.randrange(7, 15):02d}:{rng.randrange(60):02d}:00",
        f"D{rng.randrange(1, 20):04d}",
        f"{patient:06d}",
        rng.choice(("U0001", "U0002", "U0003", "IGDK")),
        "-",
        "15000",
        "Sudah",
        "Lama",
        "Ralan",
        rng.choice(("UMU", "BPJ")),
        "Sudah Bayar",
    )


def _insert(table: str, rows: list[tuple[str, ...]]) -> str:
    values = ",\n".join("(" + ",".join(_q(v) for v in row) + ")" for row in rows)
    return f"INSERT INTO {table} VALUES\n{values};\n"


def seed_sql(patients: int, seed: int = 2023) -> Iterator[str]:
    """SQL statements (for database sik) inserting `patients` patients and their visits."""
    rng = random.Random(seed)
    yield "SET autocommit=0;\n"
    batch: list[tuple[str, ...]] = []
    for i in range(1, patients + 1):
        batch.append(patient_row(rng, i))
        if len(batch) == BATCH:
            yield _insert("pasien", batch)
            batch = []
    if batch:
        yield _insert("pasien", batch)
    visits: list[tuple[str, ...]] = []
    for n in range(patients * VISITS_PER_PATIENT):
        visits.append(visit_row(rng, n % patients + 1, n))
        if len(visits) == BATCH:
            yield _insert("reg_periksa", visits)
            visits = []
    if visits:
        yield _insert("reg_periksa", visits)
    yield "COMMIT;\n"


def accounts_sql(app_user: str, app_password: str, login_user: str, login_password: str) -> str:
    """The application account and the Khanza admin login row (idempotent)."""
    return (
        f"CREATE USER IF NOT EXISTS {_q(app_user)}@'%' IDENTIFIED BY {_q(app_password)};\n"
        f"ALTER USER {_q(app_user)}@'%' IDENTIFIED BY {_q(app_password)};\n"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON sik.* TO {_q(app_user)}@'%';\n"
        "REPLACE INTO sik.admin VALUES "
        f"(AES_ENCRYPT({_q(login_user)}, 'nur'), AES_ENCRYPT({_q(login_password)}, 'windi'));\n"
    )
