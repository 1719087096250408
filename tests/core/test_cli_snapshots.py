"""The whole output of ``autolog`` at 80 columns, compared with reviewed snapshots.

Each case runs the command as a user does (a subprocess, ``COLUMNS=80``; one case at 120)
and compares
stdout with ``snapshots/<case>.txt``. After a deliberate change, regenerate them with
``AUTOLOG_UPDATE_SNAPSHOTS=1`` and read the diff before committing it.

``autolog plugins`` shows installed versions; so that its snapshot is the same on every
stack, a folder of distribution metadata put first on ``PYTHONPATH`` says which versions
are "installed" (importlib-metadata finds the first one on the path), next to the toy
plugins of tests/core/toyenv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.toy import TOYENV

SNAPSHOTS = Path(__file__).parent / "snapshots"
REPO = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("AUTOLOG_UPDATE_SNAPSHOTS", "") == "1"

CASES = {  # name: (arguments, terminal width)
    "help": (["--help"], 80),
    "plugins-help": (["plugins", "--help"], 80),
    "run-help": (["run", "--help"], 80),
    "sync-help": (["sync", "--help"], 80),
    "plugins": (["plugins"], 80),
    "plugins-verbose": (["plugins", "--verbose"], 80),
    "plugins-wide": (["plugins"], 120),  # room for the supported range and distribution
}

# name -> (version, entry points): what the snapshot's environment has installed.
DISTRIBUTIONS = {
    "autolog-core": (
        "0.1.0",
        {
            "keras": "autolog_keras:KerasPlugin",
            "tf_estimator": "autolog_tf_estimator:EstimatorPlugin",
        },
    ),
    "autolog-sklearn": ("0.1.0", {"sklearn": "autolog_sklearn:SklearnPlugin"}),
    "keras": ("3.10.0", {}),
    "scikit-learn": ("1.5.0", {}),
    "tensorflow-cpu": ("2.21.0", {}),
    "tensorflow-estimator": ("2.15.0", {}),
}


def _fake_site(root: Path) -> Path:
    for name, (version, entry_points) in DISTRIBUTIONS.items():
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        if entry_points:
            lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
            (info / "entry_points.txt").write_text(f"[autolog.plugins]\n{lines}", encoding="utf-8")
    return root


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_matches_the_snapshot(case: str, tmp_path: Path) -> None:
    args, columns = CASES[case]
    site = _fake_site(tmp_path / "site")
    paths = [
        str(site),
        TOYENV,
        str(REPO / "examples" / "plugins" / "autolog-sklearn"),
        os.environ.get("PYTHONPATH", ""),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TERM")}
    env.update(COLUMNS=str(columns), LINES="40", PYTHONPATH=os.pathsep.join(p for p in paths if p))
    result = subprocess.run(
        [sys.executable, "-m", "autolog", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= columns, result.stdout
    snapshot = SNAPSHOTS / f"{case}.txt"
    if UPDATE:
        snapshot.write_text(result.stdout, encoding="utf-8")
    assert snapshot.exists(), f"no snapshot {snapshot.name}: run with AUTOLOG_UPDATE_SNAPSHOTS=1"
    assert result.stdout == snapshot.read_text(encoding="utf-8"), (
        f"`autolog {' '.join(args)}` at {columns} columns changed; if on purpose, regenerate the snapshots "
        "with AUTOLOG_UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_help_shows_no_raw_markup() -> None:
    for case in ("help", "run-help", "plugins-help", "sync-help"):
        text = (SNAPSHOTS / f"{case}.txt").read_text(encoding="utf-8")
        assert "``" not in text and ":func:" not in text and "\b" not in text, case
    commands = (SNAPSHOTS / "help.txt").read_text(encoding="utf-8").split("Commands:")[1]
    assert "..." not in commands  # no short help cut off
    run_help = (SNAPSHOTS / "run-help.txt").read_text(encoding="utf-8")
    options = run_help.split("Options:")[1]
    for option in ("--log-every-n-steps N", "--log-models / --no-log-models"):
        line = next(x for x in options.splitlines() if option in x)
        assert line.split(option, 1)[1].strip(), f"{option} has no help"
