"""Shared by the SIMRS stand-in programs: reading the ini config and connecting to MariaDB."""

from __future__ import annotations

import configparser

import pymysql

# Khanza encrypts the admin login with these fixed keys; the stand-in keeps the shape.
USER_KEY = "nur"
PASS_KEY = "windi"  # noqa: S105 (Khanza's fixed key, not a secret)
LOGIN_QUERY = (
    "SELECT @@hostname AS server, COUNT(*) AS ok FROM admin "
    "WHERE usere = AES_ENCRYPT(%s, %s) AND passworde = AES_ENCRYPT(%s, %s)"
)


def read_config(path: str) -> dict[str, str]:
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise SystemExit(f"cannot read config {path}")
    return dict(parser["simrs"])


def connect(cfg: dict[str, str], host: str | None = None, timeout: float = 3.0):
    return pymysql.connect(
        host=host or cfg.get("db_host", "127.0.0.1"),
        port=int(cfg.get("db_port", "3306")),
        user=cfg["db_user"],
        password=cfg["db_password"],
        database=cfg.get("db_name", "sik"),
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
    )


def login(conn, user: str, password: str, track: bool = False) -> dict:
    """Khanza's login query; with ``track``, also its login record (a write, as Khanza does)."""
    with conn.cursor() as cur:
        cur.execute(LOGIN_QUERY, (user, USER_KEY, password, PASS_KEY))
        row = cur.fetchone()
        if track and row and row["ok"]:
            cur.execute("INSERT INTO tracker VALUES (%s, CURDATE(), CURTIME())", (user,))
        return row
