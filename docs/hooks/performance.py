"""mkdocs hook: the Performance page's tables and charts, made from ``benchmarks/results/*.json``.

``docs/performance.md`` holds the marker ``<!-- benchmark-results -->``; at build time this
hook replaces it with one section per JSON file, in file-name order. When there is no
result yet (or a file cannot be read) the page says so: a missing benchmark never fails
the docs build.

A benchmark script may write any JSON; the shapes below render best.

* An object with optional ``title`` and ``description`` (text), optional ``plot``
  (``{"label": column, "value": column}``: which columns the bar chart uses), and any other
  keys: scalar values make one key/value table, a list of row objects makes a table (and a
  bar chart), a nested object makes a sub-section.
* A list of row objects: one table.

Charts are inline SVG bar charts (no plotting library, no JavaScript). A table whose rows
have three or more ``*_s`` (seconds) columns gets one chart per row comparing them; any
other table gets one chart of one column across rows: label column = the ``plot`` hint or
the first text column; value column = the ``plot`` hint, else the first numeric column
whose name says it is a ratio, then a median, then a time (no chart when there is none).
An object whose values are all flat objects (``{"scenario": {"metric": 1, ...}, ...}``)
is shown as one table with a row per key.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "<!-- benchmark-results -->"
RESULTS = Path("benchmarks") / "results"
_META_KEYS = ("title", "description", "plot")
_LONG = 160  # characters: longer text leaves the table
_PREFERRED = ("ratio", "_vs_", "overhead", "speedup", "median", "seconds", "time", "_s", "_ms")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    """mkdocs event: fill the marker on the page that has it."""
    if MARKER not in markdown:
        return markdown
    root = Path(config.config_file_path).resolve().parent
    return markdown.replace(MARKER, render_results(root / RESULTS))


def render_results(directory: Path) -> str:
    """Markdown for every ``*.json`` in ``directory`` (a notice when there is none)."""
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not paths:
        return (
            '!!! note "No benchmark results yet"\n\n'
            f"    `{RESULTS.as_posix()}/` holds no JSON file in this build, so there is "
            "nothing to show. Run the benchmarks as described below and build the docs "
            "again."
        )
    sections = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            sections.append(
                f"### `{path.name}`\n\n"
                f'!!! warning "Could not read this result"\n\n    {_cell(str(exc))}'
            )
            continue
        sections.append(render_file(path.name, data))
    return "\n\n".join(sections)


def render_file(name: str, data: Any) -> str:
    """One benchmark result file as a Markdown section."""
    meta = data if isinstance(data, Mapping) else {}
    title = meta.get("title") or Path(name).stem.replace("_", " ").capitalize()
    lines = [f"### {title}", "", f"From `{RESULTS.as_posix()}/{name}`."]
    if meta.get("description"):
        lines += ["", str(meta["description"])]
    plot = meta.get("plot") if isinstance(meta.get("plot"), Mapping) else {}
    body = {k: v for k, v in meta.items() if k not in _META_KEYS} if meta else data
    lines += ["", _render(body, plot, level=4)]
    return "\n".join(lines).rstrip() + "\n"


def _render(value: Any, plot: Mapping[str, Any], level: int) -> str:
    if _is_rows(value):
        return _rows_block(value, plot)
    if not isinstance(value, Mapping):
        return _cell(value)
    if not value:
        return "None."
    if len(value) >= 2 and all(_is_record(v) for v in value.values()):
        # {"scenario": {metric: value, ...}, ...}: one row per scenario.
        return _rows_block([{"name": k, **v} for k, v in value.items()], plot)
    scalars = {k: v for k, v in value.items() if not _is_nested(v)}
    if any(_is_rows(v) for v in value.values()):
        # Next to a results table, small objects (versions, machine) are set-up details:
        # one key/value table, not a section each.
        for key, nested in value.items():
            if _is_record(nested):
                scalars.update({f"{key}.{k}": v for k, v in nested.items()})
    parts = []
    if scalars:
        rows, details = [], []
        for key, item in scalars.items():
            if _is_long(item):
                count = f"{len(item)} items" if isinstance(item, (list, tuple)) else "text"
                rows.append([f"**{_cell(key)}**", f"{count}, below"])
                details.append(_details(str(key), item))
            else:
                rows.append([f"**{_cell(key)}**", _cell(item)])
        parts.append(_table(["", "value"], rows))
        parts += details
    for key, nested in value.items():
        if key in scalars or any(k.startswith(f"{key}.") for k in scalars):
            continue
        heading = "#" * min(level, 6)
        parts.append(f"{heading} {_cell(key)}\n\n{_render(nested, plot, level + 1)}")
    return "\n\n".join(parts)


def _is_long(value: Any) -> bool:
    """Too long for a table cell: shown in a collapsed block under the table instead."""
    if isinstance(value, str):
        return len(value) > _LONG or "\n" in value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return len(value) > 5 or sum(map(len, value)) > _LONG or any("\n" in v for v in value)
    return False


def _details(title: str, value: Any) -> str:
    items = [value] if isinstance(value, str) else list(value)
    summary = title if isinstance(value, str) else f"{title} ({len(items)})"
    lines = [f'??? note "{_cell(summary).replace(chr(34), chr(39))}"', ""]
    for item in items:
        if "\n" in item or len(item) > _LONG or "`" in item:
            lines += ["    ```text", *(f"    {ln}" for ln in item.rstrip().splitlines()), "    ```"]
        else:
            lines.append(f"    - `{item}`")
    return "\n".join(lines)


def _is_rows(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
    )


def _is_record(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and not any(map(_is_nested, value.values()))


def _is_nested(value: Any) -> bool:
    return (isinstance(value, Mapping) and bool(value)) or _is_rows(value)


def _rows_block(rows: Sequence[Mapping[str, Any]], plot: Mapping[str, Any]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    table = _table(columns, [[_cell(row.get(c)) for c in columns] for row in rows])
    charts = _wide_charts(rows, columns) if not plot else []
    if not charts:
        charts = [bar_chart(rows, columns, plot)]
    return "\n\n".join(part for part in (table, *charts) if part)


def _wide_charts(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """One chart per row of its ``*_s`` columns, when there are three or more of them."""
    seconds = [
        c for c in columns if c.endswith("_s") and all(_number(r.get(c)) is not None for r in rows)
    ]
    if len(seconds) < 3:
        return []
    label = next((c for c in columns if all(isinstance(r.get(c), str) for r in rows)), None)
    charts = []
    for i, row in enumerate(rows):
        points = [{"measure": c, "seconds": row[c]} for c in seconds]
        title = f"seconds, {row[label]}" if label else f"seconds, row {i + 1}"
        charts.append(bar_chart(points, ["measure", "seconds"], {}, title=title, minimum=2))
    return charts


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = "" if value is None else str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, (Mapping, list, tuple)) and not value:
        text = "none"
    elif isinstance(value, (list, tuple)) and all(_number(v) is not None for v in value):
        text = ", ".join(_cell(v) for v in value)
    elif isinstance(value, Mapping) and all(_number(v) is not None for v in value.values()):
        text = ", ".join(f"{_cell(str(key))} {_cell(v)}" for key, v in value.items())
    elif isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
        # Per-measurement records (a benchmark's every fit): too many for a cell.
        text = f"{len(value):,} records, in the JSON file"
    elif isinstance(value, Mapping) or (
        isinstance(value, (list, tuple)) and not all(isinstance(v, str) for v in value)
    ):
        text = "`" + json.dumps(value, default=str) + "`"
    else:  # text: shortened, and Markdown characters escaped so identifiers stay as written
        text = "; ".join(value) if isinstance(value, (list, tuple)) else str(value)
        if len(text) > _LONG:
            text = text[: _LONG - 1] + "…"
        for char in "\\`*_[]":
            text = text.replace(char, "\\" + char)
        text = text.replace("<", "&lt;")
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def bar_chart(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    plot: Mapping[str, Any],
    *,
    title: str | None = None,
    minimum: int = 2,
) -> str:
    """An inline SVG horizontal bar chart of one numeric column ("" when nothing to plot)."""
    label = plot.get("label")
    if label not in columns:
        label = next((c for c in columns if all(isinstance(r.get(c), str) for r in rows)), None)
    numeric = [c for c in columns if all(_number(r.get(c)) is not None for r in rows)]
    value = plot.get("value")
    if value not in numeric:
        # Only a column that is clearly a measurement is worth a chart.
        value = next((c for t in _PREFERRED for c in numeric if t in c.lower()), None)
    if label is None or value is None or len(rows) < minimum:
        return ""
    title = title or value
    points = [(str(r[label]), float(r[value])) for r in rows]
    top = max((v for _, v in points), default=0.0)
    if top <= 0:
        return ""
    positive = [v for _, v in points if v > 0]
    log = min(positive) * 100 < top  # values spanning orders of magnitude: log scale
    low = math.log10(min(positive)) - 1 if log else 0.0

    def scaled(number: float) -> float:
        if number <= 0:
            return 0.0
        if log:
            return max(1.0, bar_w * (math.log10(number) - low) / (math.log10(top) - low))
        return max(1.0, bar_w * number / top)

    if log:
        title += " (log scale)"
    label_w, bar_w, row_h, pad = 240, 360, 26, 8
    width, height = label_w + bar_w + 90, pad * 2 + row_h * len(points) + 20
    text = 'style="fill: var(--md-default-fg-color, #333); font-size: 12px"'
    bar = 'style="fill: var(--md-primary-fg-color, #3f51b5)"'
    shapes = [
        f'<text x="{label_w}" y="{pad + 10}" {text} font-weight="bold">{html.escape(title)}</text>'
    ]
    for i, (name, number) in enumerate(points):
        y = pad + 20 + i * row_h
        length = scaled(number)
        shapes.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" {text}>'
            f"{html.escape(name[:40])}</text>"
        )
        shapes.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="16" {bar}/>')
        shapes.append(
            f'<text x="{label_w + length + 6:.1f}" y="{y + 15}" {text}>{number:.4g}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{html.escape(value)} by '
        f'{html.escape(label)}">' + "".join(shapes) + "</svg>"
    )
    return f'<div class="autolog-chart" markdown="0">\n{svg}\n</div>'
