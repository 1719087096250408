"""mkdocs hook: the Performance page's summary, comparison chart and result sections, made
from ``benchmarks/results/*.json`` at build time.

``docs/performance.md`` holds two markers:

* ``<!-- benchmark-summary -->`` (directly under the page title) becomes one summary table
  of every stated target (configuration, ratio, 95% interval, target, met?) and one chart
  comparing autolog with MLflow's autolog and W&B, from the rows that have those figures.
* ``<!-- benchmark-results -->`` becomes one section per JSON file, in file-name order: its
  title and description visible, its tables and charts folded away (a ``???`` block), with
  long number lists shown as a median and range, and the fields that need it explained.

When there is no result yet (or a file cannot be read) the page says so: a missing
benchmark never fails the docs build.

A benchmark script may write any JSON; the shapes below render best.

* An object with optional ``title`` and ``description`` (text), optional ``plot``
  (``{"label": column, "value": column}``: which columns the bar chart uses), and any other
  keys: scalar values make one key/value table, a list of row objects makes a table (and a
  bar chart), a nested object makes a sub-section.
* A list of row objects: one table.
* A row with a numeric ``target_ratio`` (or ``target``) enters the summary, with its ratio
  (``paired_wall_ratio`` when the row has a ``ci95_low``/``ci95_high`` interval, else
  ``wall_ratio``, else ``ratio``).
* Rows whose ``config`` is ``<tool>_<granularity>`` (``autolog_step``, ``mlflow_step``,
  ``wandb_step``) feed the comparison chart; a tool listed under ``skipped`` is named as
  not measured, with the reason.

Charts are inline SVG bar charts (no plotting library, no JavaScript). A table whose rows
have three or more ``*_s`` (seconds) columns gets one chart per row comparing them; any
other table gets one chart of one column across rows: label column = the ``plot`` hint or
the first text column; value column = the ``plot`` hint, else the first numeric column
whose name says it is a ratio, then a median, then a time (no chart when there is none).
An object whose values are all objects (``{"scenario": {"metric": 1, ...}, ...}``)
is shown as one table with a row per key.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

SUMMARY_MARKER = "<!-- benchmark-summary -->"
MARKER = "<!-- benchmark-results -->"
RESULTS = Path("benchmarks") / "results"
_META_KEYS = ("title", "description", "plot")
_LONG = 160  # characters: longer text leaves the table
_LIST = 5  # numbers: a longer list is shown as its median and range
_DASH = "\u2013"  # en dash, for ranges
_CASES = 4  # rows under one target in one file: more are summarised as one row
_LABEL = 28  # characters of a chart label; the whole text is the bar's tooltip
_PREFERRED = ("ratio", "_vs_", "overhead", "speedup", "median", "seconds", "time", "_s", "_ms")

# Fields the result tables use whose meaning is not obvious from the name. A section lists
# the ones it shows, under its tables.
GLOSSARY = {
    "wall_ratio": "training time with the configuration over the time without autologging "
    "(for the Keras benchmark: each process's first fit, median over processes)",
    "paired_wall_ratio": "median, over fits alternating in one process, of the ratio of a "
    "fit with the configuration to its neighbour without",
    "ci95_low": "lower end of the 95% bootstrap interval of the paired ratio",
    "ci95_high": "upper end of the 95% bootstrap interval of the paired ratio",
    "cpu_ratio": "the same ratio for CPU time instead of wall time",
    "fastest_wall_ratio": "fastest training with the configuration over fastest without",
    "own_ratio": "training time over training time less autolog's own measured time",
    "ratio": "fit time with autolog over fit time without (median over rounds)",
    "ratio_by_parts": "the same ratio for a typical fit built from each part's median time",
    "target": "the ratio the configuration is meant to stay under",
    "target_ratio": "the ratio the configuration is meant to stay under",
    "within_target": "true when `ratio` is at or under `target`; false means it was "
    "exceeded in this run",
    "within_target_by_parts": "true when `ratio_by_parts` is at or under `target`",
    "within_target_by_own_time": "true when `own_ratio` is at or under `target`",
    "values_lost": "values logged by the training but missing from the store (must be 0)",
    "duplicates": "values found more than once in the store (must be 0)",
}
_TOOLS = {"autolog": "autolog", "mlflow": "MLflow autolog", "wandb": "W&B"}
_GRAINS = {"epoch": "per epoch", "step": "per step", "models": "per step + models"}
_COLOURS = {
    "autolog": "var(--md-primary-fg-color, #3f51b5)",
    "mlflow": "#e07b39",
    "wandb": "#8a8a8a",
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    """mkdocs event: fill the markers on the page that has them."""
    if MARKER not in markdown and SUMMARY_MARKER not in markdown:
        return markdown
    directory = Path(config.config_file_path).resolve().parent / RESULTS
    if SUMMARY_MARKER in markdown:
        markdown = markdown.replace(SUMMARY_MARKER, render_summary(directory))
    return markdown.replace(MARKER, render_results(directory))


def _load(directory: Path) -> Iterator[tuple[str, Any]]:
    """``(file name, data)`` for every ``*.json`` in ``directory``; an exception as data when
    a file cannot be read."""
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            yield path.name, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield path.name, exc


def _anchor(name: str) -> str:
    return "results-" + Path(name).stem.replace("_", "-")


# The summary and the comparison -------------------------------------------------------


def _rows_of(data: Any) -> Iterator[Mapping[str, Any]]:
    """Every result row of a file, with a ``name`` when the row was a keyed object."""
    if _is_rows(data):
        yield from data
        return
    if not isinstance(data, Mapping):
        return
    for key, value in data.items():
        if _is_rows(value):
            yield from value
        elif isinstance(value, Mapping) and value:
            yield {"name": key, **value}


def summary_rows(directory: Path) -> list[dict[str, Any]]:
    """One dict per result row that states a target: what the summary table shows. A file
    with more than ``_CASES`` such rows under one target (the fault cases) gives one row:
    their median, and how many of them met the target."""
    out = []
    for name, data in _load(directory):
        rows = _targeted_rows(name, data)
        targets = {r["target"] for r in rows}
        if len(rows) > _CASES and len(targets) == 1:
            ratio = statistics.median(r["ratio"] for r in rows)
            what = rows[0]["configuration"].split(",")[0]
            rows = [
                {
                    "configuration": f"{what}, median of {len(rows)} cases",
                    "file": name,
                    "ratio": ratio,
                    "interval": None,
                    "target": targets.pop(),
                    "met": ratio <= rows[0]["target"],
                    "cases": (sum(r["met"] for r in rows), len(rows)),
                }
            ]
        out += rows
    return out


def _targeted_rows(name: str, data: Any) -> list[dict[str, Any]]:
    """The rows of one file that state a target and a ratio, as summary rows."""
    out: list[dict[str, Any]] = []
    title = data.get("title") if isinstance(data, Mapping) else None
    # What was measured: the part of the title before a colon, or the file's first word.
    what = str(title).split(":")[0] if title else Path(name).stem.split("_")[0].capitalize()
    for row in _rows_of(data):
        target = _number(row.get("target_ratio", row.get("target")))
        low, high = _number(row.get("ci95_low")), _number(row.get("ci95_high"))
        interval = low is not None and high is not None
        key = "paired_wall_ratio" if interval else "wall_ratio"
        ratio = _number(row.get(key, row.get("ratio")))
        if target is None or ratio is None:
            continue
        label = row.get("description") or str(row.get("config") or row.get("name") or "?")
        label = str(label).removeprefix("autolog, ")
        if not row.get("description"):
            label = label.replace("_", " ")
        out.append(
            {
                "configuration": f"{what}, {label}",
                "file": name,
                "ratio": ratio,
                "interval": (low, high) if interval else None,
                "target": target,
                "met": ratio <= target,
            }
        )
    return out


def _met(row: Mapping[str, Any]) -> str:
    text = "**yes**" if row["met"] else "**no**"
    if row.get("cases"):
        text += " ({} of {} cases met it)".format(*row["cases"])
    if row["interval"] and row["interval"][0] <= row["target"] <= row["interval"][1]:
        text += " (interval spans it)"
    return text


def render_summary(directory: Path) -> str:
    """The summary table, what its columns mean, and the comparison chart(s)."""
    rows = summary_rows(directory)
    if not rows:
        return (
            '!!! note "No benchmark results yet"\n\n'
            f"    `{RESULTS.as_posix()}/` holds no result with a target in this build, so "
            "there is nothing to summarise. Run the benchmarks as described below and build "
            "the docs again."
        )
    table = _table(
        ["Configuration", "Ratio", "95% interval", "Target", "Met?", "Result file"],
        [
            [
                _cell(r["configuration"]),
                f"{r['ratio']:.3f}x",
                f"{r['interval'][0]:.3f}{_DASH}{r['interval'][1]:.3f}" if r["interval"] else _DASH,
                f"≤ {r['target']:.2f}x",
                _met(r),
                f"[{_cell(Path(r['file']).stem.replace('_', ' '))}](#{_anchor(r['file'])})",
            ]
            for r in rows
        ],
    )
    met = sum(r["met"] for r in rows)
    legend = "\n".join(
        [
            f"{met} of {len(rows)} measured ratios are within their target in these results.",
            "",
            "- **Configuration**: what was trained and how it was logged; the result file "
            "says against which store and how it was measured.",
            "- **Ratio**: training time with autolog over the same training without "
            "autologging (1.00x costs nothing, 1.05x is 5% slower). Where there is an "
            "interval it is the median of paired fits in one process; otherwise the first "
            "fit of fresh processes (Keras), the median of paired trainings (Estimator) or "
            "of rounds (fault injection). Below 1.00x is the machine's noise.",
            "- **95% interval**: the bootstrap interval of that median, where the benchmark "
            "records one (only the rotation benchmark does; a dash: not recorded).",
            "- **Target**: the ratio autolog promises to stay under for this configuration.",
            "- **Met?**: whether the ratio is at or under the target in this run. Timings on "
            "the 2-core machine these figures come from drift by several percent, so a "
            "ratio a little over its target in one file can be under it in the next.",
            "- **Result file**: the JSON file in `benchmarks/results/` the row comes from "
            "(`keras overhead` is `keras_overhead.json`); the link leads to its section "
            "below, with every figure it holds.",
        ]
    )
    return "\n\n".join([table, legend, render_comparison(directory)])


def render_comparison(directory: Path) -> str:
    """A chart per file with MLflow or W&B rows: their ratios next to autolog's, per
    granularity; tools the file lacks are named under it."""
    parts = []
    for name, data in _load(directory):
        rows = [r for r in _rows_of(data) if isinstance(r.get("config"), str)]
        ratios: dict[tuple[str, str], float] = {}
        for row in rows:
            tool, _, grain = row["config"].partition("_")
            # The paired fits (each against a fit without logging next to it) where the file
            # has them: the steadier figure when the machine is busy. Else the first fit.
            value = _number(row.get("paired_wall_ratio"))
            value = value if value is not None else _number(row.get("wall_ratio"))
            if tool in _TOOLS and grain in _GRAINS and value is not None:
                ratios[(tool, grain)] = value
        if not any(tool != "autolog" for tool, _ in ratios):
            continue
        skipped = data.get("skipped") if isinstance(data, Mapping) else None
        skipped = skipped if isinstance(skipped, Mapping) else {}
        missing = []
        for tool, label in _TOOLS.items():
            if any(t == tool for t, _ in ratios):
                continue
            reasons = [str(why) for key, why in skipped.items() if str(key).startswith(tool)]
            why = f" (the run that made it skipped it: {'; '.join(reasons)})" if reasons else ""
            missing.append(f"{label} is not measured in this file{why}.")
        store = data.get("store", "") if isinstance(data, Mapping) else ""
        parts.append(
            "\n\n".join(
                [
                    f"**autolog against MLflow's autolog and W&B** — `{name}`"
                    + (f", store: {_cell(store)}" if store else "")
                    + ". Training time over the same training without autologging "
                    "(1.00x, the dashed line; the median of paired fits where the file has "
                    "them, else the first fit); shorter is better.",
                    comparison_chart(ratios),
                    *(["Missing: " + " ".join(missing)] if missing else []),
                ]
            )
        )
    return "\n\n".join(parts)


def comparison_chart(ratios: Mapping[tuple[str, str], float]) -> str:
    """An SVG chart of ``{(tool, granularity): ratio}``: one group of bars per granularity."""
    groups = [g for g in _GRAINS if any(grain == g for _, grain in ratios)]
    top = max(ratios.values())
    label_w, bar_w, bar_h, gap, pad = 150, 380, 14, 10, 8
    bars = [(g, t) for g in groups for t in _TOOLS if (t, g) in ratios]
    height = pad * 2 + 20 + len(bars) * (bar_h + 4) + len(groups) * gap
    width = label_w + bar_w + 70
    text = 'style="fill: var(--md-default-fg-color, #333); font-size: 12px"'
    shapes, y = [], pad + 20
    legend_x = label_w
    for tool, label in _TOOLS.items():
        if any(t == tool for t, _ in ratios):
            shapes.append(
                f'<rect x="{legend_x}" y="{pad}" width="10" height="10" '
                f'style="fill: {_COLOURS[tool]}"/>'
                f'<text x="{legend_x + 14}" y="{pad + 9}" {text}>{html.escape(label)}</text>'
            )
            legend_x += 30 + 7 * len(label)
    for group in groups:
        first = True
        for tool in _TOOLS:
            if (tool, group) not in ratios:
                continue
            value = ratios[(tool, group)]
            length = max(1.0, bar_w * value / top)
            if first:
                shapes.append(
                    f'<text x="{label_w - 8}" y="{y + 11}" text-anchor="end" {text}>'
                    f"{html.escape(_GRAINS[group])}</text>"
                )
                first = False
            shapes.append(
                f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                f'style="fill: {_COLOURS[tool]}"><title>{html.escape(_TOOLS[tool])}, '
                f"{html.escape(_GRAINS[group])}: {value:.2f}x</title></rect>"
                f'<text x="{label_w + length + 5:.1f}" y="{y + 11}" {text}>{value:.2f}x</text>'
            )
            y += bar_h + 4
        y += gap
    one = label_w + bar_w / top
    shapes.append(
        f'<line x1="{one:.1f}" x2="{one:.1f}" y1="{pad + 16}" y2="{y - gap + 2}" '
        'style="stroke: var(--md-default-fg-color--light, #888)" stroke-dasharray="3 3"/>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'aria-label="training time ratio by tool and logging granularity">'
        + "".join(shapes)
        + "</svg>"
    )
    return f'<div class="autolog-chart" markdown="0">\n{svg}\n</div>'


# One section per result file ------------------------------------------------------------


def render_results(directory: Path) -> str:
    """Markdown for every ``*.json`` in ``directory`` (a notice when there is none)."""
    sections = []
    for name, data in _load(directory):
        if isinstance(data, Exception):
            sections.append(
                f"### `{name}` {{#{_anchor(name)}}}\n\n"
                f'!!! warning "Could not read this result"\n\n    {_cell(str(data))}'
            )
        else:
            sections.append(render_file(name, data))
    if not sections:
        return (
            '!!! note "No benchmark results yet"\n\n'
            f"    `{RESULTS.as_posix()}/` holds no JSON file in this build, so there is "
            "nothing to show. Run the benchmarks as described below and build the docs "
            "again."
        )
    return "\n\n".join(sections)


def render_file(name: str, data: Any) -> str:
    """One benchmark result file as a Markdown section: title and description, then its
    figures folded away."""
    meta = data if isinstance(data, Mapping) else {}
    title = meta.get("title") or Path(name).stem.replace("_", " ").capitalize()
    lines = [f"### {title} {{#{_anchor(name)}}}", ""]
    if meta.get("description"):
        lines += [str(meta["description"]), ""]
    plot = meta.get("plot") if isinstance(meta.get("plot"), Mapping) else {}
    body = {k: v for k, v in meta.items() if k not in _META_KEYS} if meta else data
    rendered = _render(body, plot)
    explained = [k for k in GLOSSARY if k in _keys(body)]
    if explained:
        rendered += "\n\n" + "\n".join(f"- `{k}`: {GLOSSARY[k]}" for k in explained)
    lines += [
        f'??? abstract "Every figure in `{RESULTS.as_posix()}/{name}`"',
        "",
        _indent(rendered),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _keys(value: Any) -> set[str]:
    """Every object key in ``value``, at any depth."""
    if isinstance(value, Mapping):
        return {str(k) for k in value}.union(*map(_keys, value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*map(_keys, value))
    return set()


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line.strip() else "" for line in text.splitlines())


def _render(value: Any, plot: Mapping[str, Any]) -> str:
    if _is_rows(value):
        return _rows_block(value, plot)
    if not isinstance(value, Mapping):
        return _cell(value)
    if not value:
        return "None."
    if len(value) >= 2 and all(isinstance(v, Mapping) and v for v in value.values()):
        # {"scenario": {metric: value, ...}, ...}: one row per scenario (a nested list of
        # records, such as each round's figures, is counted in its cell).
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
        # Bold, not a heading: inside a folded block, headings would crowd the page's
        # table of contents.
        parts.append(f"**{_cell(key)}**\n\n{_render(nested, plot)}")
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
        if len(value) > _LIST:  # raw measurements: their spread, not every value
            numbers = [float(v) for v in value]
            text = (
                f"{len(numbers)} values, median {statistics.median(numbers):.4g} "
                f"({min(numbers):.4g}{_DASH}{max(numbers):.4g})"
            )
        else:
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
    label_w, bar_w, row_h, pad = 190, 360, 22, 8
    width, height = label_w + bar_w + 90, pad * 2 + row_h * len(points) + 20
    text = 'style="fill: var(--md-default-fg-color, #333); font-size: 12px"'
    bar = 'style="fill: var(--md-primary-fg-color, #3f51b5)"'
    shapes = [
        f'<text x="{label_w}" y="{pad + 10}" {text} font-weight="bold">{html.escape(title)}</text>'
    ]
    for i, (name, number) in enumerate(points):
        y = pad + 20 + i * row_h
        length = scaled(number)
        short = name if len(name) <= _LABEL else name[: _LABEL - 1] + "…"
        shapes.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" {text}>'
            f"<title>{html.escape(name)}</title>{html.escape(short)}</text>"
        )
        shapes.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{length:.1f}" height="14" {bar}>'
            f"<title>{html.escape(name)}: {number:.4g}</title></rect>"
        )
        shapes.append(
            f'<text x="{label_w + length + 6:.1f}" y="{y + 13}" {text}>{number:.4g}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{html.escape(value)} by '
        f'{html.escape(label)}">' + "".join(shapes) + "</svg>"
    )
    return f'<div class="autolog-chart" markdown="0">\n{svg}\n</div>'
