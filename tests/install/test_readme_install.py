"""The README's install commands, run as a new user runs them, each in a fresh virtualenv.

Each command of the README's "Install" block is run as written, with ``autolog-core``
pointing at this repository instead of the package index; pip's own cache is used, so
TensorFlow is downloaded once per machine. Then a tiny model is fitted with
``autolog.autolog()`` and MLflow's default tracking URI, in an empty folder, and the run
must be in that folder's ``./mlflow.db``: the declared dependencies alone must make the
default store work (no separate ``pip install mlflow``), and the framework stack they
resolve to must train.

Slow (a few minutes per command, most of it installing TensorFlow): marked ``install``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[2]


def readme_install_commands() -> list[str]:
    """The ``pip install`` lines of the README's "Install" section, comments removed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Install\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Install' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "the README's Install section has no bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c.startswith("pip install")]
    assert commands, "the README's Install block has no pip install command"
    return commands


def _from_this_repo(command: str, source: Path = REPO) -> list[str]:
    """``pip install "autolog-core[x]" ...`` as pip arguments installing ``source``."""
    args = shlex.split(command)[2:]
    replaced = [re.sub(r"^autolog-core(?=\[|$)", str(source), a) for a in args]
    assert replaced != args, f"{command!r} does not install autolog-core"
    return replaced


def _copy_of_this_checkout(target: Path) -> Path:
    """The working tree as it is, copied: pip builds in the source folder (``build/``,
    ``*.egg-info``), and two stacks' sessions may build at the same time."""
    skip = shutil.ignore_patterns(
        ".git",
        ".nox",
        ".venv*",
        "build",
        "site",
        "*.egg-info",
        "__pycache__",
        "mlruns",
        "mlflow.db",
        ".*_cache",
        "results",
    )
    return Path(shutil.copytree(REPO, target, ignore=skip))


TRAIN = """
import json, sys
import autolog

enabled = autolog.autolog()
print("ENABLED=" + json.dumps(enabled), flush=True)

import numpy as np
import tensorflow as tf

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
keras = tf.keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=2, batch_size=16, verbose=0)

if "tf_estimator" in enabled:
    column = tf.feature_column.numeric_column("x", shape=(4,))
    estimator = tf.estimator.LinearClassifier([column], model_dir="estimator")
    estimator.train(
        lambda: tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(16), steps=3
    )
"""

READ_BACK = """
import json
from mlflow import MlflowClient

client = MlflowClient("sqlite:///mlflow.db")
runs = client.search_runs(["0"])
print(json.dumps([
    {"status": r.info.status, "params": r.data.params, "metrics": sorted(r.data.metrics)}
    for r in runs
]))
"""


@pytest.mark.parametrize("command", readme_install_commands())
def test_readme_install_command_gives_a_stack_that_logs_into_the_default_store(
    command: str, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AUTOLOG_", "PYTHON", "VIRTUAL_ENV"))
    }
    clean["TF_CPP_MIN_LOG_LEVEL"] = "2"
    clean["AUTOLOG_SPOOL_DIR"] = str(tmp_path / "spool")  # not the user's cache
    install = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            *_from_this_repo(command, _copy_of_this_checkout(tmp_path / "source")),
        ],
        env=clean,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(textwrap.dedent(TRAIN))
    trained = subprocess.run(
        [python, "train.py"], cwd=work, env=clean, capture_output=True, text=True, timeout=900
    )
    assert trained.returncode == 0, trained.stderr[-5000:]
    # Nothing spooled, nothing failed: autolog's only words are the lines naming each run.
    said = [line for line in trained.stderr.splitlines() if line.startswith("autolog:")]
    assert all(line.startswith("autolog: run ") for line in said), trained.stderr
    assert not any("spool" in line or "could not" in line for line in said), trained.stderr
    assert (work / "mlflow.db").is_file(), sorted(p.name for p in work.iterdir())
    assert not list((tmp_path / "spool").glob("*.jsonl")), "values were spooled"

    (work / "read_back.py").write_text(textwrap.dedent(READ_BACK))
    read = subprocess.run(
        [python, "read_back.py"], cwd=work, env=clean, capture_output=True, text=True, timeout=300
    )
    assert read.returncode == 0, read.stderr[-3000:]
    runs = json.loads(read.stdout.strip().splitlines()[-1])
    expected = 2 if "tf-estimator" in command else 1
    assert len(runs) == expected, runs
    assert all(run["status"] == "FINISHED" for run in runs), runs
    assert all("loss" in run["metrics"] for run in runs), runs
    keras_run = next(run for run in runs if run["params"].get("epochs") == "2")
    assert keras_run["params"]["batch_size"] == "16"


def test_readme_commands_are_found() -> None:
    commands = readme_install_commands()
    assert any("[keras-tf]" in c for c in commands)
    assert any("[tf-estimator]" in c for c in commands)
    assert all(str(REPO) in " ".join(_from_this_repo(c)) for c in commands)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
