"""The built docs site as a reader's browser shows it: every page renders in headless
Chromium without a console error, and the Performance page leads with its summary table.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and ``websocket-client`` (the docs
extra). Without them the tests fail and say what to install: a skipped browser check
would pass a broken site.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_COLUMNS = ["Configuration", "Ratio", "95% interval", "Target", "Met?", "Result file"]


def _site_browser() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "autolog_site_browser", ROOT / "tools" / "site_browser.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: install the docs extra (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return out


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[tuple[Any, str]]:
    tool = _site_browser()
    if importlib.util.find_spec("websocket") is None:
        pytest.fail("websocket-client is not installed: install the docs extra")
    try:
        executable = tool.find_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with tool.serve(site) as base, tool.Browser(executable) as chromium:
        yield chromium, base


def _pages(site: Path) -> list[str]:
    return sorted(
        p.relative_to(site).as_posix().removesuffix("index.html")
        for p in site.rglob("index.html")
        if p.parent.name not in ("assets", "search")
    )


def test_every_page_renders_without_console_errors(site: Path, browser: Any) -> None:
    chromium, base = browser
    pages = _pages(site)
    assert len(pages) >= 10, f"only {pages} were built"
    problems = {}
    for page in pages:
        errors = chromium.open(base + page)
        title = chromium.evaluate("document.querySelector('article h1')?.textContent ?? ''")
        broken = chromium.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.getAttribute('src'))"
        )
        errors += [f"image not shown: {src}" for src in broken]
        if errors or not title.strip():
            problems[page or "/"] = errors or ["the page shows no title"]
    assert not problems, f"pages with console errors: {problems}"


def test_performance_page_leads_with_the_summary_table(browser: Any) -> None:
    chromium, base = browser
    assert chromium.open(base + "performance/") == []
    first = chromium.evaluate(
        """(() => {
        const h1 = document.querySelector('article h1');
        const next = h1.nextElementSibling;
        const table = next.matches('table') ? next : next.querySelector('table');
        const gap = table ? table.getBoundingClientRect().top - h1.getBoundingClientRect().bottom
                          : null;
        return {
          tag: next.tagName + '.' + next.className,
          text_before_table: table && next !== table
            ? next.textContent.slice(0, next.textContent.indexOf(table.textContent)).trim()
            : '',
          headers: table ? [...table.querySelectorAll('thead th')].map(th => th.textContent.trim())
                         : null,
          rows: table ? table.querySelectorAll('tbody tr').length : 0,
          gap: gap,
          height: document.documentElement.scrollHeight,
        };
    })()"""
    )
    assert first["headers"] == SUMMARY_COLUMNS, f"the first thing under the title: {first}"
    assert first["text_before_table"] == "", first
    assert first["rows"] >= 1, first
    assert 0 <= first["gap"] < 80, f"the table is not right under the title: {first}"
    # The page was ~22,000 px of raw numbers; the raw figures are folded away now.
    assert first["height"] < 9000, f"the Performance page is {first['height']} px tall"
    # The comparison chart follows the summary.
    assert chromium.evaluate("document.querySelectorAll('.autolog-chart svg').length") >= 1
