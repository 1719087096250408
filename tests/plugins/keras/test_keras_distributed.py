"""Two worker processes on 127.0.0.1 with TF_CONFIG: only the chief writes, one run.

With ``tf.keras`` 2.x the workers train under a real ``MultiWorkerMirroredStrategy``.
Keras 3.15 on TF 2.21 cannot train under that strategy at all, autolog or not (``fit``
fails in ``TensorFlowTrainer._maybe_symbolic_build``: ``strategy.reduce`` on a
``PerReplica`` batch raises ``ValueError``; patched around, ``reduce_per_replica`` fails
next with "Invalid reduction dimension 0"). There each worker trains on its own with the
same TF_CONFIG, which still checks what autolog decides from it: one writer, one run,
the worker count as a param.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

WORKER = textwrap.dedent(
    """
    import json, os, sys
    index, ports, store, strategy_kind = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    })
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    os.environ["AUTOLOG_SPOOL_DIR"] = os.path.join(store, f"spool-{index}")
    import autolog
    autolog.autolog(frameworks=["keras"], log_models=True)
    import numpy as np
    import tensorflow as tf
    import keras

    def build():
        model = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    if strategy_kind == "mwms":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            model = build()
    else:
        model = build()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, 64)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit(data, epochs=2, verbose=0)
    print("WORKER-DONE", index, flush=True)
    """
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_only_the_chief_writes_one_run(keras3: bool, tmp_path: Any) -> None:
    from mlflow import MlflowClient

    store = str(tmp_path)
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    client.search_experiments()  # create the schema once, before two processes race to
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    kind = "independent" if keras3 else "mwms"
    ports = ",".join(str(p) for p in _free_ports(2))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "MLFLOW_RUN_ID")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(index), ports, store, kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=240)
            outputs.append(out)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for index, (worker, out) in enumerate(zip(workers, outputs, strict=True)):
        assert worker.returncode == 0 and f"WORKER-DONE {index}" in out, out[-3000:]

    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["num_workers"] == "2"
    if kind == "mwms":
        assert run.data.params["distribute_strategy"] in (
            "MultiWorkerMirroredStrategy",
            "CollectiveAllReduceStrategy",
        )
        assert run.data.params["num_replicas_in_sync"] == "2"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "model_summary.txt" in artifacts
    # One model, logged by the chief alone, as a LoggedModel of the run.
    (logged,) = client.search_logged_models([run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id
    assert json.loads(json.dumps(run.data.tags))["autolog.plugin"] == "keras"
