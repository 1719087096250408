"""100,000 values through `BatchLogger` until they are durable in SQLite, and the run log's cost.

Each round logs 100,000 metric values (100 keys x 1,000 steps) into a fresh SQLite store,
then calls ``flush()``, and records:

- the caller's time per value (the logging calls alone);
- the time until ``flush()`` returns: every value in the store;
- how long after a value was logged it was in the run log (the file that survives the
  process), sampled by a reader thread that polls the log: for probes inside the burst,
  and for 200 values logged one every 5 ms after it (a training's pace, where the
  ``log_interval`` of 10 ms is what bounds it).

With ``--baseline PATH`` (a checkout of an earlier autolog, e.g. ``git worktree add
/tmp/before 34ee8d3``) each round runs that checkout and this one in two fresh
interpreters, alternating which goes first, so the two are compared on the same machine
at the same time. Results: a table, and ``benchmarks/results/durable_throughput.json``.

    python benchmarks/durable_throughput.py [--rounds 5] [--baseline /tmp/before]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "durable_throughput.json"

ROUND = r"""
import json, os, sys, threading, time
from pathlib import Path
from mlflow import MlflowClient

store = Path(sys.argv[1])
keys, steps = int(sys.argv[2]), int(sys.argv[3])
PACED = 200
MlflowClient(f"sqlite:///{store}").search_experiments()  # the schema, outside the timing
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
from autolog.batching import BatchLogger

spool = Path(os.environ["AUTOLOG_SPOOL_DIR"])
logger = BatchLogger.start_run(run_name="throughput")
run_id = logger.wait_for_run(60)
names = [f"metric_{k}" for k in range(keys)]
probe_at = {}
seen = {}
paced_at = {}
paced_seen = {}
stop = threading.Event()


def watch():
    # How long after it was logged a probe value is in the run log on disk (reading only
    # what was appended since the last look, so the watching costs the process little).
    offsets = {}
    while not stop.is_set():
        for path in spool.glob("*.jsonl"):
            with open(path, "rb") as handle:
                handle.seek(offsets.get(path, 0))
                text = handle.read().decode(errors="replace")
                offsets[path] = handle.tell()
            now = time.perf_counter()
            for step, began in list(probe_at.items()):
                if step not in seen and f'"probe",{step}.0,' in text:
                    seen[step] = now - began
            for step, began in list(paced_at.items()):
                if step not in paced_seen and f'"paced",{step}.0,' in text:
                    paced_seen[step] = now - began
        time.sleep(0.002)


watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
caller = 0.0
began = time.perf_counter()
for step in range(steps):
    t0 = time.perf_counter()
    for name in names:
        logger.log_metric(name, float(step), step=step)
    if step % 100 == 0:
        probe_at[step] = time.perf_counter()
        logger.log_metric("probe", float(step), step=step)
    caller += time.perf_counter() - t0
logger.flush()
durable = time.perf_counter() - began
# At a training's pace (a value every 5 ms) rather than in a burst: how long until each is
# in the run log, which is what a kill at that moment would keep.
for step in range(PACED):
    paced_at[step] = time.perf_counter()
    logger.log_metric("paced", float(step), step=step)
    time.sleep(0.005)
time.sleep(0.3)
stop.set()
watcher.join()
count = sum(len(MlflowClient(f"sqlite:///{store}").get_metric_history(run_id, n)) for n in names[:3])
logger.end_run()
print("RESULT " + json.dumps({
    "caller_us_per_value": caller / (keys * steps) * 1e6,
    "durable_s": durable,
    "durable_us_per_value": durable / (keys * steps) * 1e6,
    "in_log_after_ms": sorted(v * 1000 for v in seen.values()),
    "paced_in_log_after_ms": sorted(v * 1000 for v in paced_seen.values()),
    "paced_logged": PACED,
    "checked": count,
}))
"""


def _one(source: Path, keys: int, steps: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(source / "core"), os.environ.get("PYTHONPATH", "")]),
            "AUTOLOG_SPOOL_DIR": str(Path(tmp) / "spool"),
            "AUTOLOG_AGENT": "0",
        }
        out = subprocess.run(
            [sys.executable, "-c", ROUND, str(Path(tmp) / "mlflow.db"), str(keys), str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, object] = json.loads(line[len("RESULT ") :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier autolog")
    args = parser.parse_args()
    sources = {"current": ROOT}
    if args.baseline:
        sources["baseline"] = args.baseline.resolve()
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in sources}
    for index in range(args.rounds):
        order = list(sources) if index % 2 == 0 else list(reversed(sources))
        for name in order:
            rows[name].append(_one(sources[name], args.keys, args.steps))
            print(
                f"round {index + 1} {name}: {rows[name][-1]['durable_us_per_value']:.2f} µs/value"
            )
    summary: dict[str, dict[str, float]] = {}
    for name, results in rows.items():
        latencies = [x for r in results for x in r["in_log_after_ms"]]  # type: ignore[attr-defined]
        summary[name] = {
            "durable_us_per_value_median": statistics.median(
                float(r["durable_us_per_value"])
                for r in results  # type: ignore[arg-type]
            ),
            "caller_us_per_value_median": statistics.median(
                float(r["caller_us_per_value"])
                for r in results  # type: ignore[arg-type]
            ),
            "in_log_after_ms_median": statistics.median(latencies) if latencies else float("nan"),
            "in_log_after_ms_max": max(latencies) if latencies else float("nan"),
        }
        paced = sorted(x for r in results for x in r.get("paced_in_log_after_ms", []))  # type: ignore[attr-defined]
        if paced:  # an earlier checkout's round script has no paced phase
            summary[name]["paced_in_log_after_ms_median"] = statistics.median(paced)
            summary[name]["paced_in_log_after_ms_p99"] = paced[int(0.99 * (len(paced) - 1))]
            summary[name]["paced_in_log_after_ms_max"] = paced[-1]
            summary[name]["paced_values_found_in_log"] = len(paced)
    print(
        f"\n{'code':10} {'durable µs/value':>17} {'caller µs/value':>16} {'in log (median/max ms)':>24}"
    )
    for name, figures in summary.items():
        print(
            f"{name:10} {figures['durable_us_per_value_median']:17.2f} "
            f"{figures['caller_us_per_value_median']:16.3f} "
            f"{figures['in_log_after_ms_median']:11.1f} / {figures['in_log_after_ms_max']:.1f}"
        )
    for name, figures in summary.items():
        if "paced_in_log_after_ms_median" in figures:
            print(
                f"{name}: at a value every 5 ms, in the run log after "
                f"{figures['paced_in_log_after_ms_median']:.1f} ms (median), "
                f"{figures['paced_in_log_after_ms_p99']:.1f} ms (p99), "
                f"{figures['paced_in_log_after_ms_max']:.1f} ms (max)"
            )
    if "baseline" in summary:
        ratio = (
            summary["current"]["durable_us_per_value_median"]
            / summary["baseline"]["durable_us_per_value_median"]
        )
        print(f"\ncurrent / baseline, durable: {ratio:.3f}x")
        summary["ratio"] = {"durable_current_over_baseline": ratio}
    RESULTS.write_text(
        json.dumps(
            {
                "title": "BatchLogger: 100,000 values durable in SQLite, and the run log",
                "description": (
                    "benchmarks/durable_throughput.py. Per round, a fresh interpreter logs "
                    "100,000 metric values (100 keys x 1,000 steps) through BatchLogger into "
                    "a fresh SQLite store and calls flush(): durable_us_per_value is the "
                    "time until flush() returned over the values, caller_us_per_value the "
                    "logging calls alone, in_log_after_ms how long after a probe value was "
                    "logged it was in the run log on disk (a burst this size is bound by "
                    "how fast the flusher checks values, not by log_interval); paced_* the same for 200 "
                    "values logged one every 5 ms after the burst, a training's pace. With "
                    "--baseline, an earlier checkout runs in the same rounds, alternating."
                ),
                "python": platform.python_version(),
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                "values": args.keys * args.steps,
                "rounds": args.rounds,
                "baseline": str(args.baseline) if args.baseline else None,
                "summary": summary,
                "runs": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
