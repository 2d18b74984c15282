"""SIMRS stand-in web application (port 80): a login page and a health page that asks the DB.

GET /        the login page (static, like Khanza's PHP front page)
GET /health  200 + JSON when the database answers the application query, 503 otherwise
POST /login  form user/password, checked with Khanza's login query
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

sys.path.insert(0, "/usr/local/lib/simrs")
import common

LOGIN_PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>SIMRS - Login</title></head>
<body><h1>SIMRS Khanza (stand-in)</h1><p>Server: {server}</p>
<form method="post" action="/login"><input name="user"><input name="password" type="password">
<button>Masuk</button></form></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    cfg: dict[str, str] = {}

    def log_message(self, fmt: str, *args: object) -> None:  # quiet: health checks are frequent
        return

    def _send(self, code: int, body: str, ctype: str = "application/json") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, LOGIN_PAGE.format(server=socket.gethostname()), "text/html")
        elif self.path == "/health":
            self._health()
        else:
            self._send(404, json.dumps({"error": "not found"}))

    def _health(self) -> None:
        try:
            conn = common.connect(self.cfg)
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT @@hostname AS db_server, (SELECT COUNT(*) FROM pasien) AS pasien,"
                        " (SELECT MAX(no_rawat) FROM reg_periksa) AS last_visit"
                    )
                    row = cur.fetchone()
            finally:
                conn.close()
        except Exception as exc:  # any DB failure is the answer, not a crash
            body = {"status": "error", "server": socket.gethostname(), "db": str(exc)[:200]}
            self._send(503, json.dumps(body))
            return
        self._send(200, json.dumps({"status": "ok", "server": socket.gethostname(), **row}))

    def do_POST(self) -> None:
        if self.path != "/login":
            self._send(404, json.dumps({"error": "not found"}))
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        try:
            conn = common.connect(self.cfg)
            try:
                row = common.login(conn, form.get("user", [""])[0], form.get("password", [""])[0])
            finally:
                conn.close()
        except Exception as exc:
            self._send(503, json.dumps({"status": "error", "db": str(exc)[:200]}))
            return
        ok = bool(row and row["ok"])
        self._send(200 if ok else 401, json.dumps({"login": ok, "server": row["server"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="/etc/simrs/app.conf")
    args = parser.parse_args()
    Handler.cfg = common.read_config(args.config)
    port = int(Handler.cfg.get("web_port", "80"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 (a server)


if __name__ == "__main__":
    main()
