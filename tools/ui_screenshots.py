"""Screenshots of an autologged run in MLflow's own UI, taken with headless Chromium.

Makes a store with one autologged Keras run (``examples/keras_digits.py``: fit with a
validation split, then ``evaluate``; models and datasets on), optionally an Estimator run
(``examples/estimator_digits.py``, with a Python that has TensorFlow 2.15), starts
``mlflow ui`` on 127.0.0.1 against it, and photographs what a user looks at:

- ``ui-run.png``: the run page (params, metrics, the logged model, the datasets);
- ``ui-model.png``: the model's page (its source run, linked metrics, signature);
- ``ui-models-tab.png``: the experiment's Models tab;
- ``ui-datasets.png``: the Datasets view (the experiment's runs with their datasets,
  one dataset opened: name, digest, schema);
- ``ui-estimator-model.png`` (with ``--estimator-python``): the Estimator model's page.

MLflow's UI is a React app: each shot waits until the page shows an expected text. The
UI server and Chromium are stopped by their pid (the server's process group) on the way
out. Run it with a Python that has MLflow and ``websocket-client``, with autolog on its
path:

    python tools/ui_screenshots.py --out docs/images [--estimator-python .nox/tf215/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from site_browser import Browser

ROOT = Path(__file__).resolve().parents[1]


def make_store(work: Path, python: str, script: Path, env: dict[str, str]) -> None:
    """Run ``script`` with autolog into ``work/mlflow.db`` (artifacts under ``work``)."""
    done = subprocess.run(
        [python, str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_ui(work: Path, python: str, env: dict[str, str]) -> Iterator[str]:
    """``mlflow ui`` on a free 127.0.0.1 port against ``work/mlflow.db``; yields its URL.

    Started in a process group of its own, so stopping it by its pid also stops the
    workers it forks.
    """
    port = free_port()
    uri = f"sqlite:///{work}/mlflow.db"
    log = open(work / "mlflow-ui.log", "w", encoding="utf-8")  # noqa: SIM115
    command = [python, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow ui exited: {(work / 'mlflow-ui.log').read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/health", timeout=5) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow ui did not answer /health within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# The UI's own settings, kept in the browser's localStorage: the "Model training" side of
# the UI (its Models tab and runs table; the GenAI side shows agent versions), and the
# assistant panel closed so the page gets the whole window.
UI_SETTINGS = {
    "mlflow.workflowType_v1": '"machine_learning"',
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}


def prepare(browser: Browser, base: str) -> None:
    """Open the UI once and store its settings (`UI_SETTINGS`) for the pages that follow."""
    goto(browser, f"{base}/#/experiments")
    for key, value in UI_SETTINGS.items():
        browser.evaluate(f"localStorage.setItem({key!r}, {value!r})")


def wait_for_text(browser: Browser, texts: list[str], timeout: float = 60) -> None:
    """Poll the page until every one of ``texts`` is in its visible text."""
    deadline = time.monotonic() + timeout
    missing = texts
    while time.monotonic() < deadline:
        body = browser.evaluate("document.body ? document.body.innerText : ''") or ""
        missing = [text for text in texts if text not in body]
        if not missing:
            time.sleep(2.5)  # charts and lazy panels (child runs, ...) finish drawing
            return
        time.sleep(0.5)
    raise TimeoutError(f"the page never showed {missing!r}")


def click_text(browser: Browser, text: str) -> bool:
    """Click the innermost element whose visible text is exactly ``text``."""
    return bool(
        browser.evaluate(
            "(() => { const all = [...document.querySelectorAll('a,button,span,div,td')];"
            f" const hit = all.reverse().find(e => e.innerText && e.innerText.trim() === {text!r});"
            " if (!hit) return false; hit.click(); return true; })()"
        )
    )


def goto(browser: Browser, url: str) -> None:
    """Load ``url`` afresh: a new hash alone would not load the page again."""
    base, _, fragment = url.partition("#")
    goto.count = getattr(goto, "count", 0) + 1  # type: ignore[attr-defined]
    browser.open(f"{base}?shot={goto.count}#{fragment}", settle=1.0)  # type: ignore[attr-defined]


def shoot(
    browser: Browser, url: str, expect: list[str], path: Path, height: int | None = None
) -> None:
    goto(browser, url)
    wait_for_text(browser, expect)
    browser.screenshot(path, height)
    print(f"{path}: {url}")


def ids(work: Path, name: str | None = None) -> dict[str, Any]:
    """The experiment, the newest run (of ``name``'s plugin, if given) and its model."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work}/mlflow.db")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`autolog.plugin` = '{name}'" if name else "",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise RuntimeError(f"no autologged {name or ''} run in the store")
    run = runs[0]
    models = run.outputs.model_outputs if run.outputs else []
    if not models:
        raise RuntimeError(f"run {run.info.run_id} has no logged model")
    model = client.get_logged_model(models[-1].model_id)
    datasets = [d.dataset for d in (run.inputs.dataset_inputs if run.inputs else [])]
    return {
        "experiment": run.info.experiment_id,
        "run": run.info.run_id,
        "run_name": run.info.run_name,
        "model": model.model_id,
        "model_name": model.name,
        "datasets": datasets,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--python", default=sys.executable, help="runs the Keras example")
    parser.add_argument("--estimator-python", help="a Python with TensorFlow 2.15 and Estimator")
    parser.add_argument("--keep", action="store_true", help="keep the store, print where")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="autolog-ui-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db",
        AUTOLOG_SPOOL_DIR=str(work / "spool"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    make_store(work, args.python, ROOT / "examples" / "keras_digits.py", env)
    if args.estimator_python:
        make_store(work, args.estimator_python, ROOT / "examples" / "estimator_digits.py", env)
    keras_run = ids(work, "keras")
    estimator_run = ids(work, "tf_estimator") if args.estimator_python else None
    out: Path = args.out
    with (
        mlflow_ui(work, args.python, env) as base,
        Browser(width=args.width, height=args.height) as browser,
    ):
        prepare(browser, base)
        exp, run, model = keras_run["experiment"], keras_run["run"], keras_run["model"]
        shoot(
            browser,
            f"{base}/#/experiments/{exp}/runs/{run}",
            [keras_run["run_name"], "val_loss", "Datasets", keras_run["model_name"]],
            out / "ui-run.png",
        )
        shoot(
            browser,
            f"{base}/#/experiments/{exp}/models/{model}",
            [model, "eval_accuracy", keras_run["run_name"]],
            out / "ui-model.png",
        )
        shoot(
            browser,
            f"{base}/#/experiments/{exp}/models",
            [keras_run["model_name"], keras_run["run_name"]],
            out / "ui-models-tab.png",
        )
        shoot_dataset(
            browser, f"{base}/#/experiments/{exp}/runs", keras_run, out / "ui-datasets.png"
        )
        if estimator_run is not None:
            shoot(
                browser,
                f"{base}/#/experiments/{estimator_run['experiment']}/models/{estimator_run['model']}",
                [estimator_run["model"], "eval_accuracy"],
                out / "ui-estimator-model.png",
            )
    if args.keep:
        print(f"store kept in {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


def shoot_dataset(browser: Browser, url: str, run: dict[str, Any], path: Path) -> None:
    """The experiment's runs with their datasets, the training dataset opened (its drawer)."""
    train = run["datasets"][0]
    label = f"{train.name} ({train.digest})"
    goto(browser, url)
    wait_for_text(browser, [run["run_name"], label])
    if not click_text(browser, label):
        raise RuntimeError(f"no dataset {label!r} to click in the runs table")
    wait_for_text(browser, ["Data details for"])
    browser.screenshot(path)
    print(f"{path}: {url}, {label} opened")


if __name__ == "__main__":
    sys.exit(main())
