"""A small, dependency-free SVG line chart: percent series over time, with axes and a legend.

Written for ``berth capacity --chart``: the output is one self-contained file (no scripts, no
external fonts or styles) that any browser or image viewer opens.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from xml.sax.saxutils import escape, quoteattr

WIDTH: Final = 960
HEIGHT: Final = 420
MARGIN_LEFT: Final = 64
MARGIN_RIGHT: Final = 24
MARGIN_TOP: Final = 56
MARGIN_BOTTOM: Final = 72
# Colour-blind-safe (Okabe-Ito) colours, in series order.
COLOURS: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")
_FONT: Final = "font-family='system-ui, -apple-system, Segoe UI, sans-serif'"


@dataclass(frozen=True)
class Series:
    """One named line: (time, value) points; ``None`` values leave a gap."""

    name: str
    points: Sequence[tuple[datetime, float | None]]


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """About six round tick times between ``start`` and ``end``."""
    span = (end - start).total_seconds()
    steps = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
    step = next((s for s in steps if span / s <= 7), steps[-1])
    first = datetime.fromtimestamp((int(start.timestamp()) // step + 1) * step, UTC)
    ticks: list[datetime] = []
    moment = first
    while moment <= end:
        ticks.append(moment)
        moment += timedelta(seconds=step)
    return ticks


def _tick_label(moment: datetime, span_seconds: float) -> str:
    if span_seconds <= 86400:
        return f"{moment:%H:%M}"
    return f"{moment:%m-%d %H:%M}"


def render(
    series: Sequence[Series],
    *,
    title: str,
    start: datetime,
    end: datetime,
    y_label: str = "percent",
    y_max: float = 100.0,
) -> str:
    """Return the SVG document: one line per series on a 0..``y_max`` axis from start to end."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    span = max((end - start).total_seconds(), 1.0)

    def x_of(moment: datetime) -> float:
        return MARGIN_LEFT + (moment - start).total_seconds() / span * plot_w

    def y_of(value: float) -> float:
        clamped = min(max(value, 0.0), y_max)
        return MARGIN_TOP + plot_h - clamped / y_max * plot_h

    parts: list[str] = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label={quoteattr(title)}>",
        f"<title>{escape(title)}</title>",
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='#ffffff'/>",
        f"<text x='{MARGIN_LEFT}' y='28' {_FONT} font-size='16' font-weight='600' "
        f"fill='#222'>{escape(title)}</text>",
    ]
    # Horizontal grid and the value axis.
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = y_max * fraction
        y = y_of(value)
        parts.append(
            f"<line x1='{MARGIN_LEFT}' y1='{y:.1f}' x2='{WIDTH - MARGIN_RIGHT}' y2='{y:.1f}' "
            f"stroke='#e5e5e5' stroke-width='1'/>"
        )
        parts.append(
            f"<text x='{MARGIN_LEFT - 8}' y='{y + 4:.1f}' {_FONT} font-size='11' fill='#555' "
            f"text-anchor='end'>{value:g}</text>"
        )
    parts.append(
        f"<text x='16' y='{MARGIN_TOP + plot_h / 2:.1f}' {_FONT} font-size='11' fill='#555' "
        f"transform='rotate(-90 16 {MARGIN_TOP + plot_h / 2:.1f})' text-anchor='middle'>"
        f"{escape(y_label)}</text>"
    )
    # The time axis.
    base = MARGIN_TOP + plot_h
    parts.append(
        f"<line x1='{MARGIN_LEFT}' y1='{base}' x2='{WIDTH - MARGIN_RIGHT}' y2='{base}' "
        f"stroke='#888' stroke-width='1'/>"
    )
    for tick in _time_ticks(start, end):
        x = x_of(tick)
        parts.append(f"<line x1='{x:.1f}' y1='{base}' x2='{x:.1f}' y2='{base + 5}' stroke='#888'/>")
        parts.append(
            f"<text x='{x:.1f}' y='{base + 18}' {_FONT} font-size='11' fill='#555' "
            f"text-anchor='middle'>{_tick_label(tick, span)}</text>"
        )
    parts.append(
        f"<text x='{MARGIN_LEFT + plot_w / 2:.1f}' y='{base + 36}' {_FONT} font-size='11' "
        f"fill='#555' text-anchor='middle'>time (UTC)</text>"
    )
    # One polyline per unbroken run of points, so gaps in the data stay visible as gaps.
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for moment, reading in sorted(line.points, key=lambda p: p[0]):
            if reading is None:
                runs.append([])
                continue
            runs[-1].append(f"{x_of(moment):.1f},{y_of(reading):.1f}")
        parts.append(f"<g class='series' data-series={quoteattr(line.name)}>")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f"<circle cx='{cx}' cy='{cy}' r='2.5' fill='{colour}'/>")
            elif run:
                parts.append(
                    f"<polyline points='{' '.join(run)}' fill='none' stroke='{colour}' "
                    f"stroke-width='2' stroke-linejoin='round'/>"
                )
        parts.append("</g>")
    # Legend under the axis label, with each series' latest value.
    legend_x = MARGIN_LEFT
    legend_y = HEIGHT - 14
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        values = [v for _, v in sorted(line.points, key=lambda p: p[0]) if v is not None]
        latest = f" (now {values[-1]:.0f})" if values else " (no data)"
        label = f"{line.name}{latest}"
        parts.append(
            f"<rect x='{legend_x}' y='{legend_y - 10}' width='12' height='12' fill='{colour}'/>"
        )
        parts.append(
            f"<text x='{legend_x + 18}' y='{legend_y}' {_FONT} font-size='12' fill='#222'>"
            f"{escape(label)}</text>"
        )
        legend_x += 30 + 7 * len(label)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
