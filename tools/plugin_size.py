"""Count a plugin's lines three ways, the same way every time: the sizes the plugin-author
guide quotes.

- **lines**: every line (what ``wc -l`` says).
- **not blank or comment**: lines that hold a token other than a comment (Python's own
  tokenizer decides, so a ``#`` inside a string is not a comment; a string spanning
  several lines counts on each of them).
- **code**: those, minus docstrings (the first statement of a module, class or function
  when it is a string, found with `ast`).

A source is a Python file, ``file.py:section`` for the lines between the
``# --8<-- [start:section]`` and ``# --8<-- [end:section]`` markers the docs include
(the file is parsed whole, so docstrings are still known), or ``page.md#N`` for the
N-th ``python`` fence of a Markdown page (1-based, as written: ``--8<--`` lines are not
expanded). ``--rev REV`` reads every source as it was at a git revision, so a "before"
size stays reproducible after the file changed:

    python tools/plugin_size.py examples/plugins/autolog-sklearn/autolog_sklearn/__init__.py
    python tools/plugin_size.py --rev e5bea3a "docs/writing-a-plugin.md#8"

Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")


@dataclass(frozen=True)
class Size:
    """One source's size.

    Attributes:
        source: the source as given on the command line.
        lines: every line.
        not_blank_or_comment: lines holding a token other than a comment.
        code: those, docstrings left out.
    """

    source: str
    lines: int
    not_blank_or_comment: int
    code: int


def measure(text: str, source: str = "<text>", section: tuple[int, int] | None = None) -> Size:
    """The size of Python ``text``; with ``section`` (first, last line, 1-based,
    inclusive), of those lines only. Raises ``SyntaxError`` naming ``source``."""
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as exc:
        raise SyntaxError(f"{source}: not Python ({exc.msg}, line {exc.lineno})") from None
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    filled = {
        row
        for token in tokens
        if token.type not in _NOT_CODE
        for row in range(token.start[0], token.end[0] + 1)
    }
    docstrings = {row for start, end in _docstrings(tree) for row in range(start, end + 1)}
    first, last = section or (1, len(text.splitlines()))
    rows = set(range(first, last + 1))
    return Size(
        source=source,
        lines=len(rows),
        not_blank_or_comment=len(filled & rows),
        code=len((filled - docstrings) & rows),
    )


def _docstrings(tree: ast.Module) -> list[tuple[int, int]]:
    """The (first, last) line of every module, class and function docstring."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            found.append((first.lineno, first.end_lineno or first.lineno))
    return found


def section_lines(text: str, name: str, source: str) -> tuple[int, int]:
    """The lines between the ``--8<-- [start:name]`` and ``[end:name]`` markers."""
    lines = text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if f"--8<-- [start:{name}]" in ln)
        end = next(i for i, ln in enumerate(lines) if f"--8<-- [end:{name}]" in ln)
    except StopIteration:
        raise ValueError(f"{source}: no '--8<-- [start:{name}]'/'[end:{name}]' markers") from None
    return start + 2, end  # 1-based: the line after the start marker, the one before the end


def python_fence(page: str, index: int, source: str) -> str:
    """The ``index``-th (1-based) ``python`` fence of a Markdown page, dedented."""
    lines = page.splitlines()
    fences: list[str] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], match["indent"]
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            j += 1
        if match["info"].strip().split(" ")[0].lstrip(".").lower() in ("python", "py"):
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
            fences.append("\n".join(body) + "\n")
        i = j + 1
    if not 1 <= index <= len(fences):
        raise ValueError(f"{source}: the page has {len(fences)} python fences, not #{index}")
    return fences[index - 1]


def read(path: str, rev: str | None) -> str:
    """A file of this repository, as it is now or (with ``rev``) at that git revision."""
    if rev is None:
        return (ROOT / path).read_text(encoding="utf-8")
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ValueError(f"{path} at {rev}: {proc.stderr.strip()}")
    return proc.stdout


def size_of(source: str, rev: str | None = None) -> Size:
    """The size of one source: ``file.py``, ``file.py:section`` or ``page.md#N``."""
    path, hash_, fence = source.partition("#")
    if hash_:
        if not fence.isdigit():
            raise ValueError(f"{source}: write page.md#N, N the fence's number (1-based)")
        return measure(python_fence(read(path, rev), int(fence), source), source)
    path, colon, section = source.partition(":")
    text = read(path, rev)
    return measure(text, source, section_lines(text, section, source) if colon else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="file.py, file.py:section or page.md#N")
    parser.add_argument("--rev", help="read the sources at this git revision")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        sizes = [size_of(source, args.rev) for source in args.sources]
    except (OSError, ValueError, SyntaxError) as exc:
        print(f"plugin_size: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(s) for s in sizes], indent=2))
        return 0
    width = max(len(s.source) for s in sizes)
    print(f"{'source':<{width}}  lines  not blank/comment  code")
    for s in sizes:
        print(f"{s.source:<{width}}  {s.lines:>5}  {s.not_blank_or_comment:>18}  {s.code:>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
