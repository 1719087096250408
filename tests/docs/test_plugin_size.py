"""tools/plugin_size.py counts what the plugin-author guide quotes: every line, lines
neither blank nor a comment, and lines of code (docstrings left out too)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "plugin_size.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plugin_size", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plugin_size"] = module  # its dataclass looks the module up
    spec.loader.exec_module(module)
    return module


SOURCE = textwrap.dedent(
    '''\
    """Module docstring,
    two lines."""

    import os  # a comment after code is code

    # a comment line
    # --8<-- [start:body]
    def f(x):
        """Docstring."""
        text = """a string
    # not a comment: inside the string
    """
        return x + len(text)  # 1


    # --8<-- [end:body]
    CONSTANT = "#"
    '''
)


def test_lines_comments_and_docstrings(tool: ModuleType) -> None:
    size = tool.measure(SOURCE, "example.py")
    # 1-2 and 9 are docstrings, 10-12 one string, 6-7 and 16 comments, 3, 5, 14-15 blank.
    assert (size.lines, size.not_blank_or_comment, size.code) == (17, 10, 7)


def test_a_section_is_counted_within_the_whole_file(tool: ModuleType) -> None:
    section = tool.section_lines(SOURCE, "body", "example.py")
    size = tool.measure(SOURCE, "example.py", section)
    # def, docstring, the three lines of the assignment, return; the docstring is known
    # as one because the file is parsed whole.
    assert (size.lines, size.not_blank_or_comment, size.code) == (8, 6, 5)
    with pytest.raises(ValueError, match=r"no '--8<-- \[start:missing\]'"):
        tool.section_lines(SOURCE, "missing", "example.py")


def test_a_markdown_fence_by_number(tool: ModuleType) -> None:
    page = "# Title\n\n```bash\nls\n```\n\n```python\nx = 1\n\n# note\ny = 2\n```\n"
    assert tool.python_fence(page, 1, "page.md") == "x = 1\n\n# note\ny = 2\n"
    with pytest.raises(ValueError, match="the page has 1 python fences, not #2"):
        tool.python_fence(page, 2, "page.md")


def test_what_is_not_python_is_refused_naming_it(tool: ModuleType) -> None:
    with pytest.raises(SyntaxError, match=r"broken\.py: not Python"):
        tool.measure("def f(:\n", "broken.py")


def test_the_command_line_reads_a_revision() -> None:
    """The walk-through's size before this change, from git: 45 lines, 30 of code."""
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "e5bea3a"]).returncode:
        pytest.skip("this checkout lacks the revision the guide's 'before' column names")
    out = subprocess.run(
        [sys.executable, str(TOOL), "--rev", "e5bea3a", "docs/writing-a-plugin.md#8", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"lines": 45' in out and '"code": 30' in out
    bad = subprocess.run(
        [sys.executable, str(TOOL), "no/such/file.py"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "plugin_size:" in bad.stderr
