"""Benchmark processes load autolog's compiled bytecode, as they would after ``pip install``.

The nox environments install this repository's packages in editable mode, and a machine
with ``PYTHONDONTWRITEBYTECODE`` set (this one has it) then compiles every autolog module
from source in every fresh process: about 60 ms when enabling autolog and more as the
first fit imports the rest, none of which a user of the installed package pays. MLflow,
W&B and TensorFlow load the bytecode pip wrote when it installed them. Compiling the
repository's sources once, before any measured process starts, puts autolog on the same
footing: ``PYTHONDONTWRITEBYTECODE`` only stops Python from writing bytecode, and an
up-to-date ``.pyc`` in ``__pycache__`` (ignored by git) is read as usual.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a measured process imports from this repository.
SOURCES = ("core", "plugins", "examples/plugins", "benchmarks", "tests/support")


def compile_sources() -> None:
    """Write up-to-date bytecode for the repository's packages (quietly; already compiled
    files are skipped)."""
    for folder in SOURCES:
        compileall.compile_dir(ROOT / folder, quiet=1, workers=1)
