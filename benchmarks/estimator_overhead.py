"""How much the Estimator plugin slows down ``Estimator.train``.

The workload: a ``tf.estimator.LinearClassifier`` on 10 dense features (6,400 synthetic
rows, batch 32), trained for 2,000 steps, against a SQLite MLflow store. The question is
what logging the loss at *every* step costs (``log_every_n_steps=1``, the worst case the
plugin allows); the plugin's default cadence and the default artifacts are measured too.
``hook_only`` passes the plugin's loss hook to ``train`` by hand, logging into a sink that
drops everything: it separates what the plugin costs per step from what a run costs (MLflow
run creation, the background writes, the final flush).

Each measurement runs in a fresh Python process. There, a 10-step ``train`` first pays the
once-per-process costs (TensorFlow's first graph, MLflow's lazily imported run context);
it is timed too and reported as ``first_train_s``, and the 2,000-step ``train`` that
follows is what the ratios compare. Configurations are interleaved
round-robin, so a noisy machine slows all of them alike, and the medians over the
repetitions are compared with the no-autologging baseline measured by this same script.

The timed section is the ``train`` call. With autolog it includes creating the MLflow run,
every logged item reaching the store, the checkpoint snapshot and the run's end: the
patched ``train`` returns only once its run is flushed and ended. Before the clock starts
each process has imported TensorFlow, MLflow and autolog's batching layer, opened the
store (whose schema already exists) and built the estimator.

Usage::

    python benchmarks/estimator_overhead.py [--repeats 5] [--configs a,b,...]

Prints a table and writes ``benchmarks/results/estimator_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "estimator_overhead.json"

CONFIGS: dict[str, str] = {
    "none": "no autologging",
    "hook_only": "the plugin's loss hook alone, every step, into a null sink",
    "autolog_step": "autolog, loss every step, no artifacts",
    "autolog_step_artifacts": "autolog, loss every step, checkpoint artifact",
    "autolog_default": "autolog defaults (loss every log_step_count_steps=100)",
}
TARGETS = {"autolog_step": 1.05}

ROWS, FEATURES, BATCH, STEPS = 6_400, 10, 32, 2_000
WARMUP_STEPS = 10


# One measurement (in the child process) ---------------------------------------------------


def measure(config: str, store: str) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    os.environ["AUTOLOG_SPOOL_DIR"] = f"{store}/spool"

    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    # MLflow opens (and checks) a store once per URI: keep that out of the first run.
    mlflow.MlflowClient().search_experiments()
    _enable(config)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int32)

    def input_fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
        return ds.shuffle(ROWS, seed=0).repeat().batch(BATCH)

    def make_estimator() -> Any:
        return tf.estimator.LinearClassifier(
            [tf.feature_column.numeric_column("x", shape=(FEATURES,))],
            model_dir=tempfile.mkdtemp(dir=store, prefix="model-"),
            config=tf.estimator.RunConfig(tf_random_seed=0),
        )

    def make_hooks() -> list[Any]:
        if config != "hook_only":
            return []
        from autolog_tf_estimator.hooks import make_loss_hook

        return [make_loss_hook(_NullSink(), 1)]  # type: ignore[arg-type]

    # A short first training pays the once-per-process costs (TensorFlow's graph-building
    # caches, MLflow's lazily imported run context such as GitPython) outside the clock;
    # it is timed separately and reported as "first_train".
    wall0 = time.perf_counter()
    make_estimator().train(input_fn, steps=WARMUP_STEPS, hooks=make_hooks())
    first = time.perf_counter() - wall0

    estimator, hooks = make_estimator(), make_hooks()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    estimator.train(input_fn, steps=STEPS, hooks=hooks)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"config": config, "wall": wall, "cpu": cpu, "first": first, "runs": _run_count()}


class _NullSink:
    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        return None


def _enable(config: str) -> None:
    if not config.startswith("autolog"):
        return
    import autolog
    import autolog.batching  # imported by the first run anyway: keep it out of the timing

    options: dict[str, Any] = {}
    if config in ("autolog_step", "autolog_step_artifacts"):
        options["log_every_n_steps"] = 1
    autolog.autolog(
        frameworks=["tf_estimator"],
        log_models=config != "autolog_step",
        tf_estimator=options,
    )


def _run_count() -> int:
    import mlflow

    return len(mlflow.MlflowClient().search_runs(["0"]))


# The driver -------------------------------------------------------------------------------


def init_store(store: str) -> None:
    import mlflow

    # MLflow roots a new SQLite store's artifacts at ./mlruns of the working directory.
    here = os.getcwd()
    os.chdir(store)
    try:
        mlflow.MlflowClient(f"sqlite:///{store}/mlflow.db").search_experiments()
    finally:
        os.chdir(here)


def run_child(config: str, store: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", config, "--store", store],
        cwd=store,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")


def summarize(samples: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    base_wall = statistics.median(r["wall"] for r in samples["none"])
    base_cpu = statistics.median(r["cpu"] for r in samples["none"])
    rows = []
    for config, results in samples.items():
        walls = [r["wall"] for r in results]
        cpus = [r["cpu"] for r in results]
        rows.append(
            {
                "config": config,
                "description": CONFIGS[config],
                "median_wall_s": statistics.median(walls),
                "median_cpu_s": statistics.median(cpus),
                "median_first_train_s": statistics.median(r["first"] for r in results),
                "wall_ratio": statistics.median(walls) / base_wall,
                "cpu_ratio": statistics.median(cpus) / base_cpu,
                "target_ratio": TARGETS.get(config),
                "wall_s": walls,
                "cpu_s": cpus,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.store)), flush=True)
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console()
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    if "none" not in wanted:
        wanted.insert(0, "none")

    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in wanted}
    with tempfile.TemporaryDirectory(prefix="autolog-estimator-bench-") as root:
        init_store(root)
        for rep in range(args.repeats):
            for config in wanted:
                result = run_child(config, root)
                samples[config].append(result)
                console.log(
                    f"rep {rep + 1}/{args.repeats} {config:24s} "
                    f"wall {result['wall']:.2f}s cpu {result['cpu']:.2f}s"
                )
        runs_logged = samples[wanted[-1]][-1]["runs"]

    rows = summarize(samples)
    table = Table(
        title=f"Estimator.train overhead, {STEPS:,} steps "
        f"(median of {args.repeats}, fresh process each)"
    )
    columns = ("configuration", "wall s", "x baseline", "cpu s", "cpu x", "target", "1st train s")
    for column in columns:
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        target = row["target_ratio"]
        ok = target is None or row["wall_ratio"] <= target
        table.add_row(
            row["description"],
            f"{row['median_wall_s']:.2f}",
            f"[{'green' if ok else 'red'}]{row['wall_ratio']:.3f}x[/]",
            f"{row['median_cpu_s']:.2f}",
            f"{row['cpu_ratio']:.3f}x",
            "" if target is None else f"<= {target:.2f}x",
            f"{row['median_first_train_s']:.2f}",
        )
    console.print(table)

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "workload": {
            "estimator": "LinearClassifier",
            "rows": ROWS,
            "features": FEATURES,
            "batch_size": BATCH,
            "steps": STEPS,
            "warmup_steps": WARMUP_STEPS,
            "store": "sqlite",
        },
        "repeats": args.repeats,
        "runs_in_store_at_end": runs_logged,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "results": rows,
    }
    output.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {output}")
    return 0


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in ("tensorflow-cpu", "tensorflow", "tensorflow-estimator", "mlflow", "autolog-core"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


if __name__ == "__main__":
    sys.exit(main())
