"""How much the Estimator plugin slows down ``Estimator.train``.

The workload: a ``tf.estimator.LinearClassifier`` on 10 dense features (6,400 synthetic
rows, batch 32, read by ``tf.data`` without autotuning), trained for 2,000 steps, against a
SQLite MLflow store. The question is
what logging the loss at *every* step costs (``log_every_n_steps=1``, the worst case the
plugin allows); the plugin's default cadence and the default artifacts are measured too.
``hook_only`` passes the plugin's loss hook to ``train`` by hand, logging into a sink that
drops everything: it separates what the plugin costs per step from what a run costs (MLflow
run creation, the background writes, the final flush). ``empty_hook`` passes a hook that
does nothing: with TensorFlow's default thread pools even that slows a step of this size
down (the pools' threads go idle between steps that take a little longer to start), so it
is the floor for any per-step hook.

Each configuration is compared with no autologging *in the same process*: the process
runs ``--pairs`` pairs of 2,000-step trainings, one without autolog (``autolog.disable()``)
and one with the configuration, in ABBA order, each a new estimator (and with autolog a new
run). A pair's ratio is its two trainings' times divided; the result is the median ratio
over every pair of every process. On this 2-core machine two processes running the very
same training differ by up to 15%, which would drown a 5% target; two neighbouring
trainings in one process differ far less. ``none`` pairs no autologging with itself: its
ratio is the measurement's own noise. ``fastest_wall_ratio`` divides the fastest training
with the configuration by the fastest without: a busy machine only ever adds time, so the
least disturbed trainings of each side show the cost with the least noise. Before the pairs, a 10-step ``train`` without and one
with the configuration pay the once-per-process costs (TensorFlow's first graph, MLflow's
lazily imported run context); the second is reported as ``first_train_s``. Processes of
the different configurations are interleaved round-robin.

The timed section is the ``train`` call. With autolog it includes creating the MLflow run,
every logged item reaching the store, the checkpoint snapshot and the run's end: the
patched ``train`` returns only once its run is flushed and ended. Before the clock starts
each process has imported TensorFlow, MLflow and autolog's batching layer, opened the
store (whose schema already exists) and built the estimator.

Usage::

    python benchmarks/estimator_overhead.py [--repeats 3] [--pairs 4] [--configs a,b,...]
                                            [--tf-threads 1]

``--tf-threads 1`` gives every configuration one TensorFlow intra-op and one inter-op
thread, which steadies the timings further. The recorded results say which settings they
used.

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the own-time watch
RESULTS = Path(__file__).parent / "results" / "estimator_overhead.json"

CONFIGS: dict[str, str] = {
    "none": "no autologging",
    "empty_hook": "a SessionRunHook that does nothing, passed by hand",
    "hook_only": "the plugin's loss hook alone, every step, into a null sink",
    "autolog_step": "autolog, loss every step, no artifacts",
    "autolog_step_artifacts": "autolog, loss every step, checkpoint artifact",
    "autolog_default": "autolog defaults (loss every log_step_count_steps=100)",
}
# Per step at most 1.03x; the defaults add the final checkpoint (as with models: 1.10x).
TARGETS = {"autolog_step": 1.03, "autolog_default": 1.10}

ROWS, FEATURES, BATCH, STEPS = 6_400, 10, 32, 2_000
WARMUP_STEPS = 10


# One measurement (in the child process) ---------------------------------------------------


def measure(config: str, store: str, pairs: int = 1) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    os.environ["AUTOLOG_SPOOL_DIR"] = f"{store}/spool"

    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    # MLflow opens (and checks) a store once per URI: keep that out of the first run.
    mlflow.MlflowClient().search_experiments()

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int32)

    def input_fn() -> Any:
        ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
        # Without autotuning: TensorFlow 2.15's autotuning thread now and then misses the
        # iterator's cancellation, and closing the session then waits out its sleep
        # (0.4-2.5 s seen, with and without autolog alike).
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.shuffle(ROWS, seed=0).repeat().batch(BATCH).with_options(options)

    from tests.support import own_time

    timer = own_time.HookTimer()
    if config.startswith("autolog") or config == "hook_only":
        from autolog_tf_estimator import hooks as autolog_hooks

        timer.wrap([autolog_hooks._hook_class()], lambda name: not name.startswith("_"))
    watch = own_time.Watch(timer)

    class Marker(tf.estimator.SessionRunHook):  # type: ignore[misc]
        """The user's hook that tells when training itself begins and ends."""

        def after_create_session(self, session: Any, coord: Any) -> None:
            watch.training_began()

        def end(self, session: Any) -> None:
            watch.training_ended()

    def train(with_config: bool, steps: int) -> dict[str, float]:
        _enable(config if with_config else "none")
        hooks = [Marker()]
        if with_config and config == "empty_hook":
            hooks.append(tf.estimator.SessionRunHook())
        if with_config and config == "hook_only":
            from autolog_tf_estimator.hooks import make_loss_hook

            hooks.append(make_loss_hook(_NullSink(), 1))  # type: ignore[arg-type]
        estimator = tf.estimator.LinearClassifier(
            [tf.feature_column.numeric_column("x", shape=(FEATURES,))],
            model_dir=tempfile.mkdtemp(dir=store, prefix="model-"),
            config=tf.estimator.RunConfig(tf_random_seed=0),
        )
        cpu0 = time.process_time()
        watch.call()
        estimator.train(input_fn, steps=steps, hooks=hooks)
        parts = watch.returned()
        return {**parts, "cpu": time.process_time() - cpu0}

    # Short first trainings pay the once-per-process costs (TensorFlow's graph-building
    # caches, MLflow's lazily imported run context such as GitPython) outside the clock;
    # the configuration's is reported as "first".
    train(False, WARMUP_STEPS)
    first = train(True, WARMUP_STEPS)["wall"]

    samples: list[dict[str, dict[str, float]]] = []
    for index in range(pairs):
        # ABBA order: a machine speeding up or slowing down favours neither side.
        order = (False, True) if index % 2 == 0 else (True, False)
        pair = {str(side): train(side, STEPS) for side in order}
        samples.append({"baseline": pair["False"], "config": pair["True"]})
    return {"config": config, "pairs": samples, "first": first, "runs": _run_count()}


class _NullSink:
    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        return None

    def send_pending(self) -> None:
        return None


def _enable(config: str) -> None:
    import autolog
    import autolog.batching  # imported by the first run anyway: keep it out of the timing

    if not config.startswith("autolog"):
        autolog.disable()
        return

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


def run_child(config: str, store: str, pairs: int, tf_threads: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    if tf_threads is not None:
        env["TF_NUM_INTRAOP_THREADS"] = env["TF_NUM_INTEROP_THREADS"] = str(tf_threads)
    command = [sys.executable, os.path.abspath(__file__), "--child", config, "--store", store]
    proc = subprocess.run(
        [*command, "--pairs", str(pairs)],
        cwd=store,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")


def summarize(samples: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    from tests.support import own_time

    rows = []
    for config, results in samples.items():
        pairs = [pair for result in results for pair in result["pairs"]]
        walls = [pair["config"]["wall"] for pair in pairs]
        cpus = [pair["config"]["cpu"] for pair in pairs]
        baseline_walls = [pair["baseline"]["wall"] for pair in pairs]
        row = {
            "config": config,
            "description": CONFIGS[config],
            "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus),
            "median_baseline_wall_s": statistics.median(baseline_walls),
            "median_first_train_s": statistics.median(r["first"] for r in results),
            "wall_ratio": statistics.median(
                p["config"]["wall"] / p["baseline"]["wall"] for p in pairs
            ),
            "cpu_ratio": statistics.median(
                p["config"]["cpu"] / p["baseline"]["cpu"] for p in pairs
            ),
            # Noise on a shared machine only ever adds time: the fastest trainings of
            # each side are the least disturbed, and their ratio is the cost itself.
            "fastest_wall_ratio": min(walls) / min(baseline_walls),
            "target_ratio": TARGETS.get(config),
            "wall_s": walls,
            "baseline_wall_s": baseline_walls,
            "cpu_s": cpus,
        }
        if config.startswith("autolog") or config == "hook_only":
            row["own_ratio"] = statistics.median(
                own_time.own_ratio(p["config"], p["baseline"]["outside_s"]) for p in pairs
            )
            row["own_s"] = own_time.median_parts(
                (p["config"], p["baseline"]["outside_s"]) for p in pairs
            )
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per configuration")
    parser.add_argument("--pairs", type=int, default=4, help="timed pairs per process")
    parser.add_argument("--tf-threads", type=int, default=None, help="pin TF's thread pools")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = measure(args.child, args.store, args.pairs)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console()
    from benchmarks.installed import compile_sources

    compile_sources()  # before any measured process: autolog as installed (see the module)
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")

    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in wanted}
    with tempfile.TemporaryDirectory(prefix="autolog-estimator-bench-") as root:
        init_store(root)
        for rep in range(args.repeats):
            for config in wanted:
                result = run_child(config, root, args.pairs, args.tf_threads)
                samples[config].append(result)
                console.log(
                    f"rep {rep + 1}/{args.repeats} {config:24s} wall s (baseline/config) "
                    + " ".join(
                        f"{p['baseline']['wall']:.2f}/{p['config']['wall']:.2f}"
                        for p in result["pairs"]
                    )
                )
        runs_logged = samples[wanted[-1]][-1]["runs"]

    rows = summarize(samples)
    table = Table(
        title=f"Estimator.train overhead, {STEPS:,} steps "
        f"({args.repeats} processes x {args.pairs} pairs, median ratio within pairs)"
    )
    columns = (
        "configuration",
        "baseline s",
        "wall s",
        "x baseline",
        "x fastest",
        "cpu x",
        "own x",
        "target",
        "1st train s",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        target = row["target_ratio"]
        ok = target is None or row["wall_ratio"] <= target
        table.add_row(
            row["description"],
            f"{row['median_baseline_wall_s']:.2f}",
            f"{row['median_wall_s']:.2f}",
            f"[{'green' if ok else 'red'}]{row['wall_ratio']:.3f}x[/]",
            f"{row['fastest_wall_ratio']:.3f}x",
            f"{row['cpu_ratio']:.3f}x",
            f"{row['own_ratio']:.3f}x" if "own_ratio" in row else "",
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
        "pairs_per_process": args.pairs,
        "tf_threads": args.tf_threads,
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
