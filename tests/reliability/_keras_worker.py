"""One autologged Keras fit in a process of its own (for the multi-process test).

    python tests/reliability/_keras_worker.py <seed> <rows> <epochs>

Logs where ``MLFLOW_TRACKING_URI``/``MLFLOW_EXPERIMENT_NAME`` say, per step, and prints one
JSON line: the run id, the History, and the logs of every training batch as the user saw them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    seed, rows, epochs = (int(a) for a in sys.argv[1:4])
    import autolog
    from autolog import session
    from tests.reliability import _support

    autolog.autolog(frameworks=["keras"], log_every_n_steps=1, log_models=False)
    x, y = _support.make_data(rows, seed=seed)
    model = _support.build_mlp(seed=seed)
    recorder = _support.batch_recorder()
    history = model.fit(
        x, y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0, callbacks=[recorder]
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "run_id": session.run_for_instance(model),
                "history": _support.plain_history(history),
                "batches": recorder.batches,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
