"""Real receivers for notification tests: an HTTP server and an SMTP server, on loopback only.

Owns recording what arrives and nothing else: every POST (headers and body) and every e-mail
(envelope, headers, text) becomes a record in memory and, when a file is given, one JSON line.
Credentials are redacted before anything is kept (redact_header, redact_query): an Authorization
header keeps its scheme and becomes `Bearer *** sha256:0123456789ab` (the first 12 hex digits of
the credential's sha256, so a test can check which token came without the token being stored),
secret-named query parameters become `token=***`; of an SMTP login only the login name is kept.
Both are context managers for pytest fixtures; `python -m orchestrator.lab.receivers` runs them for
the notify role's Molecule scenario and for trying a channel by hand:

    python -m orchestrator.lab.receivers --dir D --http-port 0 --smtp-port 0 \
        [--smtp-auth-env VAR] [--background]
    python -m orchestrator.lab.receivers --dir D --stop

In D: `receivers.json` (pid, ports, URLs; present while running), `http.jsonl`, `smtp.jsonl`
(one record per line) and, written by the test when it wants failures, `http-status` (the HTTP
status to answer, e.g. 500; remove it to answer 200 again).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import ipaddress
import json
import logging
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20  # a notice is a few hundred bytes; anything near this is a bug
STATE_FILE = "receivers.json"
HTTP_RECORDS = "http.jsonl"
SMTP_RECORDS = "smtp.jsonl"
HTTP_STATUS_FILE = "http-status"
LOG_FILE = "receivers.log"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0

log = logging.getLogger(__name__)

# Header and query parameter names that carry a credential.
SECRET_NAME = re.compile(r"auth|token|secret|pass|key|cookie|credential|signature|session", re.IGNORECASE)
REDACTED = "***"
SECRET_QUERY = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:auth|token|secret|pass|key|credential|signature|session)[^=&;#\s]*=)"
    r"[^&;#\s]*",
    re.IGNORECASE,
)


def fingerprint(value: str) -> str:
    """Names a credential without holding it: the first 12 hex digits of its sha256."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def redact_header(name: str, value: str) -> str:
    """A credential-carrying header's value as `*** sha256:...` (an Authorization header keeps
    its scheme: `Bearer *** sha256:...`); any other header as it came."""
    if not SECRET_NAME.search(name):
        return value
    scheme, sep, credential = value.strip().partition(" ")
    if name.lower() in ("authorization", "proxy-authorization") and sep and scheme.isalpha():
        return f"{scheme} {REDACTED} {fingerprint(credential.strip())}"
    return f"{REDACTED} {fingerprint(value)}"


def redact_query(text: str) -> str:
    """Secret-named query parameters' values (token=..., api_key=...) as ***, in a path or a
    request line; the rest unchanged."""
    return SECRET_QUERY.sub(lambda m: m.group("name") + REDACTED, text)


def _require_loopback(host: str) -> None:
    # Test traffic must never leave the machine: refuse anything but a loopback address.
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"receivers listen on loopback only, not {host!r}; use {LOOPBACK}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_Record = TypeVar("_Record", "HttpRecord", "MailRecord")


class _Records(Generic[_Record]):
    """Records kept in memory and, if a path is given, appended to it as JSON lines."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._items: list[_Record] = []

    def add(self, item: _Record) -> None:
        with self._lock:
            self._items.append(item)
            if self._path is not None:
                # Owner-only: a notice names the hospital's units and incidents.
                fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as out:
                    out.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")

    def all(self) -> list[_Record]:
        with self._lock:
            return list(self._items)


@dataclass(frozen=True)
class HttpRecord:
    """One request as it arrived, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    body: str
    payload: Any  # the body parsed as JSON, or None when it is not JSON
    status: int
    received_at: str


@dataclass(frozen=True)
class MailRecord:
    """One e-mail as it arrived: envelope, main headers and its text."""

    mail_from: str
    rcpt_tos: list[str]
    subject: str
    headers: dict[str, str]
    text: str
    auth_login: str | None  # the login it authenticated with, or None
    received_at: str


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver


class _HttpHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "simrs-test-receiver/1"

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        status = receiver.answer_status()
        receiver.record(
            HttpRecord(
                method=self.command,
                path=redact_query(self.path),
                headers={name: redact_header(name, value) for name, value in self.headers.items()},
                body=body,
                payload=payload,
                status=status,
                received_at=_now(),
            )
        )
        if 200 <= status < 300:
            self._answer(status, {"received": True})
        else:
            self._answer(status, {"error": f"this receiver was told to answer {status}"})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        # 1xx, 204 and 304 answers carry no body (RFC 9110).
        data = b"" if status < 200 or status in (204, 304) else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *(redact_query(str(a)) for a in args))


class HttpReceiver:
    """An HTTP server on loopback that records every POST and answers `status` (200 unless told).

    `status` may be changed while it runs; a `status_file`, when it exists, overrides it with the
    number written in it, so another process (a playbook) can make it fail.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        status: int = HTTPStatus.OK,
        record_file: Path | None = None,
        status_file: Path | None = None,
    ) -> None:
        _require_loopback(host)
        self.host = host
        self.status = int(status)
        self.status_file = status_file
        self._port = port
        self._records: _Records[HttpRecord] = _Records(record_file)
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the HTTP receiver is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def requests(self) -> list[HttpRecord]:
        return self._records.all()

    def answer_status(self) -> int:
        if self.status_file is not None:
            with contextlib.suppress(FileNotFoundError):
                text = self.status_file.read_text(encoding="ascii").strip()
                if text:
                    return int(text)
        return self.status

    def record(self, item: HttpRecord) -> None:
        self._records.add(item)

    def start(self) -> Self:
        server = _HttpServer((self.host, self._port), _HttpHandler)
        server.receiver = self
        self._server = server
        # A short poll interval: stop() waits for one, and tests start and stop many receivers.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _MailHandler:
    """aiosmtpd hooks: require a login when the receiver has credentials, record every message."""

    def __init__(self, receiver: SmtpReceiver) -> None:
        self._receiver = receiver

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self._receiver.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        message = email.message_from_bytes(
            raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default
        )
        body = message.get_body(preferencelist=("plain",))
        # As a reader sees it: the wire's CRLF line ends become newlines.
        text = body.get_content().replace("\r\n", "\n") if body is not None else ""
        self._receiver.record(
            MailRecord(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                subject=str(message.get("Subject", "")),
                headers={name: redact_header(name, str(value)) for name, value in message.items()},
                text=text,
                # The login name only: the password is checked in _authenticate and never kept.
                auth_login=session.auth_data if session.authenticated else None,
                received_at=_now(),
            )
        )
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """An SMTP server on loopback (aiosmtpd) that records every message it accepts.

    With `credentials` (login, password) it offers AUTH PLAIN/LOGIN without TLS (loopback only)
    and refuses mail from a session that has not logged in with them.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        record_file: Path | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        _require_loopback(host)
        self.host = host
        self.credentials = credentials
        self._port = port
        self._records: _Records[MailRecord] = _Records(record_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the SMTP receiver is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def messages(self) -> list[MailRecord]:
        return self._records.all()

    def record(self, item: MailRecord) -> None:
        self._records.add(item)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.credentials is not None and isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if (login, password) == self.credentials:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def _protocol(self) -> SMTP:
        handler = _MailHandler(self)
        # hostname given, so aiosmtpd does not ask DNS for this machine's name.
        if self.credentials is None:
            return SMTP(handler, hostname="localhost", loop=self._loop)
        return SMTP(
            handler,
            hostname="localhost",
            loop=self._loop,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-receiver", daemon=True)
        self._thread.start()
        create = loop.create_server(self._protocol, host=self.host, port=self._port)
        try:
            self._server = asyncio.run_coroutine_threadsafe(create, loop).result(START_TIMEOUT_SECONDS)
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        server = self._server
        if server is not None:

            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(STOP_TIMEOUT_SECONDS)
        self._server = None
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records a receiver wrote to `path` (none when it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    directory: Path
    http_port: int | None
    smtp_port: int | None
    http_status: int
    smtp_auth: tuple[str, str] | None
    background: bool
    stop: bool


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.lab.receivers",
        description="Run test receivers on 127.0.0.1 that record every HTTP POST and every e-mail.",
    )
    parser.add_argument("--dir", required=True, type=Path, help="folder for the state file and records")
    parser.add_argument("--http-port", type=int, help="HTTP port (0 picks a free one)")
    parser.add_argument("--smtp-port", type=int, help="SMTP port (0 picks a free one)")
    parser.add_argument(
        "--http-status", type=int, default=200, help="status to answer (DIR/http-status overrides it)"
    )
    auth_group = parser.add_mutually_exclusive_group()
    auth_group.add_argument(
        "--smtp-auth", metavar="LOGIN:PASSWORD", help="require this SMTP login (test credentials only)"
    )
    auth_group.add_argument(
        "--smtp-auth-env", metavar="NAME", help="like --smtp-auth, read from environment variable NAME"
    )
    parser.add_argument("--background", action="store_true", help="return once listening; stop with --stop")
    parser.add_argument("--stop", action="store_true", help="stop the receivers running for --dir")
    args = parser.parse_args(argv)
    if not args.stop and args.http_port is None and args.smtp_port is None:
        parser.error("give --http-port, --smtp-port or both (0 picks a free port)")
    auth: tuple[str, str] | None = None
    # From the environment, the password stays out of the process list and of playbook output.
    auth_text = os.environ.get(args.smtp_auth_env, "") if args.smtp_auth_env else args.smtp_auth
    if auth_text is not None:
        login, sep, password = auth_text.partition(":")
        if not sep or not login:
            source = f"environment variable {args.smtp_auth_env}" if args.smtp_auth_env else "--smtp-auth"
            parser.error(f"{source} needs LOGIN:PASSWORD")
        auth = (login, password)
    return Options(
        directory=args.dir,
        http_port=args.http_port,
        smtp_port=args.smtp_port,
        http_status=args.http_status,
        smtp_auth=auth,
        background=args.background,
        stop=args.stop,
    )


class _Running:
    """The receivers of one --dir, started together, described in DIR/receivers.json."""

    def __init__(self, options: Options) -> None:
        self.options = options
        directory = options.directory
        self.http = (
            None
            if options.http_port is None
            else HttpReceiver(
                port=options.http_port,
                status=options.http_status,
                record_file=directory / HTTP_RECORDS,
                status_file=directory / HTTP_STATUS_FILE,
            )
        )
        self.smtp = (
            None
            if options.smtp_port is None
            else SmtpReceiver(
                port=options.smtp_port,
                record_file=directory / SMTP_RECORDS,
                credentials=options.smtp_auth,
            )
        )

    def start(self) -> dict[str, Any]:
        directory = self.options.directory
        directory.mkdir(parents=True, exist_ok=True)
        try:
            if self.http is not None:
                self.http.start()
            if self.smtp is not None:
                self.smtp.start()
        except BaseException:
            self.stop()
            raise
        state: dict[str, Any] = {
            "pid": os.getpid(),
            "dir": str(directory.resolve()),
            "http_port": self.http.port if self.http else None,
            "http_url": self.http.url if self.http else None,
            "smtp_port": self.smtp.port if self.smtp else None,
            "http_records": str((directory / HTTP_RECORDS).resolve()),
            "smtp_records": str((directory / SMTP_RECORDS).resolve()),
            "http_status_file": str((directory / HTTP_STATUS_FILE).resolve()),
        }
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(directory / STATE_FILE)
        return state

    def stop(self) -> None:
        for server in (self.http, self.smtp):
            if server is not None:
                server.stop()
        state_file = self.options.directory / STATE_FILE
        with contextlib.suppress(FileNotFoundError):
            if json.loads(state_file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                state_file.unlink()


def _serve_until_signalled(running: _Running, ready: Callable[[dict[str, Any]], None]) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state = running.start()
    try:
        ready(state)
        while not stop.wait(0.1):
            pass
    finally:
        running.stop()
    return 0


def _run_foreground(options: Options) -> int:
    def ready(state: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(state) + "\n")
        sys.stdout.write("Receiving; Ctrl-C stops.\n")
        sys.stdout.flush()

    return _serve_until_signalled(_Running(options), ready)


def _run_background(options: Options) -> int:
    """Fork a detached child that serves; return once it listens (0) or failed to (1)."""
    options.directory.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], START_TIMEOUT_SECONDS)
        message = os.read(read_end, 65536).decode() if ready else ""
        os.close(read_end)
        os.waitpid(pid, 0)  # the first child exits as soon as it has forked the server
        if message.startswith("ready "):
            sys.stdout.write(message.removeprefix("ready ") + "\n")
            return 0
        sys.stderr.write(
            (message.removeprefix("error ") or f"the receivers did not start in {START_TIMEOUT_SECONDS} s")
            + f"\n(see {options.directory / LOG_FILE})\n"
        )
        return 1

    # First child: a new session, then fork again so the server is no one's child to wait for.
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    # Detach from the caller's stdio: Ansible's command module waits until they are closed.
    null = os.open(os.devnull, os.O_RDONLY)
    logfile = os.open(options.directory / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(logfile, 1)
    os.dup2(logfile, 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def ready(state: dict[str, Any]) -> None:
        os.write(write_end, ("ready " + json.dumps(state)).encode())
        os.close(write_end)

    code = 1
    try:
        code = _serve_until_signalled(_Running(options), ready)
    except BaseException as exc:  # report any start failure to the waiting parent, then exit
        with contextlib.suppress(OSError):
            os.write(write_end, f"error {type(exc).__name__}: {exc}".encode())
        log.exception("receivers failed")
    finally:
        os._exit(code)


def process_running(pid: int) -> bool:
    """Whether `pid` is a live process (not gone, not a zombie nobody has reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already stopped


def _stop(directory: Path) -> int:
    state_file = directory / STATE_FILE
    try:
        pid = int(json.loads(state_file.read_text(encoding="utf-8"))["pid"])
    except FileNotFoundError:
        sys.stdout.write(f"no receivers running for {directory}\n")
        return 0
    # Signal only our own receivers: a stale state file may name a pid that is now another process.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        cmdline = []
    if b"orchestrator.lab.receivers" not in cmdline:
        state_file.unlink(missing_ok=True)
        sys.stdout.write(f"receivers for {directory} were not running (stale state removed)\n")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not process_running(pid):
            state_file.unlink(missing_ok=True)
            sys.stdout.write(f"stopped receivers {pid}\n")
            return 0
        time.sleep(0.1)
    sys.stderr.write(f"receivers {pid} did not stop within {STOP_TIMEOUT_SECONDS} s; kill it: kill {pid}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    if options.stop:
        return _stop(options.directory)
    if options.background:
        return _run_background(options)
    return _run_foreground(options)


if __name__ == "__main__":
    sys.exit(main())
