"""The docs site: every Python snippet runs, the site builds strictly, the reference pages
keep up with the code, and the Performance page renders whatever results exist.

Snippets: every ```` ```python ```` fence in ``docs/*.md`` and ``docs/plugins/*.md`` is
executed; a page's fences run in order, in one namespace, in a fresh interpreter whose
working directory is a temp dir and whose tracking store is a SQLite file there. A fence
directly preceded by ``<!-- requires: mod_a, mod_b -->`` is skipped only when one of those
modules cannot be imported in this environment (other comments, such as ruff's
``<!-- fmt: off -->``, may stand between them). ``--8<--`` snippet lines are expanded the way
pymdownx.snippets expands them, so the code that runs is the code the reader sees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in [*DOCS.glob("*.md"), *DOCS.glob("plugins/*.md")])

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_REQUIRES = re.compile(r"^\s*<!--\s*requires:\s*(?P<mods>[\w.,\s]+?)\s*-->\s*$")
_SNIPPET = re.compile(r'^(?P<indent>\s*)--8<--\s+"(?P<target>[^"]+)"\s*$')
_SECTION = re.compile(r"--8<--\s+\[(?P<kind>start|end):(?P<name>[\w-]+)\]")


@dataclasses.dataclass
class Block:
    page: str
    line: int  # 1-based line of the first code line in the page
    code: str
    requires: tuple[str, ...]

    def missing(self) -> list[str]:
        return [m for m in self.requires if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def expand_snippets(code: str, base: Path = ROOT) -> str:
    """Expand ``--8<-- "path"`` and ``--8<-- "path:section"`` lines like pymdownx.snippets."""
    out = []
    for line in code.splitlines():
        match = _SNIPPET.match(line)
        if match is None:
            out.append(line)
            continue
        target = match["target"]
        path, _, section = target.partition(":")
        text = (base / path).read_text(encoding="utf-8")
        lines = text.splitlines()
        if section:
            start = next(i for i, ln in enumerate(lines) if f"--8<-- [start:{section}]" in ln)
            end = next(i for i, ln in enumerate(lines) if f"--8<-- [end:{section}]" in ln)
            lines = lines[start + 1 : end]
        out += [match["indent"] + ln for ln in lines if not _SECTION.search(ln)]
    return "\n".join(out) + "\n"


def extract_blocks(page: Path) -> list[Block]:
    """The ``python`` fences of one page, in order, with their ``requires`` markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], match["indent"]
        language = match["info"].strip().split(" ")[0].lstrip(".").lower()
        body_start = i + 1
        j = body_start
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            j += 1
        if language in ("python", "py"):
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
            requires: tuple[str, ...] = ()
            k = i - 1
            while k >= 0 and lines[k].strip().startswith("<!--"):  # comments just above
                marker = _REQUIRES.match(lines[k])
                if marker:
                    requires += tuple(m.strip() for m in marker["mods"].split(",") if m.strip())
                k -= 1
            blocks.append(
                Block(
                    page=page.relative_to(ROOT).as_posix(),
                    line=body_start + 1,
                    code=expand_snippets("\n".join(body)),
                    requires=requires,
                )
            )
        i = j + 1
    return blocks


_RUNNER = """
import json, sys, traceback
blocks = json.loads(open(sys.argv[1], encoding="utf-8").read())
namespace = {"__name__": "__main__"}
for block in blocks:
    print(f"--- {block['page']}:{block['line']}", flush=True)
    # Padding makes tracebacks point at the line in the Markdown page.
    source = "\\n" * (block["line"] - 1) + block["code"]
    try:
        exec(compile(source, block["page"], "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED: the snippet at {block['page']}:{block['line']}", file=sys.stderr)
        sys.exit(1)
print("ALL SNIPPETS RAN", flush=True)
"""


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


PAGES_WITH_CODE = [p for p in PAGES if extract_blocks(p)]


def test_the_docs_have_runnable_snippets() -> None:
    total = sum(len(extract_blocks(p)) for p in PAGES)
    assert PAGES, "no docs pages found"
    assert total >= 20, f"only {total} python snippets found: is the extractor broken?"


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_every_python_snippet_runs(page: Path, tmp_path: Path) -> None:
    blocks = extract_blocks(page)
    runnable = [b for b in blocks if not b.missing()]
    skipped = {f"{b.page}:{b.line}": b.missing() for b in blocks if b.missing()}
    print(f"{page.name}: {len(runnable)} snippet(s) run, {len(skipped)} skipped {skipped}")
    if not runnable:
        pytest.skip(f"every snippet needs a module not installed here: {skipped}")
    script = tmp_path / "snippets.json"
    script.write_text(json.dumps([dataclasses.asdict(b) for b in runnable]), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AUTOLOG_")) and k != "PYTHONPATH"
    }
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db",
        AUTOLOG_SPOOL_DIR=str(work / "spool"),
        AUTOLOG_TESTING="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and "ALL SNIPPETS RAN" in proc.stdout, (
        f"{page.name}: a snippet failed\n--- stdout\n{proc.stdout[-4000:]}\n"
        f"--- stderr\n{proc.stderr[-6000:]}"
    )


# The reference pages keep up with the code --------------------------------------------


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [_page_id(p) for p in PAGES if f": {_page_id(p)}" not in config]
    assert not missing, f"pages missing from the nav in mkdocs.yml: {missing}"


def test_configuration_documents_every_option_and_variable() -> None:
    import autolog
    from autolog import env

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    options = [
        f"**{p.name}" if p.kind is p.VAR_KEYWORD else p.name
        for p in inspect.signature(autolog.autolog).parameters.values()
    ]
    variables = [v for k, v in vars(env).items() if k.startswith("AUTOLOG_")]
    assert variables
    undocumented = [n for n in [*options, *variables] if f"`{n}`" not in text]
    assert not undocumented, f"configuration.md does not document {undocumented}"


def test_cli_page_documents_every_command_and_option() -> None:
    from autolog.cli import main

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = [f"autolog {name}" for name in main.commands if f"## `autolog {name}`" not in text]
    for command in main.commands.values():
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("--") and opt != "--help" and opt not in text:
                    missing.append(f"autolog {command.name} {opt}")
    assert not missing, f"cli.md does not document {missing}"


def _public_names() -> list[tuple[str, object]]:
    import autolog
    import autolog.testing

    return [
        *((f"autolog.{n}", getattr(autolog, n)) for n in autolog.__all__ if n != "__version__"),
        *((f"autolog.testing.{n}", getattr(autolog.testing, n)) for n in autolog.testing.__all__),
    ]


def _own_doc(obj: object) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and doc:
        # The docstring dataclasses writes for an undocumented class is its signature.
        doc = None if doc.startswith(f"{obj.__name__}(") else doc
    return inspect.cleandoc(doc or "")


def test_every_public_name_has_a_docstring() -> None:
    """What ``help()`` and the API reference show: the name, its public methods and
    properties, and (in an ``Attributes:`` section) every attribute of its instances."""
    from autolog import RunSink

    missing = []
    for name, obj in _public_names():
        doc = _own_doc(obj)
        if len(doc) < 20:
            missing.append(name)
        if not isinstance(obj, type):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_") or not callable(getattr(value, "__get__", None)):
                continue
            function = value.fget if isinstance(value, property) else value
            function = getattr(function, "__func__", function)
            documented_by_runsink = name.endswith("BatchLogger") and hasattr(RunSink, attr)
            if callable(function) and not (function.__doc__ or documented_by_runsink):
                missing.append(f"{name}.{attr}")
        fields = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
        slots = [s for s in getattr(obj, "__slots__", ()) if not s.startswith("_")]
        if name.endswith("MemoryStore"):
            slots = ["runs", "conflicts", "active", "lock", "artifact_root"]
        section = doc.partition("Attributes:")[2]
        missing += [
            f"{name}.{a} (in its Attributes: section)"
            for a in [*fields, *slots]
            if not re.search(rf"^\s+{a}:", section, re.MULTILINE)
        ]
    assert not missing, f"public names without a docstring: {missing}"


@pytest.mark.parametrize("plugin", ["keras", "tf_estimator"])
def test_plugin_pages_keep_reference_and_deep_dive_apart(plugin: str) -> None:
    """The plugin page is reference (options, what is logged) with a short performance
    section at its end; profiling notes and run history live on the linked notes page."""
    text = (DOCS / "plugins" / f"{plugin}.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    last = headings[-1]
    assert "Options" in headings and headings.index("Options") < len(headings) - 1
    assert last.startswith(("Cost", "Performance")), f"{plugin}.md ends with {last!r}"
    tail = text.split(f"## {last}", 1)[1]
    assert f"({plugin}-performance.md)" in tail, "the short section links the notes page"
    assert len(tail.split()) < 250, f"the {last!r} section of {plugin}.md is a deep dive again"
    notes = (DOCS / "plugins" / f"{plugin}-performance.md").read_text(encoding="utf-8")
    assert f"({plugin}.md)" in notes, "the notes page links back to the reference"


def test_no_page_calls_mlruns_the_default_store() -> None:
    """MLflow's default tracking store is ``sqlite:///mlflow.db`` since MLflow 3.7;
    ``./mlruns`` only holds its artifacts. A paragraph naming ``mlruns`` says both."""
    wrong = [
        f"{_page_id(page)}: {paragraph[:120]!r}"
        for page in PAGES
        for paragraph in page.read_text(encoding="utf-8").split("\n\n")
        if "mlruns" in paragraph and "sqlite:///mlflow.db" not in paragraph
    ]
    assert not wrong, f"paragraphs that name ./mlruns as the store: {wrong}"


def test_every_diagram_is_rendered_from_its_current_source() -> None:
    sources = sorted((DOCS / "diagrams").glob("*.mmd"))
    assert sources, "no diagram sources in docs/diagrams"
    for source in sources:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        image = DOCS / "images" / f"{source.stem}.svg"
        assert image.is_file(), f"{image.name} is missing: run tools/render_diagrams.py"
        first = image.read_text(encoding="utf-8").splitlines()[0]
        assert digest in first, (
            f"docs/diagrams/{source.name} changed since {image.name} was rendered: "
            "run tools/render_diagrams.py (its docstring says how)"
        )


# The performance page ------------------------------------------------------------------


def _performance_hook():
    spec = importlib.util.spec_from_file_location(
        "autolog_docs_performance", DOCS / "hooks" / "performance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_performance_page_says_when_there_are_no_results(tmp_path: Path) -> None:
    hook = _performance_hook()
    assert "No benchmark results yet" in hook.render_results(tmp_path / "absent")
    assert "No benchmark results yet" in hook.render_results(tmp_path)


def test_performance_page_renders_tables_and_charts(tmp_path: Path) -> None:
    hook = _performance_hook()
    (tmp_path / "keras_overhead.json").write_text(
        json.dumps(
            {
                "repeats": 5,
                "versions": {"keras": "3.15.1"},
                "results": [
                    {"config": "baseline", "median_wall_s": 10.0, "wall_ratio": 1.0},
                    {
                        "config": "per step",
                        "median_wall_s": 10.3,
                        "wall_ratio": 1.03,
                        "own_s": {"hooks": 0.05, "outside_s": 0.1},
                        "pairs": [{"baseline": {"wall": 1.0}}, {"baseline": {"wall": 1.1}}],
                    },
                ],
                "skipped": {},
            }
        )
    )
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "rows.json").write_text(
        json.dumps(
            [
                {"target": "sqlite", "a_s": 400.0, "b_s": 5.0, "c_s": 0.05, "ratio": 1.06},
                {"target": "server", "a_s": 900.0, "b_s": 9.0, "c_s": 0.07, "ratio": 1.05},
            ]
        )
    )
    (tmp_path / "scenarios.json").write_text(
        json.dumps(
            {
                "no_fault": {"fit_seconds": 2.4, "ratio": 1.47, "sync": ["Nothing to sync."]},
                "server_503": {"fit_seconds": 3.1, "ratio": 1.0, "sync": ["Delivered 918."]},
            }
        )
    )
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {
                "points": [f"core:autolog.plugin:Call.m{i}" for i in range(9)],
                "failed": {"core:Call.__init__": ["Traceback:\n  line 1\n"]},
            }
        )
    )
    text = hook.render_results(tmp_path)
    assert "| **points** | 9 items, below |" in text  # long lists leave the table
    assert '??? note "points (9)"' in text
    assert "    - `core:autolog.plugin:Call.m8`" in text
    assert "core:Call.\\_\\_init\\_\\_" in text  # no accidental bold
    assert "        ```text\n        Traceback:\n          line 1\n        ```" in text
    assert "| name | fit\\_seconds | ratio | sync |" in text  # one row per scenario
    assert "| server\\_503 | 3.1 | 1 | Delivered 918. |" in text
    assert "### Keras overhead {#results-keras-overhead}" in text  # the summary links here
    # Every figure of a file is folded away under its title; nested keys are not headings
    # (they would crowd the table of contents).
    assert '??? abstract "Every figure in `benchmarks/results/keras_overhead.json`"' in text
    assert "\n#### " not in text
    assert "**failed**" in text
    assert "| config | median\\_wall\\_s | wall\\_ratio |" in text
    assert (
        "| per step | 10.3 | 1.03 | hooks 0.05, outside\\_s 0.1 | 2 records, in the JSON file |"
        in text
    )
    assert "**repeats** | 5" in text
    assert "**versions.keras** | 3.15.1" in text  # set-up details: one table, not sections
    assert "**skipped** | none" in text
    assert 'aria-label="wall_ratio by config"' in text  # the ratio is what is plotted
    assert "Could not read this result" in text  # a broken file is reported, not fatal
    # wall_ratio, scenario ratio, and one chart per row of the *_s columns
    assert text.count("<svg") == 4
    assert "seconds, sqlite (log scale)" in text


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def test_performance_raw_measurements_are_summarised_not_listed(tmp_path: Path) -> None:
    hook = _performance_hook()
    _write(
        tmp_path / "overhead.json",
        {"results": [{"config": "a", "wall_ratio": 1.0, "wall_s": [float(i) for i in range(100)]}]},
    )
    text = hook.render_results(tmp_path)
    assert "100 values, median 49.5 (0\u201399)" in text
    assert "98, 99" not in text


def test_performance_explains_the_fields_it_shows(tmp_path: Path) -> None:
    hook = _performance_hook()
    _write(
        tmp_path / "faults.json",
        {
            "a": {"ratio": 1.2, "target": 1.1, "within_target": False},
            "b": {"ratio": 1.0, "target": 1.1, "within_target": True},
        },
    )
    text = hook.render_results(tmp_path)
    assert "- `within_target`: true when `ratio` is at or under `target`" in text
    assert "`within_target_by_parts`" not in text  # only the fields the file has


def test_performance_summary_lists_every_target(tmp_path: Path) -> None:
    hook = _performance_hook()
    _write(
        tmp_path / "keras_overhead.json",
        {
            "store": "sqlite",
            "results": [
                {"config": "none", "description": "no autologging", "wall_ratio": 1.0},
                {
                    "config": "autolog_step",
                    "description": "autolog, per step",
                    "wall_ratio": 1.03,
                    "target_ratio": 1.05,
                },
                {"config": "autolog_models", "wall_ratio": 1.2, "target_ratio": 1.1},
                {"config": "mlflow_step", "wall_ratio": 4.4, "target_ratio": None},
            ],
            "skipped": {"wandb_step": "wandb is not installed"},
        },
    )
    _write(
        tmp_path / "keras_overhead_rotation.json",
        [
            {
                "config": "autolog_step",
                "description": "autolog, per step",
                "paired_wall_ratio": 1.036,
                "ci95_low": 1.009,
                "ci95_high": 1.072,
                "wall_ratio": 9.9,  # not the ratio the interval belongs to
                "target_ratio": 1.05,
            }
        ],
    )
    _write(
        tmp_path / "fault_injection.json",
        {
            "title": "Fault injection: into a server",
            **{f"case{i}": {"ratio": 1.0 + i / 100, "target": 1.1} for i in range(6, 12)},
        },
    )
    text = hook.render_summary(tmp_path)
    lines = text.splitlines()
    assert lines[0] == ("| Configuration | Ratio | 95% interval | Target | Met? | Result file |"), (
        "the summary table comes first"
    )
    assert (
        "| Keras, per step | 1.030x | \u2013 | \u2264 1.05x | **yes** "
        "| [keras overhead](#results-keras-overhead) |" in lines
    )
    assert "| Keras, autolog models | 1.200x | \u2013 | \u2264 1.10x | **no** |" in text
    assert (
        "| Keras, per step | 1.036x | 1.009\u20131.072 | \u2264 1.05x "
        "| **yes** (interval spans it) |" in text
    )
    # Six fault cases under one target: one row, their median, how many met it.
    assert (
        "| Fault injection, median of 6 cases | 1.085x | \u2013 | \u2264 1.10x "
        "| **yes** (5 of 6 cases met it) |" in text
    )
    assert "mlflow" not in text.split("\n\n")[0].lower()  # no target: not in the summary
    assert "3 of 4 measured ratios are within their target" in text
    for column in ("Configuration", "Ratio", "95% interval", "Target", "Met?", "Result file"):
        assert f"- **{column}**:" in text, f"the column {column} is not explained"
    # The comparison: autolog and MLflow bars from the JSON; W&B named as missing, with why.
    assert text.count("<svg") == 1
    assert "4.40x" in text and "1.03x" in text
    assert "W&amp;B" not in text.split("<svg")[1].split("</svg>")[0]  # no invented bar
    assert "W&B is not measured in this file (the run that made it skipped it: wandb" in text


def test_performance_summary_without_results(tmp_path: Path) -> None:
    hook = _performance_hook()
    assert "No benchmark results yet" in hook.render_summary(tmp_path / "absent")


def test_performance_page_leads_with_the_summary() -> None:
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    assert title == "# Performance"
    assert rest.lstrip().startswith("<!-- benchmark-summary -->")


def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed here (the docs session installs .[docs])")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    site = tmp_path / "site"
    for page in PAGES:
        built = site / _page_id(page).removesuffix(".md") / "index.html"
        if page.name == "index.md" and page.parent == DOCS:
            built = site / "index.html"
        assert built.is_file(), f"{_page_id(page)} was not built"
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("autolog.autolog", "autolog.Patch", "BatchLogger", "check_plugin"):
        assert name in reference, f"the API reference lacks {name}"
    # Attribute and method docs are shown, not only the class docstrings.
    for text in (
        "a dict private to this call",  # Call's Attributes: section
        "Every value of every metric",  # RecordedRun's
        "Log one metric value.",  # RunSink.log_metric
        "Whether every check passed.",  # ConformanceReport.ok
    ):
        assert text in reference, f"the API reference does not show {text!r}"
