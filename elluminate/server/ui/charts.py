"""Bar-chart geometry for the viewer's SVG charts (pure; the template draws the shapes).

A chart is one group per criterion, one horizontal bar per series (a pass rate from 0 to 1)
inside the group. Everything is computed here in SVG user units, so the template needs no
arithmetic and no inline style (the Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .present import percent, truncate

LABEL_WIDTH = 320
BAR_WIDTH = 420
VALUE_WIDTH = 70
BAR_HEIGHT = 18
BAR_GAP = 4
GROUP_GAP = 14
TOP = 24
LABEL_CHARS = 44


@dataclass(frozen=True)
class Bar:
    series: int
    y: float
    width: float  # 0 for a missing value
    value: float | None
    text: str


@dataclass(frozen=True)
class Group:
    label: str  # shortened for the chart
    title: str  # the full text (shown on hover)
    y: float  # baseline of the label
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: float
    label_width: int
    bar_width: int
    value_x: float
    series: list[str]
    groups: list[Group]
    ticks: list[tuple[float, str]]  # (x, text) of the 0 %, 25 %, ... grid lines


def bar_chart(
    items: Sequence[tuple[str, Sequence[float | None]]], series: Sequence[str] = ("pass rate",)
) -> BarChart:
    """A chart of ``(label, values)`` items; ``values`` has one pass rate (or None) per
    ``series``."""
    groups: list[Group] = []
    y = float(TOP)
    n = max(1, len(series))
    for label, values in items:
        bars = []
        for index in range(n):
            value = values[index] if index < len(values) else None
            bars.append(
                Bar(
                    series=index,
                    y=y + index * (BAR_HEIGHT + BAR_GAP),
                    width=0.0 if value is None else max(0.0, min(1.0, value)) * BAR_WIDTH,
                    value=value,
                    text=percent(value),
                )
            )
        group_height = n * BAR_HEIGHT + (n - 1) * BAR_GAP
        groups.append(
            Group(
                label=truncate(label, LABEL_CHARS),
                title=label,
                y=y + group_height / 2 + 5,
                bars=bars,
            )
        )
        y += group_height + GROUP_GAP
    ticks = [(LABEL_WIDTH + BAR_WIDTH * f, f"{f:.0%}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return BarChart(
        width=LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH,
        height=max(y, TOP + BAR_HEIGHT) + 4,
        label_width=LABEL_WIDTH,
        bar_width=BAR_WIDTH,
        value_x=LABEL_WIDTH + BAR_WIDTH + 6,
        series=list(series),
        groups=groups,
        ticks=ticks,
    )
