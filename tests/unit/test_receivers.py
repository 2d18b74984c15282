"""The test receivers are real servers on loopback: requests and e-mails really arrive."""

from __future__ import annotations

import http.client
import json
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from orchestrator.lab.receivers import (
    HTTP_RECORDS,
    HTTP_STATUS_FILE,
    SMTP_RECORDS,
    STATE_FILE,
    HttpReceiver,
    SmtpReceiver,
    fingerprint,
    process_running,
    read_records,
    redact_header,
    redact_query,
)

REPO = Path(__file__).resolve().parents[2]


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()


def mail(subject: str, to: list[str], text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "simrs@rs.test"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    return message


@pytest.fixture
def http_receiver(tmp_path: Path) -> Iterator[HttpReceiver]:
    with HttpReceiver(record_file=tmp_path / HTTP_RECORDS, status_file=tmp_path / HTTP_STATUS_FILE) as r:
        yield r


@pytest.fixture
def smtp_receiver(tmp_path: Path) -> Iterator[SmtpReceiver]:
    with SmtpReceiver(record_file=tmp_path / SMTP_RECORDS) as r:
        yield r


def test_http_receiver_records_a_json_post_with_its_headers(http_receiver: HttpReceiver, tmp_path: Path):
    body = json.dumps({"event": "outage_paper_mode", "text": "SIMRS tidak dapat digunakan"}).encode()
    status, answer = post(
        http_receiver.port,
        "/hook",
        body,
        {"Content-Type": "application/json", "Authorization": "Bearer test-token"},
    )

    assert (status, answer) == (200, {"received": True})
    [record] = http_receiver.requests
    assert record.method == "POST"
    assert record.path == "/hook"
    assert record.headers["Authorization"] == f"Bearer *** {fingerprint('test-token')}"
    assert record.payload == {"event": "outage_paper_mode", "text": "SIMRS tidak dapat digunakan"}
    assert record.status == 200
    [line] = read_records(tmp_path / HTTP_RECORDS)
    assert line["payload"]["event"] == "outage_paper_mode"
    assert line["headers"]["Authorization"] == f"Bearer *** {fingerprint('test-token')}"
    assert "test-token" not in (tmp_path / HTTP_RECORDS).read_text()


def test_http_receiver_keeps_a_body_that_is_not_json(http_receiver: HttpReceiver):
    status, _ = post(http_receiver.port, "/", b"plain words", {"Content-Type": "text/plain"})

    assert status == 200
    [record] = http_receiver.requests
    assert (record.body, record.payload) == ("plain words", None)


@pytest.mark.parametrize(
    ("told", "expected"),
    [(None, 200), (204, 204), (500, 500), (503, 503)],
)
def test_http_receiver_answers_the_status_it_is_told(told: int | None, expected: int):
    with HttpReceiver() as receiver:
        if told is not None:
            receiver.status = told
        status, _ = post(receiver.port, "/", b"{}", {"Content-Type": "application/json"})

    assert status == expected
    assert [r.status for r in receiver.requests] == [expected]


def test_http_status_file_makes_it_fail_and_removing_it_heals(http_receiver: HttpReceiver, tmp_path: Path):
    (tmp_path / HTTP_STATUS_FILE).write_text("500\n")
    failed, _ = post(http_receiver.port, "/", b"{}", {})
    (tmp_path / HTTP_STATUS_FILE).unlink()
    healed, _ = post(http_receiver.port, "/", b"{}", {})

    assert (failed, healed) == (500, 200)
    assert [r["status"] for r in read_records(tmp_path / HTTP_RECORDS)] == [500, 200]


@pytest.mark.parametrize("make", [HttpReceiver, SmtpReceiver])
def test_receivers_refuse_to_listen_beyond_loopback(make: type):
    with pytest.raises(ValueError, match="loopback only"):
        make(host="0.0.0.0")  # noqa: S104 - the address being refused


def test_smtp_receiver_records_a_message_sent_with_smtplib(smtp_receiver: SmtpReceiver, tmp_path: Path):
    message = mail("SIMRS tidak dapat digunakan [INC-1]", ["it@rs.test", "kasir@rs.test"], "Gunakan kertas.")

    with smtplib.SMTP("127.0.0.1", smtp_receiver.port, timeout=5) as client:
        client.send_message(message)

    [record] = smtp_receiver.messages
    assert record.mail_from == "simrs@rs.test"
    assert record.rcpt_tos == ["it@rs.test", "kasir@rs.test"]
    assert record.subject == "SIMRS tidak dapat digunakan [INC-1]"
    assert record.text == "Gunakan kertas.\n"
    assert record.auth_login is None
    [line] = read_records(tmp_path / SMTP_RECORDS)
    assert line["subject"] == "SIMRS tidak dapat digunakan [INC-1]"


def test_smtp_receiver_keeps_non_ascii_text():
    with SmtpReceiver() as receiver, smtplib.SMTP("127.0.0.1", receiver.port, timeout=5) as client:
        client.send_message(
            mail("Pemberitahuan \u2013 SIMRS", ["it@rs.test"], "Pukul 09.12 \u2013 mohon dicatat.")
        )

    [record] = receiver.messages
    assert record.subject == "Pemberitahuan \u2013 SIMRS"
    assert record.text == "Pukul 09.12 \u2013 mohon dicatat.\n"


@pytest.mark.parametrize(
    ("login", "password", "accepted"),
    [("notify", "test-secret", True), ("notify", "wrong", False)],
)
def test_smtp_receiver_with_credentials_accepts_only_that_login(login: str, password: str, accepted: bool):
    with (
        SmtpReceiver(credentials=("notify", "test-secret")) as receiver,
        smtplib.SMTP("127.0.0.1", receiver.port, timeout=5) as client,
    ):
        if accepted:
            client.login(login, password)
            client.send_message(mail("s", ["it@rs.test"], "t"))
        else:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login(login, password)

    assert [m.auth_login for m in receiver.messages] == (["notify"] if accepted else [])


def test_smtp_receiver_with_credentials_refuses_mail_without_login():
    with (
        SmtpReceiver(credentials=("notify", "test-secret")) as receiver,
        smtplib.SMTP("127.0.0.1", receiver.port, timeout=5) as client,
        pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"),
    ):
        client.send_message(mail("s", ["it@rs.test"], "t"))

    assert receiver.messages == []


def test_receivers_stop_and_free_their_ports():
    with HttpReceiver() as http_receiver, SmtpReceiver() as smtp_receiver:
        ports = (http_receiver.port, smtp_receiver.port)

    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            post(port, "/", b"{}", {})


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.lab.receivers", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
    )


def test_cli_runs_both_receivers_in_the_background_and_stops_them(tmp_path: Path):
    started = run_cli("--dir", str(tmp_path), "--http-port", "0", "--smtp-port", "0", "--background")
    assert started.returncode == 0, started.stderr
    state = json.loads(started.stdout)
    try:
        assert json.loads((tmp_path / STATE_FILE).read_text()) == state
        status, _ = post(state["http_port"], "/hook", b'{"event": "restored"}', {"Authorization": "Bearer t"})
        with smtplib.SMTP("127.0.0.1", state["smtp_port"], timeout=5) as client:
            client.send_message(mail("SIMRS normal kembali", ["it@rs.test"], "Silakan kembali ke SIMRS."))
    finally:
        stopped = run_cli("--dir", str(tmp_path), "--stop")

    assert status == 200
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / STATE_FILE).exists()
    [request] = read_records(tmp_path / HTTP_RECORDS)
    assert (request["payload"], request["headers"]["Authorization"]) == (
        {"event": "restored"},
        f"Bearer *** {fingerprint('t')}",
    )
    [message] = read_records(tmp_path / SMTP_RECORDS)
    assert (message["subject"], message["rcpt_tos"]) == ("SIMRS normal kembali", ["it@rs.test"])
    assert not process_running(state["pid"])


def test_cli_in_the_foreground_serves_until_interrupted(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.lab.receivers", "--dir", str(tmp_path), "--http-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        state = json.loads(process.stdout.readline())
        status, _ = post(state["http_port"], "/", b'{"event": "restored"}', {})
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    assert (status, code) == (200, 0)
    assert [r["payload"] for r in read_records(tmp_path / HTTP_RECORDS)] == [{"event": "restored"}]
    assert not (tmp_path / STATE_FILE).exists()


def test_cli_background_reports_a_port_that_is_taken(tmp_path: Path):
    with HttpReceiver() as taken:
        started = run_cli("--dir", str(tmp_path), "--http-port", str(taken.port), "--background")

    assert started.returncode == 1
    assert "Address already in use" in started.stderr
    assert not (tmp_path / STATE_FILE).exists()


def test_cli_stop_leaves_a_process_that_is_not_a_receiver_alone(tmp_path: Path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / STATE_FILE).write_text(json.dumps({"pid": other.pid}))
        stopped = run_cli("--dir", str(tmp_path), "--stop")
        time.sleep(0.2)
        assert other.poll() is None
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(5)

    assert stopped.returncode == 0
    assert "not running" in stopped.stdout
    assert not (tmp_path / STATE_FILE).exists()


def test_cli_takes_smtp_credentials_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TEST_SMTP_AUTH", "notify:env-secret")
    started = run_cli(
        "--dir", str(tmp_path), "--smtp-port", "0", "--smtp-auth-env", "TEST_SMTP_AUTH", "--background"
    )
    assert started.returncode == 0, started.stderr
    state = json.loads(started.stdout)
    try:
        with smtplib.SMTP("127.0.0.1", state["smtp_port"], timeout=5) as client:
            client.login("notify", "env-secret")
            client.send_message(mail("s", ["it@rs.test"], "t"))
    finally:
        run_cli("--dir", str(tmp_path), "--stop")

    assert [m["auth_login"] for m in read_records(tmp_path / SMTP_RECORDS)] == ["notify"]
    assert "env-secret" not in started.stdout + started.stderr
    for path in tmp_path.iterdir():  # records, state and log: the password is in none of them
        assert "env-secret" not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dir", "d"], "give --http-port, --smtp-port or both"),
        (["--dir", "d", "--smtp-port", "0", "--smtp-auth", "no-colon"], "--smtp-auth needs LOGIN:PASSWORD"),
        (
            ["--dir", "d", "--smtp-port", "0", "--smtp-auth-env", "TEST_UNSET_AUTH"],
            "environment variable TEST_UNSET_AUTH needs LOGIN:PASSWORD",
        ),
        (
            ["--dir", "d", "--smtp-port", "0", "--smtp-auth", "a:b", "--smtp-auth-env", "X"],
            "not allowed with",
        ),
    ],
)
def test_cli_rejects_incomplete_options(args: list[str], message: str):
    result = run_cli(*args)

    assert result.returncode == 2
    assert message in result.stderr


def test_credentials_in_headers_and_query_strings_are_not_stored(http_receiver: HttpReceiver, tmp_path: Path):
    token, key = "hook-Token-31337", "api-Key-2718"  # throwaway values for this test
    status, _ = post(
        http_receiver.port,
        f"/hook?channel=it&token={token}&api_key={key}&lang=id",
        b"{}",
        {
            "Authorization": f"Bearer {token}",
            "X-Api-Key": key,
            "Cookie": f"session={token}",
            "X-SIMRS-Event": "outage_paper_mode",
        },
    )
    assert status == 200
    [record] = http_receiver.requests
    assert record.path == "/hook?channel=it&token=***&api_key=***&lang=id"
    assert record.headers["Authorization"] == f"Bearer *** {fingerprint(token)}"
    assert record.headers["X-Api-Key"] == f"*** {fingerprint(key)}"
    assert record.headers["Cookie"].startswith("*** sha256:")
    assert record.headers["X-SIMRS-Event"] == "outage_paper_mode"
    stored = (tmp_path / HTTP_RECORDS).read_text()
    assert oct((tmp_path / HTTP_RECORDS).stat().st_mode & 0o777) == "0o600"
    assert token not in stored
    assert key not in stored


@pytest.mark.parametrize(
    ("name", "value", "kept"),
    [
        ("Authorization", "Basic bm90aWZ5OnMzY3JldA==", "Basic *** " + fingerprint("bm90aWZ5OnMzY3JldA==")),
        ("authorization", "opaque-credential", "*** " + fingerprint("opaque-credential")),
        ("Content-Type", "application/json", "application/json"),
        ("Keep-Alive", "timeout=5", "timeout=5"),
    ],
)
def test_redact_header(name: str, value: str, kept: str):
    assert redact_header(name, value) == kept


def test_redact_query_leaves_ordinary_parameters():
    assert redact_query("POST /h?a=1&password=x&b=2 HTTP/1.1") == "POST /h?a=1&password=***&b=2 HTTP/1.1"
    assert redact_query("/plain/path") == "/plain/path"
