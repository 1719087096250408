"""How fast can 100,000 metric values (100 keys x 1,000 steps) reach MLflow?

Measured against two kinds of store: an embedded SQLite file, and a local ``mlflow server``
(SQLite behind it) on 127.0.0.1. Every method gets a fresh store of that kind, so none pays
for the rows another wrote. For each kind, in one process:

- ``mlflow.log_metric`` per value: timed on a sample (default 2,000 values) and scaled,
  since its cost is linear in the number of values;
- ``mlflow.log_metrics`` once per step (100 values per call);
- MLflow's async logging (``log_metric(..., synchronous=False)`` per value, then waiting
  for it): timed on the same sample and scaled;
- raw ``MlflowClient.log_batch`` in sequential 1,000-metric chunks, timestamps taken per
  step as a caller would: the floor for anything that goes through MLflow's client;
- :class:`autolog.BatchLogger`: time spent on the caller's thread, and time until
  ``flush()`` returns (every value durable).

The floor and BatchLogger are measured ``--repeats`` times in pairs, on a fresh store per
pair, alternating which goes first; each keeps its best time (the machine may be shared).

Ratios are computed against the baselines measured in the same run. Results are printed as
a table and written to ``benchmarks/results/log_throughput.json``.

    python benchmarks/log_throughput.py [--steps 1000] [--keys 100] [--sample 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support.mlflow_server


def _values(keys: int, steps: int) -> list[tuple[int, dict[str, float]]]:
    return [(s, {f"metric_{k:03d}": s * 0.001 + k for k in range(keys)}) for s in range(steps)]


def _sample(data: list[tuple[int, dict[str, float]]], n: int) -> list[tuple[str, float, int]]:
    out = []
    for step, metrics in data:
        for key, value in metrics.items():
            out.append((key, value, step))
            if len(out) >= n:
                return out
    return out


def _count(client: Any, run_id: str, keys: int) -> int:  # every value landed, once
    return sum(len(client.get_metric_history(run_id, f"metric_{k:03d}")) for k in range(keys))


class Stores:
    """A fresh store per measured method, so no method pays for rows another one wrote.

    SQLite: a copy of an empty, migrated database file. Server: a new ``mlflow server``
    on such a copy (a shared one would grow, and later methods would insert into bigger
    indexes).
    """

    def __init__(self, kind: str, work: Path, workers: int) -> None:
        from mlflow import MlflowClient

        self.kind = kind
        self.work = work
        self.workers = workers
        self.template = work / "template.db"
        if not self.template.exists():
            MlflowClient(f"sqlite:///{self.template}").search_experiments()
        self.count = 0

    @contextlib.contextmanager
    def fresh(self) -> Iterator[str]:
        self.count += 1
        db = self.work / f"{self.kind}-{self.count}.db"
        shutil.copy(self.template, db)
        if self.kind == "sqlite":
            yield f"sqlite:///{db}"
            return
        from tests.support.mlflow_server import MlflowServer

        with MlflowServer(
            f"sqlite:///{db}", self.work / f"artifacts-{self.count}", workers=self.workers
        ) as server:
            yield server.url


def _warm_up(client: Any) -> None:
    """First requests pay for imports and schema checks (in each server worker)."""
    from mlflow.entities import Metric

    warm = str(client.create_run("0", run_name="warmup").info.run_id)
    for i in range(12):
        client.log_batch(warm, metrics=[Metric("warm", float(i), 1, i)])


def run_target(name: str, stores: Stores, args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from autolog.batching import BatchLogger

    total = args.keys * args.steps
    data = _values(args.keys, args.steps)
    sample = _sample(data, args.sample)
    scale = total / len(sample)
    results: dict[str, Any] = {"target": name, "values": total, "sample": len(sample)}

    @contextlib.contextmanager
    def fresh_run(label: str) -> Iterator[tuple[Any, str]]:
        with stores.fresh() as uri:
            mlflow.set_tracking_uri(uri)
            client = MlflowClient(uri)
            _warm_up(client)
            yield client, str(client.create_run("0", run_name=f"{name}-{label}").info.run_id)

    def timed(label: str, fn: Callable[[], None]) -> float:
        print(f"  [{name}] {label} ...", flush=True)
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        print(f"  [{name}] {label}: {elapsed:.2f}s", flush=True)
        return elapsed

    with fresh_run("log_metric") as (client, run_id), mlflow.start_run(run_id=run_id):

        def per_call() -> None:
            for key, value, step in sample:
                mlflow.log_metric(key, value, step=step)

        results["log_metric_per_value_s"] = timed("log_metric sample", per_call) * scale

    with fresh_run("log_metrics") as (client, run_id), mlflow.start_run(run_id=run_id):

        def per_step() -> None:
            for step, metrics in data:
                mlflow.log_metrics(metrics, step=step)

        results["log_metrics_per_step_s"] = timed("log_metrics per step", per_step)

    with fresh_run("async") as (client, run_id), mlflow.start_run(run_id=run_id):

        def async_calls() -> None:
            for key, value, step in sample:
                mlflow.log_metric(key, value, step=step, synchronous=False)
            mlflow.flush_async_logging()

        results["mlflow_async_s"] = timed("MLflow async sample", async_calls) * scale

    def raw_batches(client: Any, run_id: str) -> None:
        # Timestamps taken per step, as a hand-written batching loop would.
        rows = []
        for step, metrics in data:
            now = int(time.time() * 1000)
            rows += [Metric(key, value, now, step) for key, value in metrics.items()]
        for i in range(0, len(rows), 1000):
            client.log_batch(run_id, metrics=rows[i : i + 1000])

    def batch_logger(client: Any, run_id: str) -> tuple[float, float]:
        logger = BatchLogger(run_id)
        caller = 0.0
        start = time.perf_counter()
        for step, metrics in data:
            t0 = time.perf_counter()
            logger.log_metrics(metrics, step=step)
            caller += time.perf_counter() - t0
        logger.flush()
        durable = time.perf_counter() - start
        logger.close()
        return caller, durable

    # The floor and BatchLogger are what the comparison is about: measure them in pairs on a
    # fresh store, alternating which goes first, and keep each one's best time, so that
    # load from elsewhere on the machine and the store's growth favour neither.
    floors: list[float] = []
    durables: list[float] = []
    callers: list[float] = []
    for repeat in range(args.repeats):
        with stores.fresh() as uri:
            mlflow.set_tracking_uri(uri)
            client = MlflowClient(uri)
            _warm_up(client)
            # BatchLogger writes through its own shared client for the URI: open and warm
            # it like the floor's (a training process opens it once, at its first run).
            warm = BatchLogger(str(client.create_run("0", run_name="warmup-bl").info.run_id))
            for i in range(12):
                warm.log_metric("warm", float(i), step=i)
                warm.flush()
            warm.close()
            order = ["floor", "batchlogger"] if repeat % 2 == 0 else ["batchlogger", "floor"]
            for method in order:
                run_id = str(client.create_run("0", run_name=f"{name}-{method}").info.run_id)
                if method == "floor":
                    floors.append(
                        timed(
                            "raw chunked log_batch",
                            lambda c=client, r=run_id: raw_batches(c, r),  # type: ignore[misc]
                        )
                    )
                else:
                    caller, durable = batch_logger(client, run_id)
                    print(f"  [{name}] BatchLogger: caller {caller:.3f}s, durable {durable:.2f}s")
                    callers.append(caller)
                    durables.append(durable)
                assert _count(client, run_id, args.keys) == total

            if repeat == 0:
                # log_metric per value (the plugin hot path), on the caller's thread alone.
                logger = BatchLogger(str(client.create_run("0").info.run_id))
                start = time.perf_counter()
                for step, metrics in data:
                    for key, value in metrics.items():
                        logger.log_metric(key, value, step=step)
                per_value = time.perf_counter() - start
                logger.close()
                results["batchlogger_log_metric_caller_us_per_value"] = per_value / total * 1e6

    results["log_batch_floor_s"] = min(floors)
    results["log_batch_floor_all_s"] = floors
    results["batchlogger_durable_s"] = durable = min(durables)
    results["batchlogger_durable_all_s"] = durables
    results["batchlogger_caller_s"] = min(callers)
    results["batchlogger_caller_us_per_value"] = min(callers) / total * 1e6

    floor = results["log_batch_floor_s"]
    results["speedup_vs_log_metric"] = results["log_metric_per_value_s"] / durable
    results["floor_speedup_vs_log_metric"] = results["log_metric_per_value_s"] / floor
    results["durable_vs_floor"] = durable / floor
    return results


def _table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="100 keys x 1000 steps = 100,000 metric values")
    table.add_column("method")
    for result in results:
        table.add_column(result["target"], justify="right")
    rows = [
        ("mlflow.log_metric per value (scaled)", "log_metric_per_value_s", "s"),
        ("mlflow.log_metrics per step", "log_metrics_per_step_s", "s"),
        ("MLflow async logging (scaled)", "mlflow_async_s", "s"),
        ("raw chunked MlflowClient.log_batch (floor)", "log_batch_floor_s", "s"),
        ("BatchLogger: until durable", "batchlogger_durable_s", "s"),
        ("BatchLogger: caller thread (log_metrics)", "batchlogger_caller_us_per_value", "us/value"),
        (
            "BatchLogger: caller thread (log_metric)",
            "batchlogger_log_metric_caller_us_per_value",
            "us/value",
        ),
        ("BatchLogger durable / floor", "durable_vs_floor", "x"),
        ("speedup vs log_metric per value", "speedup_vs_log_metric", "x"),
        ("floor speedup vs log_metric per value", "floor_speedup_vs_log_metric", "x"),
    ]
    for label, key, unit in rows:
        cells = []
        for result in results:
            value = result.get(key)
            cells.append("-" if value is None else f"{value:,.2f} {unit}")
        table.add_row(label, *cells)
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4, help="mlflow server workers")
    parser.add_argument(
        "--repeats", type=int, default=3, help="floor/BatchLogger pairs (best time is kept)"
    )
    parser.add_argument("--targets", default="sqlite,server")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "log_throughput.json")
    )
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

    results = []
    with tempfile.TemporaryDirectory(prefix="autolog-bench-") as tmp:
        work = Path(tmp)
        os.environ["AUTOLOG_SPOOL_DIR"] = str(work / "spool")
        for target in args.targets.split(","):
            print(f"== {target}", flush=True)
            results.append(run_target(target, Stores(target, work, args.workers), args))
    _table(results)
    import mlflow

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "mlflow": mlflow.__version__,
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
