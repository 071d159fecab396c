"""Line plots as PNG with Pillow alone (no plotting library in the dependencies).

Used for the reward curves written beside checkpoints and for the simulation's figure: one or
more panels, each a set of named series of (x, y) points, with axes, ticks and a legend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mvbench.dataset_io import atomic_write_bytes

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
PANEL_W, PANEL_H = 520, 300
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 12, 26, 34
LEGEND_W = 250

Series = Mapping[str, Sequence[tuple[float, float]]]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.2g}"


def line_panels(panels: Sequence[tuple[str, Series]], path: Path, *, title: str = "", x_label: str = "",
                y_label: str = "", y_range: tuple[float, float] | None = None, columns: int = 2) -> Path:
    """Draw panels of line series into a PNG.

    Args:
        panels: (panel title, {series name: [(x, y), ...]}) in order; series with the same name
            share a colour across panels.
        path: the PNG to write (its folder is created).
        title: the figure title.
        x_label / y_label: axis labels.
        y_range: fixed y limits (default: the data's).
        columns: panels per row.

    Returns:
        ``path``.
    """
    font = ImageFont.load_default()
    names: list[str] = []
    for _, series in panels:
        names += [n for n in series if n not in names]
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    cols = max(1, min(columns, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    top = 28 if title else 6
    width = cols * PANEL_W + LEGEND_W
    height = top + rows * PANEL_H
    img = Image.new("RGB", (width, max(height, top + 18 * len(names) + 20)), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((10, 8), title, fill="black", font=font)
    for k, (panel_title, series) in enumerate(panels):
        ox, oy = (k % cols) * PANEL_W, top + (k // cols) * PANEL_H
        points = [p for pts in series.values() for p in pts if all(math.isfinite(v) for v in p)]
        xs = [p[0] for p in points] or [0.0, 1.0]
        ys = [p[1] for p in points] or [0.0, 1.0]
        x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        y0, y1 = y_range if y_range else (min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1)
        left, right = ox + MARGIN_L, ox + PANEL_W - MARGIN_R
        upper, lower = oy + MARGIN_T, oy + PANEL_H - MARGIN_B

        def to_px(x: float, y: float) -> tuple[float, float]:
            return (left + (x - x0) / (x1 - x0) * (right - left),
                    lower - (min(max(y, y0), y1) - y0) / (y1 - y0) * (lower - upper))

        draw.text((left + 6, upper + 4), panel_title, fill="black", font=font)
        draw.rectangle([left, upper, right, lower], outline=(80, 80, 80))
        for t in _ticks(y0, y1):
            _, py = to_px(x0, t)
            draw.line([left, py, right, py], fill=(230, 230, 230))
            draw.text((ox + 4, py - 5), _fmt(t), fill="black", font=font)
        for t in _ticks(x0, x1):
            px, _ = to_px(t, y0)
            draw.text((px - 6, lower + 4), _fmt(t), fill="black", font=font)
        if x_label:
            draw.text(((left + right) / 2 - 10, lower + 18), x_label, fill="black", font=font)
        if y_label:
            draw.text((ox + 4, upper - 14), y_label, fill="black", font=font)
        for name, pts in series.items():
            line = [to_px(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
            if len(line) >= 2:
                draw.line(line, fill=colors[name], width=2)
            elif line:
                cx, cy = line[0]
                draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colors[name])
    lx = cols * PANEL_W + 8
    for i, name in enumerate(names):
        y = top + 10 + 18 * i
        draw.line([lx, y + 6, lx + 18, y + 6], fill=colors[name], width=3)
        draw.text((lx + 24, y), name[:38], fill="black", font=font)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
