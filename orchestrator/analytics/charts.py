"""Charts drawn on the server as inline SVG: readable with no network, no script and no font download.

Pure functions from numbers to markup. Every text is escaped; colours are dark on white (contrast over 7:1 for
labels) and each mark carries a ``<title>`` (shown on hover, read by screen readers) and ``data-value`` (what the
browser test checks is drawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# Severity colours: distinguishable for the common colour-vision deficiencies (Okabe-Ito), legend says the name.
SEVERITY_COLOURS = {"low": "#0072B2", "medium": "#E69F00", "high": "#D55E00", "critical": "#7B1F5C"}
BAR = "#0B5394"
INK = "#1A1A1A"
GRID = "#D0D0D0"
FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"'


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``: 1, 2, 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>'
        f'<title>{escape(label)}</title><rect width="{width}" height="{height}" fill="#FFFFFF"/>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text in it went through escape()


def _empty(width: int, height: int, label: str, message: str) -> Markup:
    return _svg(
        width,
        height,
        label,
        [f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="{INK}">{escape(message)}</text>'],
    )


def stacked_days(days: Sequence[tuple[str, dict[str, int]]], label: str, *, width: int = 760) -> Markup:
    """Alerts per day, stacked by severity; x: days, y: alerts."""
    height, left, right, top, bottom = 260, 48, 12, 28, 44
    total = max((sum(v.values()) for _, v in days), default=0)
    if not days or total == 0:
        return _empty(width, height, label, "No alerts in this period")
    top_value = _nice_max(total)
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(days)
    body: list[str] = []
    for i in range(5):  # grid and y labels
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">{value:g}</text>')
    every = max(1, len(days) // 10)
    for i, (day, counts) in enumerate(days):
        x = left + i * slot + slot * 0.15
        y = top + plot_h
        for severity, colour in SEVERITY_COLOURS.items():
            n = counts.get(severity, 0)
            if not n:
                continue
            h = plot_h * n / top_value
            y -= h
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{colour}" data-value="{n}"><title>{escape(day)}: {n} {severity}</title></rect>'
            )
        if i % every == 0:
            body.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'fill="{INK}">{escape(day[5:])}</text>'
            )
    x = left
    for severity, colour in SEVERITY_COLOURS.items():  # legend
        body.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{x + 16}" y="18" fill="{INK}">{severity}</text>')
        x += 90
    return _svg(width, height, label, body)


def horizontal_bars(rows: Sequence[tuple[str, float]], label: str, *, unit: str = "", width: int = 760) -> Markup:
    """One bar per named value (top sources, drops per host, uptime per host), largest scale first."""
    bar_h, gap, left, right, top = 20, 8, 170, 90, 8
    height = top * 2 + max(1, len(rows)) * (bar_h + gap)
    if not rows:
        return _empty(width, 60, label, "Nothing to show in this period")
    top_value = _nice_max(max(v for _, v in rows))
    plot_w = width - left - right
    body: list[str] = []
    for i, (name, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = plot_w * value / top_value
        shown = f"{value:.1%}" if unit == "%" else f"{value:,.0f}{unit}"
        body.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" fill="{INK}">{escape(name[:24])}</text>'
            f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{BAR}" data-value="{value}">'
            f"<title>{escape(name)}: {escape(shown)}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + 14}" fill="{INK}">{escape(shown)}</text>'
        )
    return _svg(width, height, label, body)
