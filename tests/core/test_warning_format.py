"""How autolog's warnings look: one ``autolog: ...`` line, no source echo, details on request.

The store-down warning is triggered in a real process (a BatchLogger pointed at a closed
port) and its stderr read line by line, the way a user sees it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import autolog
from autolog import safety


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


STORE_DOWN = """
import mlflow
from autolog.batching import BatchLogger

mlflow.set_tracking_uri("http://127.0.0.1:{port}")
logger = BatchLogger.start_run(run_name="offline", retry_timeout=0.2)
logger.log_metric("loss", 0.5, step=0)
logger.end_run("FINISHED")
"""


def _store_down(tmp_path: Path, **env: str) -> list[str]:
    script = tmp_path / "store_down.py"
    script.write_text(textwrap.dedent(STORE_DOWN.format(port=_closed_port())))
    clean = {k: v for k, v in os.environ.items() if k not in ("AUTOLOG_TESTING", "AUTOLOG_DEBUG")}
    result = subprocess.run(
        [sys.executable, str(script)],
        env={**clean, "AUTOLOG_SPOOL_DIR": str(tmp_path / "spool"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def test_the_store_down_warning_is_one_short_line_without_source_echo(tmp_path: Path) -> None:
    lines = _store_down(tmp_path)
    assert lines, "no warning at all"
    assert all(line.startswith("autolog: ") for line in lines), lines
    [down] = [line for line in lines if "could not be created" in line]
    assert "is unreachable (MlflowException)" in down
    assert "Caused by" not in down and "Max retries" not in down
    assert "AUTOLOG_DEBUG=1 shows the details" in down
    assert down.count("(") == down.count(")")  # the cut kept the sentence whole
    assert "AutologWarning" not in "\n".join(lines)
    assert "reporter.problem" not in "\n".join(lines)  # Python's echo of our source line


def test_autolog_debug_shows_the_details_and_where_from(tmp_path: Path) -> None:
    lines = _store_down(tmp_path, AUTOLOG_DEBUG="1")
    [down] = [line for line in lines if "could not be created" in line]
    assert "Max retries exceeded" in down
    assert down.endswith(".py:" + down.rsplit(".py:", 1)[1]) and "[" in down  # [file:line]


def test_warnings_are_still_ordinary_warnings() -> None:
    with pytest.warns(autolog.AutologWarning, match="something happened") as caught:
        safety.warn("something happened")
    assert str(caught[0].message) == "autolog: something happened"
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        safety.warn("autolog could not restore x")
        warnings.warn("not ours", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recorded] == ["autolog: could not restore x", "not ours"]


def test_other_warnings_keep_pythons_format(tmp_path: Path) -> None:
    script = "import autolog, warnings\nwarnings.warn('theirs', UserWarning)\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "UserWarning: theirs" in result.stderr


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "autolog: a hook failed (ValueError: boom).",
            "autolog: a hook failed (ValueError: boom).",
        ),
        (
            "autolog: x is unreachable (ConnectionError: " + "y" * 100 + "); retried later.",
            "autolog: x is unreachable (ConnectionError); retried later. "
            "(AUTOLOG_DEBUG=1 shows the details.)",
        ),
        (  # cut at a fixed length inside a nested "(": the outer ")" is given back
            "autolog: not created (store down (OSError: " + "z" * 90 + " (Caused by N)); later.",
            "autolog: not created (store down (OSError)); later. "
            "(AUTOLOG_DEBUG=1 shows the details.)",
        ),
        ("plain message", "autolog: plain message"),
    ],
)
def test_long_exception_details_are_cut_to_their_type(message: str, shown: str) -> None:
    assert safety.format_warning(message, "f.py", 1) == shown
