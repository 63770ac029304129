"""Per-stage bar charts as inline SVG, for the HTML report and the HTML diff (no JavaScript).

One chart per figure (:data:`FIGURES`: parameters, MACs, activation memory, what training keeps
for backward), one row per stage (the network's top-level members), the bar's length
proportional to the stage's figure; with two analyses (a diff) each stage has a bar per side.
Every figure comes from :mod:`archdsl.analysis`; every bar carries its exact value in
``data-value`` and a ``<title>`` tooltip, so a test (or a script) can read the page back.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .analysis import Analysis, Stat
from .report import bytes_text, human

__all__ = ["FIGURES", "Figure", "stage_charts"]


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    value: Callable[[Stat], int]
    text: Callable[[int], str]


FIGURES: tuple[Figure, ...] = (
    Figure("params", "Parameters", lambda s: s.params, human),
    Figure("macs", "MACs", lambda s: s.macs, human),
    Figure("activations", "Activation memory (sum of outputs)", lambda s: s.output_bytes, bytes_text),
    Figure("saved", "Saved for backward (training)", lambda s: s.saved_bytes, bytes_text),
)

SERIES_COLOURS = ("#4a78a8", "#d68910")  # A (or the only network), B
LABEL_W, BAR_W, VALUE_W = 110, 230, 70
ROW_H, BAR_H, TOP = 18, 12, 24
FONT = "font-family:system-ui,sans-serif;font-size:11px"


StageRow = tuple[str, tuple[str | None, ...]]  # (label, the stage's path in each analysis or None)


def stage_charts(analyses: Sequence[Analysis], stages: Sequence[StageRow] | None = None) -> str:
    """The charts of one analysis, or of two (a diff) with a bar per side for each row of
    ``stages`` (aligned stages; by default each analysis's own, matched by path), as HTML."""
    names = [a.name for a in analyses]
    rows = list(stages) if stages is not None else _stage_rows(analyses)
    charts = [_chart(figure, analyses, rows) for figure in FIGURES]
    legend = ""
    if len(analyses) > 1:
        legend = "<p class=\"chart-legend\">" + " ".join(
            f'<span style="color:{colour}">&#9632;</span> {html.escape(name)}'
            for name, colour in zip(names, SERIES_COLOURS, strict=False)) + "</p>"
    return legend + '<div class="charts">' + "".join(charts) + "</div>"


def _stage_rows(analyses: Sequence[Analysis]) -> list[StageRow]:
    """Every analysis's stages in order, each path once, matched by path."""
    paths = dict.fromkeys(path for a in analyses for path in a.tree[""])
    return [(path, tuple(path if path in a.tree[""] else None for a in analyses)) for path in paths]


def _chart(figure: Figure, analyses: Sequence[Analysis], stages: list[StageRow]) -> str:
    values = {(i, label): None if paths[i] is None else figure.value(a.stat(paths[i]))
              for label, paths in stages for i, a in enumerate(analyses)}
    top = max([v for v in values.values() if v] + [1])
    per_stage = len(analyses)
    row = ROW_H if per_stage == 1 else BAR_H * per_stage + 8
    height = TOP + row * len(stages) + 6
    width = LABEL_W + BAR_W + VALUE_W
    parts = [(f'<svg class="chart" data-figure="{figure.key}" '
              f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
              f'aria-label="{html.escape(figure.title)} per stage" style="{FONT}">'),
             f'<text x="0" y="14" font-weight="600">{html.escape(figure.title)} per stage</text>']
    for index, (stage, paths) in enumerate(stages):
        y = TOP + index * row
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + row / 2 + 4:g}" text-anchor="end">'
                     f'{html.escape(_short(stage))}</text>')
        for series, analysis in enumerate(analyses):
            value = values[(series, stage)]
            if value is None:
                continue
            length = BAR_W * value / top
            bar_y = y + (row - BAR_H * per_stage) / 2 + series * BAR_H
            label = f"{analysis.name} {paths[series]}: {value:,}"
            parts.append(
                f'<rect class="bar" data-stage="{html.escape(paths[series] or "")}" '
                f'data-series="{html.escape(analysis.name)}" data-value="{value}" x="{LABEL_W}" '
                f'y="{bar_y:g}" width="{length:.2f}" height="{BAR_H - 2}" '
                f'fill="{SERIES_COLOURS[series % len(SERIES_COLOURS)]}">'
                f'<title>{html.escape(label)}</title></rect>')
            parts.append(f'<text x="{LABEL_W + length + 4:.2f}" y="{bar_y + BAR_H - 3:g}" '
                         f'fill="#555">{html.escape(figure.text(value)) if value else "0"}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(stage: str, limit: int = 18) -> str:
    return stage if len(stage) <= limit else stage[:limit - 1] + "\u2026"
