"""Inline SVG charts for the leaderboard page: per-metric bar charts with 95% intervals, one radar per model.

Plain strings, no plotting library: the page stays one self-contained file.
"""

from __future__ import annotations

import math
from html import escape

from mvbench.leaderboard.ranking import Entry, displayed
from mvbench.tasks import METRICS

# Tableau 10: distinguishable, colour-blind-friendlier than the default cycle.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


def colour(i: int) -> str:
    """The colour of the i-th model (the same in every chart)."""
    return PALETTE[i % len(PALETTE)]


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 0.1
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10 ** exp
        if top >= value - 1e-12:
            return top
    return 10 ** (exp + 1)


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v else "0"


def bar_chart(key: str, entries: list[Entry], colours: dict[str, str], width: int = 300, height: int = 190) -> str:
    """One metric: a bar per model with its 95% interval as a whisker; missing values say so.

    Args:
        key: the metric key.
        entries: the runs, in ranked order.
        colours: model name -> colour.
    """
    spec = METRICS[key]
    lo_axis = 1.0 if spec.scale == "1-5" else 0.0
    values = [(e, e.metrics.get(key), (e.intervals or {}).get(key)) for e in entries]
    tops = [v for _, v, _ in values if v is not None] + [ci["high"] for _, v, ci in values if ci and v is not None]
    hi_axis = 5.0 if spec.scale == "1-5" else _nice_max(1.12 * max(tops, default=0.0))  # room for the labels
    left, right, top, bottom = 40, 8, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(entries), 1)
    slot = plot_w / n
    bar_w = min(36.0, slot * 0.6)

    def y(v: float) -> float:
        v = min(max(v, lo_axis), hi_axis)
        return top + plot_h * (1 - (v - lo_axis) / (hi_axis - lo_axis))

    parts = [f'<svg class="chart bar-chart" data-metric="{escape(key)}" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}">',
             f'<title>{escape(spec.title)}: values with 95% intervals</title>',
             f'<text x="{width / 2}" y="15" class="chart-title" text-anchor="middle">{escape(spec.title)}</text>']
    for frac in (0.0, 0.5, 1.0):
        v = lo_axis + frac * (hi_axis - lo_axis)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y(v) + 3:.1f}" class="tick" text-anchor="end">{_fmt(v)}</text>')
    for i, (e, v, ci) in enumerate(values):
        cx = left + slot * (i + 0.5)
        label = escape(e.name if len(e.name) <= 18 else e.name[:17] + "…")
        parts.append(f'<text x="{cx:.1f}" y="{height - bottom + 14}" class="tick" text-anchor="middle">{label}</text>')
        if v is None:
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h - 6}" class="missing" text-anchor="middle">missing</text>')
            continue
        shown = displayed(v) or 0.0
        y0, y1 = y(lo_axis), y(shown)
        tip = f"{e.name}: {shown:.3f}" + (f", 95% CI [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else "")
        parts.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{min(y0, y1):.1f}" width="{bar_w:.1f}" '
                     f'height="{max(abs(y0 - y1), 0.5):.1f}" fill="{colours[e.name]}" class="bar">'
                     f'<title>{escape(tip)}</title></rect>')
        if ci:
            ya, yb = y(ci["low"]), y(ci["high"])
            parts.append(f'<path d="M{cx:.1f},{ya:.1f}V{yb:.1f}M{cx - 5:.1f},{ya:.1f}h10M{cx - 5:.1f},{yb:.1f}h10" '
                         'class="whisker"/>')
        parts.append(f'<text x="{cx:.1f}" y="{min(y1, y(ci["high"]) if ci else y1) - 3:.1f}" class="value" '
                     f'text-anchor="middle">{shown:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def radar(entry: Entry, keys: tuple[str, ...], colour_: str, size: int = 300) -> str:
    """One model's ten metrics on a radar; 1-5 judge scores mapped to 0-1 as (v − 1) / 4.

    A missing metric is drawn at the centre and its axis label says "missing".
    """
    width = size + 60  # side room for the axis labels
    cx, cy = width / 2, size / 2
    radius = size / 2 - 60
    n = len(keys)

    def point(i: int, r: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    def norm(key: str) -> float | None:
        v = entry.metrics.get(key)
        if v is None:
            return None
        v = (v - 1) / 4 if METRICS[key].scale == "1-5" else v
        return min(max(v, 0.0), 1.0)

    parts = [f'<svg class="chart radar" data-model="{escape(entry.name)}" role="img" viewBox="0 0 {width} {size}" '
             f'width="{width}" height="{size}">',
             f'<title>{escape(entry.name)}: the ten metrics on a 0-1 scale</title>']
    for ring in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, radius * ring) for i in range(n)))
        parts.append(f'<polygon points="{pts}" class="ring"/>')
    for i, key in enumerate(keys):
        x, y = point(i, radius)
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" class="spoke"/>')
        lx, ly = point(i, radius + 18)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        missing = norm(key) is None
        below = f'<tspan x="{lx:.1f}" dy="11">missing</tspan>' if missing else ""
        parts.append(f'<text x="{lx:.1f}" y="{ly + 3:.1f}" text-anchor="{anchor}" '
                     f'class="axis{" missing" if missing else ""}">{escape(METRICS[key].title)}{below}</text>')
    pts = [point(i, radius * (norm(k) or 0.0)) for i, k in enumerate(keys)]
    parts.append(f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" fill="{colour_}" '
                 f'fill-opacity="0.35" stroke="{colour_}" stroke-width="2" class="area"/>')
    for (x, y), k in zip(pts, keys):
        if norm(k) is not None:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour_}"/>')
    parts.append("</svg>")
    return "".join(parts)
