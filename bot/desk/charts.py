"""The desk's charts, drawn as inline SVG by hand: no script, no plotting library, nothing fetched from elsewhere.

``trend_svg`` draws the overview's 12 months: received and resolved requests as bars against the left axis,
the on-time rate and the satisfaction as lines against the right axis (0-100 %), and the satisfaction target
as a dashed line. Every text in it is escaped and comes through the reader's translator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from babel.dates import format_date

from bot.core.desk_figures import TrendMonth
from bot.i18n import Translator

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 40, 44
RECEIVED_COLOUR, RESOLVED_COLOUR = "#8fb3d9", "#3c8d5a"
ON_TIME_COLOUR, SATISFACTION_COLOUR, TARGET_COLOUR = "#d9822b", "#7b4fa6", "#c0392b"
GRID_LINES = 4


@dataclass(frozen=True)
class _Frame:
    """Where the plot area lies and how many months share it."""

    months: int
    top_count: int

    @property
    def inner_width(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def inner_height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def slot(self, index: int) -> float:
        """The left edge of month ``index``'s slot."""
        return LEFT + self.inner_width * index / self.months

    @property
    def slot_width(self) -> float:
        return self.inner_width / self.months

    def count_y(self, count: int) -> float:
        return TOP + self.inner_height * (1 - count / self.top_count)

    def rate_y(self, rate: float) -> float:
        return TOP + self.inner_height * (1 - rate)


def _nice_top(largest: int) -> int:
    """The top of the count axis: ``GRID_LINES`` steps of 1, 2 or 5 times a power of ten, at least ``largest``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude * GRID_LINES >= largest:
                return step * magnitude * GRID_LINES
        magnitude *= 10


def _month_label(t: Translator, point: TrendMonth, first: bool) -> tuple[str, str]:
    """The month's short name, and its year under the first month and under January."""
    day = date(point.month.year, point.month.month, 1)
    year = format_date(day, "y", locale=t.babel_locale) if first or point.month.month == 1 else ""
    return format_date(day, "MMM", locale=t.babel_locale), year


def _text(x: float, y: float, content: str, anchor: str = "middle", colour: str = "#333") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" font-size="11">'
            f"{escape(content)}</text>")


def _axes(t: Translator, frame: _Frame) -> list[str]:
    parts = []
    for step in range(GRID_LINES + 1):
        share = step / GRID_LINES
        y = frame.rate_y(share)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        parts.append(_text(LEFT - 6, y + 4, t.number(round(frame.top_count * share)), "end"))
        parts.append(_text(WIDTH - RIGHT + 6, y + 4, t.percent(share), "start"))
    return parts


def _bars(t: Translator, trend: Sequence[TrendMonth], frame: _Frame) -> list[str]:
    parts = []
    width = frame.slot_width * 0.35
    for index, point in enumerate(trend):
        left = frame.slot(index) + frame.slot_width * 0.15
        for offset, count, colour in ((0.0, point.counts.received, RECEIVED_COLOUR),
                                      (width, point.counts.resolved, RESOLVED_COLOUR)):
            y = frame.count_y(count)
            parts.append(f'<rect x="{left + offset:.1f}" y="{y:.1f}" width="{width:.1f}" '
                         f'height="{TOP + frame.inner_height - y:.1f}" fill="{colour}">'
                         f"<title>{escape(t.number(count))}</title></rect>")
        name, year = _month_label(t, point, index == 0)
        centre = frame.slot(index) + frame.slot_width / 2
        parts.append(_text(centre, HEIGHT - BOTTOM + 16, name))
        if year:
            parts.append(_text(centre, HEIGHT - BOTTOM + 30, year))
    return parts


def _rate_line(trend: Sequence[TrendMonth], frame: _Frame, rates: Sequence[float | None], colour: str) -> list[str]:
    """A line through the months that have the rate, with a dot on each; months without one break it."""
    parts: list[str] = []
    run: list[str] = []
    for index, rate in enumerate([*rates, None]):
        if rate is None:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>')
            run = []
            continue
        x, y = frame.slot(index) + frame.slot_width / 2, frame.rate_y(rate)
        run.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    return parts


def _legend(entries: Sequence[tuple[str, str]]) -> list[str]:
    parts, x = [], float(LEFT)
    for label, colour in entries:
        parts.append(f'<rect x="{x:.1f}" y="12" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 21, label, "start"))
        x += 24 + 12 * len(label) * (1.6 if not label.isascii() else 0.6)
    return parts


def trend_svg(trend: Sequence[TrendMonth], t: Translator, target: float | None = None) -> str:
    """The trend as a standalone ``<svg>`` element, labelled in ``t``'s language."""
    frame = _Frame(max(len(trend), 1), _nice_top(max((p.counts.received for p in trend), default=0)))
    title = t._("Requests over the last 12 months")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        *_axes(t, frame),
        *_bars(t, trend, frame),
        *_rate_line(trend, frame, [p.counts.on_time_rate for p in trend], ON_TIME_COLOUR),
        *_rate_line(trend, frame, [p.counts.satisfaction_rate for p in trend], SATISFACTION_COLOUR),
    ]
    legend = [(t._("Received"), RECEIVED_COLOUR), (t._("Resolved"), RESOLVED_COLOUR),
              (t._("On-time rate"), ON_TIME_COLOUR), (t._("Satisfaction (4-5 stars)"), SATISFACTION_COLOUR)]
    if target is not None:
        y = frame.rate_y(target)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{TARGET_COLOUR}" '
                     f'stroke-dasharray="6 4"/>')
        legend.append((t._("Target {rate}").format(rate=t.percent(target)), TARGET_COLOUR))
    parts += _legend(legend)
    parts.append("</svg>")
    return "\n".join(parts)
