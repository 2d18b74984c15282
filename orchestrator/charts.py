"""Charts for the reports (matplotlib, Agg backend: no display), as SVG text to embed in the HTML
(and so in the PDF printed from it). Each function takes plain numbers and words, returns SVG.

matplotlib is the optional extra ``report``: without it the reports are written without charts
(``available()`` says so) and say where the charts would be.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

GREEN, AMBER, RED, GREY, BLUE = "#2e7d32", "#f9a825", "#c62828", "#9e9e9e", "#1565c0"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width, height), dpi=96)
    fig.set_layout_engine("constrained")
    return fig


def _svg(fig: Any) -> str:
    import matplotlib  # noqa: PLC0415

    buf = io.StringIO()
    # Text as text (not outlines): the browser draws it in the page's font, the PDF can be searched.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})  # no date: same input, same bytes
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue: it is embedded in HTML


def availability_strip(daily: Sequence[float], title: str, days_label: str) -> str:
    """One square per day, green at 100 %, amber from 99 %, red below."""
    fig = _figure(7.2, 1.3)
    ax = fig.add_subplot()
    colors = [GREEN if v >= 100 else AMBER if v >= 99 else RED for v in daily]
    ax.bar(range(1, len(daily) + 1), [1] * len(daily), color=colors, width=0.9)
    for i, v in enumerate(daily, start=1):
        if v < 100:
            ax.text(i, 0.5, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white")
    ax.set_xlim(0.4, max(len(daily), 28) + 0.6)
    ax.set_yticks([])
    ax.set_xlabel(days_label, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _svg(fig)


def bars(labels: Sequence[str], values: Sequence[float], title: str, unit: str, color: str = RED) -> str:
    """Horizontal bars (downtime per incident), one per label; an empty chart says so."""
    fig = _figure(7.2, 0.6 + 0.3 * max(len(labels), 1))
    ax = fig.add_subplot()
    if labels:
        ax.barh(list(labels), list(values), color=color)
        ax.invert_yaxis()
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:g}", va="center", fontsize=7)
    else:
        ax.text(0.5, 0.5, "-", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel(unit, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _svg(fig)


def backup_age(ages: Sequence[float | None], title: str, days_label: str, unit: str) -> str:
    """The newest verified backup's age at the end of each day; a day with none is marked grey."""
    fig = _figure(7.2, 2.0)
    ax = fig.add_subplot()
    days = range(1, len(ages) + 1)
    known = [(d, a) for d, a in zip(days, ages, strict=True) if a is not None]
    if known:
        ax.plot([d for d, _ in known], [a for _, a in known], marker="o", markersize=3, color=BLUE)
    missing = [d for d, a in zip(days, ages, strict=True) if a is None]
    if missing:
        ax.scatter(missing, [0] * len(missing), marker="x", color=GREY, s=12)
    ax.axhline(1, color=AMBER, linewidth=0.8, linestyle="--")
    ax.set_xlim(0.4, max(len(ages), 28) + 0.6)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(days_label, fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _svg(fig)


def rto_rpo(
    labels: Sequence[str], rto: Sequence[float | None], rpo: Sequence[float | None], title: str
) -> str:
    """RTO and RPO (minutes) side by side for each drill and failover."""
    fig = _figure(7.2, 2.2)
    ax = fig.add_subplot()
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [v or 0 for v in rto], width=0.4, color=BLUE, label="RTO")
    ax.bar([x + 0.2 for x in xs], [v or 0 for v in rpo], width=0.4, color=AMBER, label="RPO")
    ax.set_xticks(list(xs), list(labels), rotation=20, ha="right", fontsize=6)
    ax.set_ylabel("min", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    if labels:
        ax.legend(fontsize=7)
    return _svg(fig)


def timeline(marks: Sequence[tuple[float, str, str]], title: str) -> str:
    """An incident's course: (epoch seconds, label, color) as marks on one time axis, labels on
    four levels in turn (above, below, higher, lower) so that close marks stay readable."""
    fig = _figure(7.2, 3.4)
    ax = fig.add_subplot()
    if marks:
        t0 = marks[0][0]
        xs = [(t - t0) / 60 for t, _, _ in marks]
        ax.axhline(0, color=GREY, linewidth=1)
        for i, ((t, label, color), x) in enumerate(zip(marks, xs, strict=True)):
            y = (1.0, -1.0, 2.2, -2.2)[i % 4]
            ax.plot([x, x], [0, y * 0.9], color=color, linewidth=1)
            ax.plot([x], [0], marker="o", color=color, markersize=5)
            stamp = time.strftime("%H:%M:%S", time.localtime(t))
            ax.text(
                x, y * 0.92, f"{stamp}\n{label}", ha="center", va="bottom" if y > 0 else "top", fontsize=7
            )
        span = max(xs[-1], 1)
        ax.set_xlim(-0.1 * span, span * 1.1)
    ax.set_ylim(-3.4, 3.4)
    ax.set_yticks([])
    ax.set_xlabel("min", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return _svg(fig)
