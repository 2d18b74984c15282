"""The reports as people see them: the monthly and the incident report in HTML screenshotted by
headless Chromium, and printed to an A4 PDF that poppler turns back into text (pdftotext) and a
picture (pdftoppm). Each page must not be blank and must carry the title, the availability figure
and the chart. `python -m tests.unit.test_report_render docs/examples` keeps the pictures.

Needs chromium and poppler-utils (scripts/setup installs them); without them the test is skipped
on a developer's machine and fails under CI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import charts, monthly_render, pdf, report

HOSPITAL = {"name": "RSUD Contoh", "address": "Jl. Contoh No. 1, Jakarta Timur", "head_of_unit": "dr. Ani"}
STRIP_GREEN = (0x2E, 0x7D, 0x32)  # charts.GREEN: the availability strip's days at 100 %


def _tools_or_skip() -> None:
    missing = [t for t in ("pdftoppm", "pdftotext", "pdfinfo") if not shutil.which(t)]
    if pdf.browser() is None:
        missing.append("chromium")
    if not charts.available():
        missing.append("matplotlib (extra report)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {', '.join(missing)}: scripts/setup installs them")
        pytest.skip(f"not installed: {', '.join(missing)}")


def ink(png: bytes) -> tuple[float, int]:
    """(the fraction of pixels that are not white, how many are the strip's green)."""
    import numpy as np  # noqa: PLC0415  (matplotlib's, as PIL is)
    from PIL import Image  # noqa: PLC0415

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    dark = float((rgb.min(axis=2) < 235).mean())
    green = int((np.abs(rgb - np.array(STRIP_GREEN)).max(axis=2) < 12).sum())
    return dark, green


def pdf_page(data: bytes, folder: Path) -> tuple[str, str, bytes]:
    """(pdfinfo's page size, pdftotext's text, page 1 as PNG at 60 dpi)."""
    path = folder / "r.pdf"
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", path], capture_output=True, text=True, check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:"))
    text = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True, check=True).stdout
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", path, folder / "p"], check=True)
    return size, " ".join(text.split()), next(folder.glob("p*.png")).read_bytes()  # lines wrap


def monthly_html(lang: str, tmp: Path) -> tuple[str, str]:
    from tests.unit.test_monthly import make_records, summarize  # noqa: PLC0415

    m = summarize(make_records(tmp))
    return monthly_render.render(m, HOSPITAL, lang, "html"), f"{m.availability_pct:.2f} %"


def incident_html(lang: str) -> str:
    """The failover a real lab run recorded (tests/fixtures/journals/demo-failover.json)."""
    from tests.unit.test_report_golden import LAB_UNITS, load  # noqa: PLC0415

    (incident_id, events), *_ = load("demo-failover").items()
    return report.render(incident_id, events, HOSPITAL, lang, "html", LAB_UNITS)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("utc")
def test_the_monthly_report_in_html_and_pdf_is_a_page_with_title_figure_and_charts(tmp_path):
    _tools_or_skip()
    html, figure = monthly_html("id", tmp_path)
    assert figure == "99.94 %"
    shot = pdf.html_to_png(html, 1000, 1400)
    dark, green = ink(shot)
    assert dark > 0.03, f"the HTML page looks blank ({dark:.3f} of it is ink)"
    assert green > 500, "the availability strip (green days) is not on the page"
    assert monthly_render.WORDS["id"]["title"] in html
    assert figure in html
    size, text, page = pdf_page(pdf.html_to_pdf(html), tmp_path)
    assert size.endswith("pts (A4)"), size  # 595 x 842 pts, give or take Chromium's rounding
    assert "LAPORAN BULANAN KETERSEDIAAN SIMRS" in text
    assert figure in text
    assert "Ketersediaan per hari" in text  # the chart's own title, drawn as SVG text
    dark, green = ink(page)
    assert dark > 0.03
    assert green > 50, "the PDF's first page carries no availability strip"


@pytest.mark.usefixtures("utc")
def test_the_incident_report_pdf_carries_its_timeline_chart(tmp_path):
    _tools_or_skip()
    html = incident_html("en")
    size, text, _ = pdf_page(pdf.html_to_pdf(html), tmp_path)
    assert "A4" in size
    assert "SIMRS SERVER DOWNTIME: EVALUATION AND REPAIR REPORT" in text
    assert "Timeline (minutes from the first report)" in text
    assert "back to normal" in text


def main(folder: Path) -> None:
    """Write the example pictures (docs/examples): HTML screenshots and PDF first pages."""
    import tempfile  # noqa: PLC0415

    os.environ["TZ"] = "Asia/Jakarta"  # the hospital's clock
    time.tzset()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for lang in ("id", "en"):
            html, _ = monthly_html(lang, Path(tmp) / f"m{lang}")
            (folder / f"monthly.{lang}.html.png").write_bytes(pdf.html_to_png(html, 1000, 2200))
            work = Path(tmp) / f"pm{lang}"
            work.mkdir()
            (folder / f"monthly.{lang}.pdf.png").write_bytes(pdf_page(pdf.html_to_pdf(html), work)[2])
        html = incident_html("id")
        (folder / "incident-failover.id.html.png").write_bytes(pdf.html_to_png(html, 1000, 2300))
        work = Path(tmp) / "pi"
        work.mkdir()
        (folder / "incident-failover.id.pdf.png").write_bytes(pdf_page(pdf.html_to_pdf(html), work)[2])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/examples"))
