"""The lab servers' management controllers: IPMI, Redfish (TLS) and Wake-on-LAN, one process.

A real server is switched by its BMC over the network; the lab's servers are containers, so this
process plays their BMCs. The drivers reach it only over loopback (each server's BMC has its own
address 127.0.1.N, N the last octet of the server's own address), never through podman:

| interface     | where                                   | maps to                              |
| IPMI 2.0      | UDP 623 on the BMC address (pyghmi)     | chassis on/off/soft/cycle/status     |
| Redfish       | HTTPS 443 on the BMC address, basic auth | Systems/1 PowerState, ComputerSystem.Reset |
| Wake-on-LAN   | UDP 9 on the loopback broadcast          | power on the server the packet names |

Power off is the lab's power cut (``podman kill``), a soft off is ``podman stop``, power on is the
lab's power-on (``lab.power_on``: the external disk handled as today), status is the container's
state. Faults (``faults.json`` beside the config, read on every request) make one BMC ``silent``
(no answer at all), reject the lab's ``password``, or ``liar`` (accepts a power-off, does nothing,
keeps saying on).

``python -m orchestrator.lab.bmc --dir D serve`` serves until SIGTERM; ``start`` / ``stop`` (or
``start(D)`` / ``stop(D)``) run it in the background (pid in ``D/bmc.json``). Nothing here prints
a password.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyghmi.ipmi import bmc as pyghmi_bmc
from pyghmi.ipmi.private import serversession

from orchestrator.lab import lab, podman
from orchestrator.lab.podman import LabError

log = logging.getLogger("simrs.lab.bmc")

CONFIG = "config.json"  # servers, addresses, the login (0600)
FAULTS = "faults.json"  # {server: silent | password | liar}
STATE = "bmc.json"  # pid and addresses, present while serving
LOG = "bmc.log"
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CERT = "bmc-cert.pem"
KEY = "bmc-key.pem"
FAULT_KINDS = ("silent", "password", "liar")
USER = "simrs-power"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SILENT_HOLD_SECONDS = 40.0  # a silent Redfish BMC holds the connection longer than any client waits

SYSTEM_ID = "1"
RESET_TYPES = ("On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


# ---- pure parts ----------------------------------------------------------------------------


def parse_magic_packet(data: bytes) -> str | None:
    """The MAC a Wake-on-LAN magic packet names (aa:bb:..), or None if it is not one. Like a
    network card, look for 6 x 0xFF followed by one MAC 16 times anywhere in the payload (senders
    add more repetitions, a SecureOn password, or padding)."""
    start = data.find(b"\xff" * 6)
    while start != -1:
        mac = data[start + 6 : start + 12]
        if len(mac) == 6 and data[start + 6 : start + 102] == mac * 16:
            return ":".join(f"{b:02x}" for b in mac)
        start = data.find(b"\xff" * 6, start + 1)
    return None


def basic_auth_ok(header: str | None, user: str, password: str) -> bool:
    """Whether an HTTP Authorization header carries exactly this login (constant-time compare)."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    name, sep, secret = given.partition(":")
    return bool(sep) and hmac.compare_digest(name, user) & hmac.compare_digest(secret, password)


def redfish_power_state(state: str) -> str:
    """The container's state (podman's word, or starting) as a Redfish PowerState."""
    if state == "starting":
        return "PoweringOn"
    return "On" if state in ("running", "paused", "stopping") else "Off"


def system_resource(name: str, state: str) -> dict[str, Any]:
    uri = f"/redfish/v1/Systems/{SYSTEM_ID}"
    return {
        "@odata.id": uri,
        "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
        "Id": SYSTEM_ID,
        "Name": name,
        "HostName": name,
        "Manufacturer": "SIMRS lab",
        "Model": "podman container",
        "PowerState": redfish_power_state(state),
        "Status": {"State": "Enabled", "Health": "OK"},
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": f"{uri}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": list(RESET_TYPES),
            }
        },
    }


def redfish_get(path: str, name: str, state: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a GET on this BMC's Redfish tree."""
    path = path.split("?", 1)[0].rstrip("/")
    if path == "/redfish/v1":
        return 200, {
            "@odata.id": "/redfish/v1",
            "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
            "Id": "RootService",
            "Name": "SIMRS lab BMC",
            "RedfishVersion": "1.6.0",
            "Systems": {"@odata.id": "/redfish/v1/Systems"},
        }
    if path == "/redfish/v1/Systems":
        return 200, {
            "@odata.id": "/redfish/v1/Systems",
            "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
            "Name": "Computer System Collection",
            "Members@odata.count": 1,
            "Members": [{"@odata.id": f"/redfish/v1/Systems/{SYSTEM_ID}"}],
        }
    if path == f"/redfish/v1/Systems/{SYSTEM_ID}":
        return 200, system_resource(name, state)
    return 404, redfish_error(f"no resource at {path}")


def reset_action(path: str, body: dict[str, Any]) -> tuple[int, str | None, str]:
    """(HTTP status, power action or None, message) of a POST; actions: on, off, soft, cycle."""
    if path.rstrip("/") != f"/redfish/v1/Systems/{SYSTEM_ID}/Actions/ComputerSystem.Reset":
        return 404, None, f"no action at {path}"
    kind = body.get("ResetType") if isinstance(body, dict) else None
    action = {
        "On": "on",
        "ForceOff": "off",
        "GracefulShutdown": "soft",
        "ForceRestart": "cycle",
        "PowerCycle": "cycle",
    }.get(kind or "")
    if action is None:
        return 400, None, f"ResetType {kind!r} is not one of {', '.join(RESET_TYPES)}"
    return 204, action, f"ResetType {kind} accepted"


def redfish_error(message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "Base.1.8.GeneralError",
            "message": message,
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.GeneralError", "Message": message}],
        }
    }


def new_login() -> dict[str, str]:
    return {"user": USER, "password": secrets.token_urlsafe(18)}


# ---- the servers' power --------------------------------------------------------------------


class Faults:
    """The faults file, read again on every question (a fault applies at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def of(self, server: str) -> str | None:
        try:
            return json.loads(self.path.read_text()).get(server)
        except (FileNotFoundError, json.JSONDecodeError):
            return None


class Server:
    """One lab server's power, as its BMC sees and switches it."""

    def __init__(self, name: str, container: str, lab_disks: bool, faults: Faults, login: dict[str, str]):
        self.name = name
        self.container = container
        self.lab_disks = lab_disks
        self.faults = faults
        self._login = login
        self._starting = False
        self._lock = threading.Lock()

    @property
    def fault(self) -> str | None:
        return self.faults.of(self.name)

    def password(self) -> str:
        """The password this BMC accepts now (the password fault changes it, as an admin would)."""
        return self._login["password"] + ("-changed" if self.fault == "password" else "")

    def user(self) -> str:
        return self._login["user"]

    def state(self) -> str:
        if self._starting:
            return "starting"
        return lab.container_state(self.container) or "missing"

    def is_on(self) -> bool:
        return self.state() in ("running", "paused", "stopping", "starting")

    def act(self, action: str) -> str:
        """Switch: on, off (power cut), soft (clean shutdown), cycle. Returns what was done.
        Power-on runs in the background, as a real BMC answers before the server has booted."""
        if self.fault == "liar" and action in ("off", "soft"):
            log.info("%s: %s accepted and ignored (fault liar)", self.name, action)
            return "accepted (ignored: fault liar)"
        if action == "off":
            if self.is_on():
                podman.run("kill", self.container, check=False, timeout=30)
            log.info("%s: power off (podman kill)", self.name)
            return "off"
        if action == "soft":
            threading.Thread(target=self._soft, daemon=True).start()
            return "soft off started"
        if action == "cycle":
            podman.run("kill", self.container, check=False, timeout=30)
            self._start_async()
            return "cycled"
        if action == "on":
            if not self.is_on():
                self._start_async()
            return "on"
        raise ValueError(action)

    def _soft(self) -> None:
        podman.run("stop", "--time", "60", self.container, check=False, timeout=90)
        log.info("%s: soft off done", self.name)

    def _start_async(self) -> None:
        with self._lock:
            if self._starting:
                return
            self._starting = True
        threading.Thread(target=self._start, daemon=True).start()

    def _start(self) -> None:
        try:
            if self.lab_disks:
                lab.power_on(self.container)
            else:
                podman.run("start", self.container, timeout=120)
            log.info("%s: powered on", self.name)
        except Exception as exc:
            log.warning("%s: power on failed: %s", self.name, str(exc)[:300])
        finally:
            self._starting = False


# ---- IPMI ----------------------------------------------------------------------------------


def _ipmi_class():
    # pyghmi's server does only cipher suite 3 (HMAC-SHA1) but accepts a client's SHA-256 proposal
    # (its own client's first try) and then answers in SHA-1, which that client cannot read. A real
    # BMC without SHA-256 refuses the proposal (0x11, invalid authentication algorithm) and the
    # client retries with SHA-1: do that.
    if not getattr(serversession.ServerSession, "_simrs_sha1_only", False):
        original = serversession.ServerSession.create_open_session_response

        def create_open_session_response(self, request):
            if len(request) > 12 and request[12] != 1:
                self.clientsessionid = request[4:8]
                self.managedsessionid = os.urandom(4)
                return bytearray([request[0], 0x11, 0, 0]) + request[4:8]
            return original(self, request)

        serversession.ServerSession.create_open_session_response = create_open_session_response
        serversession.ServerSession._simrs_sha1_only = True

    class LabIpmi(pyghmi_bmc.Bmc):
        """A pyghmi BMC whose chassis is a lab server."""

        def __init__(self, server: Server, address: str, port: int) -> None:
            self.server = server
            super().__init__(_IpmiLogin(server), port=port, address=address)

        def sessionless_data(self, data, sockaddr):
            if self.server.fault == "silent":
                return None
            return super().sessionless_data(data, sockaddr)

        def handle_raw_request(self, request, session):
            if self.server.fault == "silent":
                return None
            return super().handle_raw_request(request, session)

        def get_power_state(self):
            state = "on" if self.server.is_on() else "off"
            log.info("ipmi %s: chassis status %s", self.server.name, state)
            return state

        def _act(self, action: str) -> int:
            log.info("ipmi %s: chassis control %s", self.server.name, action)
            try:
                self.server.act(action)
            except Exception as exc:  # the client gets a completion code, the log the reason
                log.warning("ipmi %s: %s failed: %s", self.server.name, action, str(exc)[:300])
                return 0xFF
            return 0

        def power_on(self):
            return self._act("on")

        def power_off(self):
            return self._act("off")

        def power_shutdown(self):
            return self._act("soft")

        def power_cycle(self):
            return self._act("cycle")

        def power_reset(self):
            return self._act("cycle")

        def get_system_guid(self):
            return uuid.uuid5(uuid.NAMESPACE_DNS, self.server.name + ".simrs-lab")

    return LabIpmi


class _IpmiLogin:
    """pyghmi's authdata: .get(user) -> the password it accepts now."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def get(self, user, default=None):
        return self.server.password() if user == self.server.user() else default


# ---- Redfish -------------------------------------------------------------------------------


def _redfish_handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SIMRS-lab-BMC/1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("redfish %s: " + fmt, server.name, *args)

        def _silent(self) -> bool:
            if server.fault != "silent":
                return False
            time.sleep(SILENT_HOLD_SECONDS)
            self.close_connection = True
            return True

        def _send(self, status: int, body: dict[str, Any] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="SIMRS lab BMC"')
            if data:
                self.send_header("Content-Type", "application/json")
                self.send_header("OData-Version", "4.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if basic_auth_ok(self.headers.get("Authorization"), server.user(), server.password()):
                return True
            self._send(401, redfish_error("authentication failed: wrong user name or password"))
            return False

        def do_GET(self) -> None:
            if self._silent():
                return
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/redfish/v1" and not self._authorised():
                return
            status, body = redfish_get(self.path, server.name, server.state())
            self._send(status, body)

        def do_POST(self) -> None:
            if self._silent():
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._authorised():
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, redfish_error("the body is not JSON"))
                return
            status, action, message = reset_action(self.path.split("?", 1)[0], body)
            if action is None:
                self._send(status, redfish_error(message))
                return
            try:
                server.act(action)
            except Exception as exc:
                self._send(500, redfish_error(f"{action} failed: {str(exc)[:200]}"))
                return
            self._send(status, None)

    return Handler


# ---- Wake-on-LAN ---------------------------------------------------------------------------


def _wol_loop(sock: socket.socket, by_mac: dict[str, Server], stop: threading.Event) -> None:
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            data, sender = sock.recvfrom(2048)
        except TimeoutError:
            continue
        except OSError:
            return
        mac = parse_magic_packet(data)
        target = by_mac.get(mac or "")
        if target is None:
            log.info("wol: packet from %s names %s: not a lab server, ignored", sender[0], mac or "no MAC")
            continue
        log.info("wol: magic packet for %s (%s)", target.name, mac)
        try:
            target.act("on")
        except Exception as exc:
            log.warning("wol: power on %s failed: %s", target.name, exc)


# ---- the process ---------------------------------------------------------------------------


def write_tls(directory: Path, addresses: Sequence[str]) -> None:
    """A lab CA and one certificate for every BMC address (the CA's cert is what drivers trust)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SIMRS lab BMC CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SIMRS lab BMC")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write(directory / CA_CERT, ca.public_bytes(pem), 0o644)
    _write(directory / CA_KEY, ca_key.private_bytes(pem, pkcs8, plain), 0o600)
    _write(directory / CERT, cert.public_bytes(pem), 0o644)
    _write(directory / KEY, key.private_bytes(pem, pkcs8, plain), 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def write_config(directory: Path, config: dict[str, Any]) -> None:
    """The BMCs' config (with the login: 0600) and their TLS files."""
    _write(directory / CONFIG, json.dumps(config, indent=2).encode(), 0o600)
    write_tls(directory, [s["address"] for s in config["servers"]])


def serve(directory: Path, ready: Callable[[dict[str, Any]], None] | None = None) -> int:
    config = json.loads((directory / CONFIG).read_text())
    faults = Faults(directory / FAULTS)
    login = {"user": config["user"], "password": config["password"]}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lab_disks = bool(config.get("lab_disks", False))
    servers = [Server(s["name"], s["container"], lab_disks, faults, login) for s in config["servers"]]
    ipmi_cls = _ipmi_class()
    https: list[ThreadingHTTPServer] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / CERT, directory / KEY)
    for server, s in zip(servers, config["servers"], strict=True):
        ipmi_cls(server, s["address"], int(s.get("ipmi_port", 623)))
        httpd = ThreadingHTTPServer((s["address"], int(s.get("redfish_port", 443))), _redfish_handler(server))
        httpd.daemon_threads = True
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        https.append(httpd)
    wol = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wol.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    wol.bind((config["wol_address"], int(config["wol_port"])))
    by_mac = {s["mac"].lower(): srv for srv, s in zip(servers, config["servers"], strict=True)}
    threads = [
        threading.Thread(target=h.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True) for h in https
    ]
    threads.append(threading.Thread(target=_wol_loop, args=(wol, by_mac, stop), daemon=True))
    threads.append(threading.Thread(target=ipmi_cls.listen, kwargs={"timeout": 1}, daemon=True))
    for t in threads:
        t.start()
    state = {
        "pid": os.getpid(),
        "servers": [{k: s[k] for k in ("name", "address", "mac")} for s in config["servers"]],
        "wol": f"{config['wol_address']}:{config['wol_port']}",
    }
    (directory / STATE).write_text(json.dumps(state, indent=2) + "\n")
    log.info("serving %s", state)
    if ready:
        ready(state)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        for h in https:
            h.shutdown()
        wol.close()
        with contextlib.suppress(FileNotFoundError):
            if json.loads((directory / STATE).read_text()).get("pid") == os.getpid():
                (directory / STATE).unlink()
    return 0


def start(directory: Path) -> dict[str, Any]:
    """Start the BMC process in the background; return its state once it serves. One left running
    by an earlier start (a killed `lab up`) is stopped first: it holds the addresses."""
    stop(directory)
    logged = (directory / LOG).stat().st_size if (directory / LOG).exists() else 0
    # setsid -f: the server is no one's child (the caller may exit; nothing waits for it).
    with (directory / LOG).open("ab") as logfile:
        subprocess.run(
            ["setsid", "-f", sys.executable, "-m", "orchestrator.lab.bmc", "--dir", str(directory), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=logfile,
            cwd=str(Path(__file__).resolve().parents[2]),
            check=True,
            timeout=30,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if (directory / STATE).exists():
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads((directory / STATE).read_text())
        if "Traceback" in (directory / LOG).read_text(errors="replace")[logged:]:
            break
        time.sleep(0.1)
    tail = (directory / LOG).read_text(errors="replace")[logged:][-600:]
    raise LabError(f"the lab's BMCs did not start (see {directory / LOG}): {tail}")


def stop(directory: Path) -> None:
    """Stop the BMC process named in the state file (only if it is ours)."""
    try:
        pid = int(json.loads((directory / STATE).read_text())["pid"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        cmdline = b""
    if b"orchestrator.lab.bmc" in cmdline:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if _zombie(pid):
                break
            time.sleep(0.1)
        else:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
    (directory / STATE).unlink(missing_ok=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def set_fault(directory: Path, server: str, fault: str | None) -> None:
    path = directory / FAULTS
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        current = {}
    if fault is None:
        current.pop(server, None)
    else:
        current[server] = fault
    path.write_text(json.dumps(current))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.lab.bmc", description="The lab's BMCs.")
    parser.add_argument("--dir", type=Path, required=True, help="the BMCs' directory (config.json in it)")
    parser.add_argument("command", choices=("serve", "start", "stop"))
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.dir)
        return 0
    if args.command == "start":  # in the background (Molecule's power_bmc): TLS files made if missing
        if not (args.dir / CERT).exists():
            config = json.loads((args.dir / CONFIG).read_text())
            write_tls(args.dir, [s["address"] for s in config["servers"]])
        sys.stdout.write(json.dumps(start(args.dir)) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return serve(args.dir)


if __name__ == "__main__":
    sys.exit(main())
