"""Draw the scaling chart of docs/performance.md: seconds against metrics, both axes logarithmic.

    python benchmarks/chart.py benchmarks/out/scaling.json docs/performance-scaling.svg

`make bench` writes the JSON (the figures it measured) and calls this. The chart is plain SVG written here,
so the benchmarks need no plotting library. Series: measured lines with markers; computed lines (what a
reader that works another way would take at the same latency) dashed, without markers.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 250, 40, 60
COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def _ticks(low: float, high: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def _label(value: float, unit: str = "") -> str:
    if value >= 1000:
        return f"{value / 1000:g}k{unit}"
    return f"{value:g}{unit}"


def svg(series: list[dict[str, Any]], title: str) -> str:
    """`series`: [{"name", "points": [[metrics, seconds], ...], "measured": bool}]."""
    xs = [x for s in series for x, _ in s["points"]]
    ys = [y for s in series for _, y in s["points"] if y > 0]
    x_ticks, y_ticks = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x0, x1 = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
    y0, y1 = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - (math.log10(y) - y0) / (y1 - y0) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{title}</text>']
    for x in x_ticks:
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + plot_h}" stroke="#ddd"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(x)}</text>')
    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + plot_w}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_label(y, " s")}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">metrics</text>')
    out.append(f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {TOP + plot_h / 2})">seconds (wall)</text>')
    for index, s in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = sorted((x, y) for x, y in s["points"] if y > 0)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        dash = "" if s["measured"] else ' stroke-dasharray="6 4"'
        if len(points) > 1:
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        if s["measured"]:
            out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>' for x, y in points)
        legend_y = TOP + 14 + index * 20
        out.append(f'<line x1="{WIDTH - RIGHT + 14}" y1="{legend_y - 4}" x2="{WIDTH - RIGHT + 40}" '
                   f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{WIDTH - RIGHT + 46}" y="{legend_y}">{s["name"]}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def series_from(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's lines from the figures `benchmarks/run.py` measured."""
    latency = data.get("latency_ms", 150)
    out = []
    for name, key in ((f"plan, {latency} ms per request", "plan_latency"), ("plan, loopback", "plan"),
                      ("validate", "validate")):
        if data.get(key):
            out.append({"name": name, "points": [[int(n), s] for n, s in data[key].items()], "measured": True})
    sizes = sorted({int(n) for key in ("plan_latency", "plan", "validate") for n in data.get(key, {})})
    if sizes:
        out.append({"name": f"sequential pages, {latency} ms", "measured": False,
                    "points": [[n, math.ceil(n / 50) * latency / 1000] for n in sizes]})
        out.append({"name": f"one GET per metric, {latency} ms", "measured": False,
                    "points": [[n, n * latency / 1000] for n in sizes]})
    if data.get("eppo"):
        out.append({"name": "eppo-metrics-sync --dryrun", "measured": True,
                    "points": [[int(n), s] for n, s in data["eppo"].items()]})
    return out


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads(source.read_text(encoding="utf-8"))
    target.write_text(svg(series_from(data), "metrics-sync: time against the number of metrics"), encoding="utf-8")
    print(f"chart written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
