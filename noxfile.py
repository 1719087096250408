"""Test environments, one per framework stack, built by `make test` through nox.

- lint:      ruff check, ruff format --check, mypy --strict on core/
- tf221:     TensorFlow 2.21 / Keras 3 (the current stack): core, batching, Keras plugin
- tf215:     TensorFlow 2.15.1 + tensorflow-estimator 2.15.0, tf.keras 2.15: core, batching,
             Keras plugin on tf.keras, Estimator plugin
- docs:      mkdocs build --strict and the docs' checks that need no framework (the
             stacks' sessions run every Python snippet in docs/)
- mlflow-lowest: the core's tests, no framework, on the lowest MLflow pyproject.toml
             allows (MLFLOW_LOWEST): the fast paths' row comparisons run on both ends of
             the range they are switched on in (autolog.batching.fast_path)

Each stack runs pytest twice: the suite (everything but the fault-injection cases), then
those cases in a process of their own (see FAULT_TESTS). AUTOLOG_TEST_PART=suite or
=faults runs one of the two; `make test` (tools/run_sessions.py) runs both stacks' suites
side by side, then the fault cases alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import nox
import tomllib

nox.options.sessions = ["lint", "tf221", "tf215", "docs", "mlflow-lowest"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
MLFLOW = "mlflow==3.17.2"
# The floor of pyproject.toml's "mlflow>=": the oldest MLflow autolog works with.
MLFLOW_LOWEST = "mlflow==3.7.0"
# MLflow releases made before SQLAlchemy 2.1 (3.7 among them) import a pool class that 2.1
# removed: with it, no SQL store opens. Their users need SQLAlchemy 2.0, as this session.
LOWEST_EXTRA = ("sqlalchemy<2.1",)
# The third-party plugin example is installed as its own distribution, as a user would.
SKLEARN_PLUGIN = "examples/plugins/autolog-sklearn"
STACKS = {
    "tf221": ["tensorflow-cpu==2.21.0", "keras>=3.10,<4"],
    # TF 2.15 pins wrapt<1.15 and numpy<2; autolog must work with both.
    "tf215": ["tensorflow-cpu==2.15.1", "tensorflow-estimator==2.15.0", "wrapt>=1.14,<1.15"],
}


# The fault cases time fits with the test process pinned to half of the cores (the other
# half stands in for the tracking server's machine). TensorFlow sizes its thread pools once,
# for the cores it sees when it starts: those cases run in a process of their own whose
# pools fit the half they get. In one process with the rest, the fits without autologging
# swung between two speeds (3.5 s and 5.6 s under TF 2.15), and the ratios with them.
FAULT_TESTS = "tests/reliability/test_fault_injection.py"
PARTS = ("suite", "faults")
# The README's install commands, each in a fresh virtualenv (both stacks, whichever session
# runs it): once per `make test`, with the current stack's suite.
INSTALL_TESTS = "tests/install"
BROWSER_TESTS = "tests/docs/test_site_in_browser.py"
INSTALL_TESTS_STACK = "tf221"


def _install(
    session: nox.Session, extras: tuple[str, ...], *requirements: str, plugin: bool = True
) -> None:
    """This repository (editable, with ``extras``), the example plugin, ``requirements``.

    The dependencies come first, and sessions may install theirs at the same time
    (`make test` builds every environment at once); the editable installs, which write
    ``*.egg-info`` into this repository's folders, go one session at a time.
    """
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies = list(project["dependencies"])
    for extra in extras:
        dependencies += project["optional-dependencies"][extra]
    session.install(*dependencies, *requirements)
    editable = ["-e", ".", *(["-e", SKLEARN_PLUGIN] if plugin else [])]
    with _one_session_at_a_time(".nox/editable-install.lock"):
        session.install("--no-deps", *editable)


@contextlib.contextmanager
def _one_session_at_a_time(lock_file: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(lock_file), exist_ok=True)
    with open(lock_file, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pytest(session: nox.Session, stack: str, **extra_env: str) -> None:
    _install(session, ("dev",), MLFLOW, *STACKS[stack])
    env = {"AUTOLOG_TESTING": "1", "AUTOLOG_STACK": stack, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.update(extra_env)
    if session.posargs:
        _run_pytest(session, stack, env, *session.posargs)
        return
    part = os.environ.get("AUTOLOG_TEST_PART", "")
    if part not in ("", *PARTS):
        session.error(f"AUTOLOG_TEST_PART={part!r}: expected one of {', '.join(PARTS)}")
    if part in ("", "suite"):
        # The built site opened in Chromium needs the docs extra: the docs session runs it.
        ignored = [f"--ignore={FAULT_TESTS}", f"--ignore={BROWSER_TESTS}"]
        if stack != INSTALL_TESTS_STACK:
            ignored.append(f"--ignore={INSTALL_TESTS}")
        _run_pytest(session, stack, env, *ignored)
    if part not in ("", "faults"):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    half = str(max(1, (cores or 2) // 2))  # what tests/support/cpus.py gives the training
    pools = {"TF_NUM_INTRAOP_THREADS": half, "TF_NUM_INTEROP_THREADS": half}
    _run_pytest(session, f"{stack}-faults", {**env, **pools}, FAULT_TESTS)


def _run_pytest(session: nox.Session, name: str, env: dict[str, str], *args: str) -> None:
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--junitxml=.nox/junit-{name}.xml",
        *args,
        env=env,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    _install(session, ("dev",), MLFLOW, plugin=False)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "core/autolog")


@nox.session(python=PYTHON)
def tf221(session: nox.Session) -> None:
    _pytest(session, "tf221")


@nox.session(python=PYTHON)
def tf215(session: nox.Session) -> None:
    # The fault cases' timing rounds (about a minute each) run three times on the current
    # stack; here one round per fault checks that tf.keras 2.15 survives every fault too.
    _pytest(session, "tf215", AUTOLOG_FAULT_ROUNDS="1")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The docs site builds strictly, and the docs' checks pass (the reference pages keep
    up with the code, the Performance page renders). No framework is installed here: the
    snippets, which use them, run in the stacks' sessions."""
    _install(session, ("docs", "dev"), MLFLOW)
    # tests/docs builds the site itself (test_mkdocs_build_is_strict_clean).
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/docs",
        "--deselect=tests/docs/test_docs.py::test_every_python_snippet_runs",
        *session.posargs,
        env={"AUTOLOG_TESTING": "1"},
    )


# tests/core but what needs a framework (the `autolog plugins` snapshots show the versions
# of the frameworks found).
LOWEST_TESTS = ("tests/core", "--ignore=tests/core/test_cli_snapshots.py")


@nox.session(python=PYTHON, name="mlflow-lowest")
def mlflow_lowest(session: nox.Session) -> None:
    """The core's tests on the lowest MLflow pyproject.toml allows, without a framework:
    what a user pinning that MLflow gets, the fast paths' comparisons with the rows
    MLflow's public client writes included (tests/core/batching/test_fast_path.py and
    test_sql_bulk.py)."""
    _install(session, ("dev",), MLFLOW_LOWEST, *LOWEST_EXTRA)
    _run_pytest(
        session, "mlflow-lowest", {"AUTOLOG_TESTING": "1"}, *(session.posargs or LOWEST_TESTS)
    )


@nox.session(python=PYTHON)
def example(session: nox.Session) -> None:
    """The README's main job: the Keras digits example, autologged into ./mlflow.db."""
    session.install("-e", ".", MLFLOW, "scikit-learn", *STACKS["tf221"])
    session.run("python", "examples/keras_digits.py", env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    session.log(f"Look at the run: mlflow ui --backend-store-uri {uri}")
