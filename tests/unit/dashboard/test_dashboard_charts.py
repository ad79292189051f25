"""The SVG charts: points where the numbers say, empty states, and a readable title."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tuneloop.dashboard.charts import HEIGHT, Interval, interval_chart, line_chart, step_chart

SVG = "{http://www.w3.org/2000/svg}"


def _points(svg: str, tag: str = "polyline") -> list[tuple[float, float]]:
    element = ET.fromstring(svg).find(f"{SVG}{tag}[@class='series']")
    assert element is not None
    return [tuple(map(float, p.split(","))) for p in element.attrib["points"].split()]  # type: ignore[misc]


def test_a_falling_loss_is_drawn_falling_left_to_right() -> None:
    svg = line_chart([3.0, 2.0, 1.0], title="loss <of> run")
    points = _points(svg)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert points[0][1] < points[-1][1]  # SVG y grows downwards: a lower loss is further down
    assert "loss &lt;of&gt; run" in svg and 'role="img"' in svg


def test_empty_series_say_so() -> None:
    assert "no points yet" in line_chart([], title="t")
    assert "needs events" in interval_chart([], title="t")
    assert "no traffic" in step_chart([], title="t")


def test_the_interval_band_contains_the_estimate_and_the_zero_line_is_drawn() -> None:
    looks = [Interval(1, 0.1, -0.2, 0.4), Interval(2, 0.12, 0.02, 0.22)]
    svg = interval_chart(looks, title="lift")
    root = ET.fromstring(svg)
    band = root.find(f"{SVG}polygon")
    assert band is not None and len(band.attrib["points"].split()) == 4
    zero = root.find(f"{SVG}line[@class='zero']")
    assert zero is not None and 0 < float(zero.attrib["y1"]) < HEIGHT
    assert re.search(r"\+40\.0%", svg)  # the top of the axis is the highest bound


def test_steps_hold_each_value_until_the_next_change() -> None:
    points = _points(step_chart([(0, 0.1), (24, 0.2), (48, 0.0)], title="traffic"))
    assert len(points) == 5  # two corners added
    assert points[1][1] == points[0][1] and points[1][0] == points[2][0]
