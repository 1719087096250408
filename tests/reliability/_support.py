"""Shared helpers of the reliability suite: reading runs back, Keras set-up, the sync CLI,
and the figures each test records into ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

# -- figures ---------------------------------------------------------------------------

_lock = threading.Lock()
_figures: dict[str, Any] = {}


# Titles for the docs' Performance page, which renders every file in benchmarks/results.
DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "fault_injection": {
        "title": "Fault injection: Keras per-step logging into a PostgreSQL-backed server",
        "description": (
            "tests/reliability/test_fault_injection.py. One row per fault and test session "
            "(tf221: TF 2.21 and Keras 3, three rounds; tf215: tf.keras 2.15, one round in "
            "`make test`): the median over its rounds of fit time with autolog "
            "(log_every_n_steps=1) over the mean of the same-seed fits without autolog just "
            "before and after, and ratio_by_parts, typical fits made of each part's median "
            "(start, each epoch, end) over the case's fits (target <= 1.10x; measured, not "
            "asserted), values checked in the store after "
            "`autolog sync` (lost and duplicated: 0). The fits read tf.data datasets with "
            "autotuning off (see the test's docstring for why). Default "
            "batching policy; the process's first autologged fit is an untimed warm-up. The "
            "server and PostgreSQL run on server_cores, training and autolog on "
            "training_cores, standing in for a server on another machine."
        ),
        "plot": {"label": "name", "value": "ratio"},
    },
    "exception_sweep": {
        "title": "Exception-safety sweep",
        "description": (
            "tests/reliability/test_exception_sweep.py: each injection point made to raise "
            "in turn; the user's fit/evaluate must return what it returns with autolog off, "
            "and an AutologWarning must name the failure."
        ),
    },
    "reliability": {
        "title": "Reliability on PostgreSQL",
        "description": (
            "Values checked in a real mlflow server on PostgreSQL by tests/reliability "
            "(batching round trip and outage, Keras complete run, 8 threads, 4 processes)."
        ),
    },
    "secrets": {"title": "Secrets", "description": "tests/reliability/test_secrets.py"},
    "bad_input": {
        "title": "Bad input at the API",
        "description": "tests/reliability/test_bad_input.py",
    },
}


def record(result_file: str, key: str, value: Any) -> None:
    """Merge ``{key: value}`` into ``benchmarks/results/<result_file>.json`` and the summary."""
    path = RESULTS / f"{result_file}.json"
    with _lock, _results_locked():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data.update(DESCRIPTIONS.get(result_file, {}))
        data[key] = value
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        _figures[f"{result_file}.{key}"] = _short(value)


@contextlib.contextmanager
def _results_locked() -> Iterator[None]:
    """Hold the results folder's lock file: `make test` runs both stacks' suites at once,
    and each read-modify-write of a results file must see the other's."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def figures() -> dict[str, Any]:
    with _lock:
        return dict(_figures)


def _short(value: Any) -> Any:
    if isinstance(value, Mapping):
        keep = (
            "ratio",
            "ratio_by_parts",
            "own_ratio",
            "count",
            "values_checked",
            "values_lost",
            "duplicates",
            "swept",
        )
        picked = {k: v for k, v in value.items() if k in keep}
        return picked or f"{{{len(value)} entries}}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} items]"
    return value


# -- reading runs back -------------------------------------------------------------------


@dataclasses.dataclass
class RunContents:
    """Everything the store holds for one run."""

    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[tuple[int, float, int]]]  # key -> [(step, value, timestamp)]
    artifacts: list[str]

    def history(self, key: str) -> list[tuple[int, float]]:
        return [(step, value) for step, value, _ in self.metrics.get(key, [])]

    def steps(self, key: str) -> list[int]:
        return [step for step, _, _ in self.metrics.get(key, [])]

    def values(self, key: str) -> list[float]:
        return [value for _, value, _ in self.metrics.get(key, [])]

    @property
    def value_count(self) -> int:
        return len(self.params) + sum(len(h) for h in self.metrics.values())


def run_contents(client: Any, run_id: str) -> RunContents:
    run = client.get_run(run_id)
    metrics: dict[str, list[tuple[int, float, int]]] = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
        metrics[key] = [(m.step, m.value, m.timestamp) for m in ordered]
    return RunContents(
        run_id=run_id,
        status=run.info.status,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        metrics=metrics,
        artifacts=sorted(_artifacts(client, run_id, None)),
    )


def _artifacts(client: Any, run_id: str, path: str | None) -> Iterator[str]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifacts(client, run_id, info.path)
        else:
            yield info.path


def all_runs(client: Any, experiment_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    return list(
        client.search_runs(
            [experiment_id],
            run_view_type=ViewType.ALL,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
        )
    )


# -- the sync CLI ----------------------------------------------------------------------------


def sync_cli(
    spool: Path, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m autolog sync --no-progress <spool>`` in a subprocess."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "autolog", "sync", "--no-progress", str(spool)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env,
        cwd=ROOT,
        check=False,
    )


def spool_files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.jsonl")) if spool.is_dir() else []


# -- batching policy -------------------------------------------------------------------------


def default_policy(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> None:
    """Make every BatchLogger built from now on use ``overrides`` unless told otherwise.

    autolog() has no option for the batching policy, so the fault tests change its defaults
    here (e.g. ``retry_timeout``) instead of editing the product.
    """
    from autolog.batching.policy import BatchPolicy

    original = BatchPolicy.__dict__["from_kwargs"].__func__

    def from_kwargs(cls: type[BatchPolicy], kwargs: Mapping[str, Any]) -> BatchPolicy:
        return original(cls, {**overrides, **kwargs})

    monkeypatch.setattr(BatchPolicy, "from_kwargs", classmethod(from_kwargs))


# -- Keras -------------------------------------------------------------------------------------

_determinism_on = False


def keras_module() -> Any:
    import keras

    try:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    except ImportError:  # Keras 3 on another backend
        pass
    return keras


def deterministic(seed: int = 0) -> None:
    """Same seed, deterministic ops: two fits of the same model give the same history."""
    global _determinism_on
    keras = keras_module()
    keras.utils.set_random_seed(seed)
    if not _determinism_on:
        try:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        except (ImportError, AttributeError):
            pass
        _determinism_on = True


def make_data(rows: int, features: int = 20, classes: int = 2, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype("float32")
    weights = rng.normal(size=(features,))
    y = ((x @ weights) > 0).astype("int64") if classes == 2 else rng.integers(0, classes, rows)
    return x, y


def build_mlp(
    *,
    features: int = 20,
    hidden: int = 32,
    classes: int = 2,
    seed: int | None = 0,
    eager: bool = False,
    optimizer: Any = None,
) -> Any:
    """The issue's MLP (20 -> 32 -> 2, softmax), compiled with Adam and accuracy."""
    keras = keras_module()
    if seed is not None:
        deterministic(seed)
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=eager,
    )
    return model


def batch_recorder() -> Any:
    """A user callback that keeps the logs of every training batch (floats), and when
    training began, each epoch ended and training ended (``time.perf_counter()``).

    autolog's callback runs after it, so what autolog does at the start of training falls
    in the first epoch, what it does at an epoch's end in the next, and the rest of ``fit``
    after the last epoch is the end of the run."""
    keras = keras_module()

    class BatchRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[dict[str, float]] = []
            self.training_began = 0.0
            self.epochs_ended: list[float] = []
            self.training_ended = 0.0

        def on_train_begin(self, logs: Any = None) -> None:
            self.training_began = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batches.append({k: float(v) for k, v in (logs or {}).items()})

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs_ended.append(time.perf_counter())

        def on_train_end(self, logs: Any = None) -> None:
            self.training_ended = time.perf_counter()

    return BatchRecorder()


def plain_history(history: Any) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def assert_complete_run(
    run: RunContents,
    history: dict[str, list[float]],
    batches: list[dict[str, float]],
    *,
    epochs: int,
    batch_size: int,
) -> int:
    """The run holds exactly what the fit produced; returns the number of values checked."""
    assert run.status == "FINISHED"
    checked = 0
    for key, values in history.items():
        assert run.history(key) == list(enumerate(values)), key
        checked += len(values)
    assert run.steps("learning_rate") == list(range(epochs))
    assert run.steps("epoch_duration") == list(range(epochs))
    assert batches, "the user's callback saw no batch"
    for key in batches[0]:
        expected = [(step, logs[key]) for step, logs in enumerate(batches, start=1)]
        assert run.history(f"batch_{key}") == expected, f"batch_{key}"
        checked += len(expected)
    p = run.params
    assert p["epochs"] == str(epochs) and p["batch_size"] == str(batch_size)
    assert p["optimizer_class"] == "Adam" and p["optimizer_learning_rate"] == "0.01"
    assert p["num_layers"] == "2" and p["loss"] == "sparse_categorical_crossentropy"
    assert p["metrics"] == "accuracy"
    assert run.tags["autolog.plugin"] == "keras" and "Total params" in run.tags["model_summary"]
    return checked + len(p)
