"""Render the docs' Mermaid diagrams (``docs/diagrams/*.mmd``) to SVG files in
``docs/images/``, with headless Chromium and a Mermaid you downloaded.

The site shows the SVGs: a page that loaded Mermaid at view time would fetch 3.5 MB of
JavaScript from a CDN (and show nothing offline). Each SVG starts with a comment holding
the SHA-256 of its source, so ``tests/docs`` can tell when a diagram was edited and not
re-rendered. To re-render after editing a ``.mmd`` file:

    npm pack mermaid@11 && tar xzf mermaid-*.tgz package/dist/mermaid.min.js
    python tools/render_diagrams.py package/dist/mermaid.min.js
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import site_browser  # (the directory above is put on the path first)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "docs" / "diagrams"
IMAGES = ROOT / "docs" / "images"
_PAGE = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="mermaid.min.js"></script>
<script>mermaid.initialize({startOnLoad: false, theme: "neutral", htmlLabels: false,
  flowchart: {htmlLabels: false}});
// An <img> shows only well-formed XML: re-serialise what Mermaid made as HTML.
function asXml(svg) {
  const doc = new DOMParser().parseFromString(svg, "text/html");
  return new XMLSerializer().serializeToString(doc.querySelector("svg"));
}</script>"""


def source_hash(source: str) -> str:
    """What an SVG records of the ``.mmd`` text it was rendered from."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def header(source: str) -> str:
    return (
        "<!-- rendered from docs/diagrams by tools/render_diagrams.py; "
        f"source sha256 {source_hash(source)} -->\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mermaid_js", type=Path, help="mermaid.min.js from the mermaid package")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(args.mermaid_js, Path(work) / "mermaid.min.js")
        (Path(work) / "index.html").write_text(_PAGE, encoding="utf-8")
        with site_browser.serve(Path(work)) as base, site_browser.Browser() as browser:
            problems = browser.open(base + "index.html")
            if problems:
                raise SystemExit(f"Mermaid did not load: {problems}")
            for path in sorted(SOURCES.glob("*.mmd")):
                source = path.read_text(encoding="utf-8")
                svg = browser.evaluate(
                    f"mermaid.render('d{path.stem.replace('-', '')}', {json.dumps(source)})"
                    ".then(r => asXml(r.svg))",
                    await_promise=True,
                )
                target = IMAGES / f"{path.stem}.svg"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(header(source) + svg + "\n", encoding="utf-8")
                print(f"{path.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
