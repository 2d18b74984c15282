"""A report's HTML printed to an A4 PDF (and, for the tests and docs, a page to PNG) by headless
Chromium, the browser that already draws the HTML report: the PDF is what the HTML looks like.

Chromium over WeasyPrint: the HTML-to-PNG check needs a browser anyway (so one tool, not two), it
draws the inline SVG charts exactly as the browser does, and it is one Debian package
(`apt-get install chromium`; scripts/setup installs it with the extra ``report``). WeasyPrint would
add Pango from apt plus its own Python stack, and a second renderer whose output can differ.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestrator.errors import SimrsError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
TIMEOUT_S = 120


def browser() -> str | None:
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def _run(args: list[str], folder: Path) -> None:
    exe = browser()
    if exe is None:
        raise SimrsError(
            "a PDF is printed by headless Chromium, which is not installed: `apt-get install chromium` "
            "(scripts/setup does it), or write --format html and print that",
            exit_code=2,
        )
    # --no-sandbox: the admin machine runs simrs as root, where Chromium's sandbox will not start;
    # the page is our own report from a local file, with no network and no script of its own.
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={folder / 'profile'}",
        *args,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=folder)
    except subprocess.TimeoutExpired as exc:
        raise SimrsError(f"Chromium did not finish printing within {TIMEOUT_S} s", exit_code=1) from exc
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise SimrsError(f"Chromium could not print the report: {' '.join(tail)}", exit_code=1)


def html_to_pdf(html: str) -> bytes:
    """The HTML as an A4 PDF (the page size comes from the report's own @page rule)."""
    with tempfile.TemporaryDirectory(prefix="simrs-pdf-") as tmp:
        folder = Path(tmp)
        page, out = folder / "report.html", folder / "report.pdf"
        page.write_text(html)
        _run(["--no-pdf-header-footer", f"--print-to-pdf={out}", page.as_uri()], folder)
        data = out.read_bytes() if out.is_file() else b""
    if not data.startswith(b"%PDF"):
        raise SimrsError("Chromium printed no PDF (its output was empty)", exit_code=1)
    return data


def html_to_png(html: str, width: int = 1000, height: int = 2400) -> bytes:
    """A screenshot of the HTML as a browser window of width x height pixels shows it."""
    with tempfile.TemporaryDirectory(prefix="simrs-png-") as tmp:
        folder = Path(tmp)
        page, out = folder / "report.html", folder / "report.png"
        page.write_text(html)
        _run(
            ["--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri()],
            folder,
        )
        data = out.read_bytes() if out.is_file() else b""
    if not data.startswith(b"\x89PNG"):
        raise SimrsError("Chromium took no screenshot", exit_code=1)
    return data
