"""The dashboard's charts, drawn on the server as inline SVG: lines, intervals and steps.

Plain functions from numbers to an SVG string (no JavaScript, no files to serve, readable by a
screen reader through the chart's title). Each chart is a box with a y axis labelled at its
minimum and maximum and an x axis labelled at its ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


@dataclass(frozen=True)
class Interval:
    """One look at an experiment: when (x), the estimate and its interval."""

    x: float
    estimate: float
    low: float
    high: float


class _Frame:
    """Maps data coordinates into the plot area."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.x0, self.x1 = min(xs), max(xs)
        self.y0, self.y1 = min(ys), max(ys)
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            pad = abs(self.y0) * 0.1 or 1.0
            self.y0, self.y1 = self.y0 - pad, self.y1 + pad

    def x(self, value: float) -> float:
        span = WIDTH - LEFT - RIGHT
        return round(LEFT + (value - self.x0) / (self.x1 - self.x0) * span, 2)

    def y(self, value: float) -> float:
        span = HEIGHT - TOP - BOTTOM
        return round(TOP + (1 - (value - self.y0) / (self.y1 - self.y0)) * span, 2)


def _svg(title: str, body: list[str], *, kind: str) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" data-chart="{kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        + "".join(body)
        + "</svg>"
    )


def _axes(frame: _Frame, *, x_label: str, y_format: str) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    return [
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">'
        f"{format(frame.y1, y_format)}</text>",
        f'<text class="tick" x="{LEFT - 6}" y="{bottom}" text-anchor="end">'
        f"{format(frame.y0, y_format)}</text>",
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{_number(frame.x0)}</text>',
        f'<text class="tick" x="{right}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{_number(frame.x1)} {escape(x_label)}</text>",
    ]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def _empty(title: str, message: str, *, kind: str) -> str:
    text = f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
    return _svg(title, [text + escape(message) + "</text>"], kind=kind)


def line_chart(values: Sequence[float], *, title: str, x_label: str = "step") -> str:
    """A series against its index (1-based): a training-loss curve."""
    if not values:
        return _empty(title, "no points yet", kind="line")
    xs = [float(i + 1) for i in range(len(values))]
    frame = _Frame(xs, values)
    points = " ".join(f"{frame.x(x)},{frame.y(y)}" for x, y in zip(xs, values, strict=True))
    body = [*_axes(frame, x_label=x_label, y_format=".3g")]
    body.append(f'<polyline class="series" data-points="{len(values)}" points="{points}"/>')
    return _svg(title, body, kind="line")


def interval_chart(looks: Sequence[Interval], *, title: str, x_label: str = "h") -> str:
    """Estimates with their intervals over time, and the zero line (no effect)."""
    if not looks:
        return _empty(title, "no analysis yet: it needs events from both arms", kind="interval")
    xs = [look.x for look in looks]
    frame = _Frame(xs, [0.0, *(v for look in looks for v in (look.low, look.high))])
    upper = [f"{frame.x(look.x)},{frame.y(look.high)}" for look in looks]
    lower = [f"{frame.x(look.x)},{frame.y(look.low)}" for look in reversed(looks)]
    estimate = " ".join(f"{frame.x(look.x)},{frame.y(look.estimate)}" for look in looks)
    zero = frame.y(0.0)
    body = [
        *_axes(frame, x_label=x_label, y_format="+.1%"),
        f'<polygon class="band" points="{" ".join(upper + lower)}"/>',
        f'<line class="zero" x1="{LEFT}" y1="{zero}" x2="{WIDTH - RIGHT}" y2="{zero}"/>',
        f'<polyline class="series" data-points="{len(looks)}" points="{estimate}"/>',
    ]
    return _svg(title, body, kind="interval")


def step_chart(steps: Sequence[tuple[float, float]], *, title: str, x_label: str = "h") -> str:
    """A value held between changes (traffic share over hours), drawn as steps."""
    if not steps:
        return _empty(title, "no traffic changes yet", kind="steps")
    xs = [x for x, _ in steps]
    frame = _Frame(xs, [0.0, 1.0, *(y for _, y in steps)])
    points: list[str] = []
    for index, (x, y) in enumerate(steps):
        if index:
            points.append(f"{frame.x(x)},{frame.y(steps[index - 1][1])}")
        points.append(f"{frame.x(x)},{frame.y(y)}")
    body = [*_axes(frame, x_label=x_label, y_format=".0%")]
    body.append(
        f'<polyline class="series" data-points="{len(steps)}" points="{" ".join(points)}"/>'
    )
    return _svg(title, body, kind="steps")
