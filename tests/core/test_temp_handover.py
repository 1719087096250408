"""Handing temporary files over through the sink: `RunSink.log_temp_artifacts` and the
``temp_dir`` of `RunSink.log_model`, on a real SQLite store and on the in-memory sink.

What a plugin author relies on: the file arrives in the run, and the folder it was written
in is gone afterwards, without the plugin keeping any record of it.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autolog.mlflow_backend import MlflowBackend
from autolog.plugin import RunSink, handed_over_folder
from autolog.testing import capture


@pytest.fixture
def sqlite_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of a fresh SQLite store (MLflow's tracking URI meanwhile), artifacts in
    ``tmp_path/artifacts``."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)  # a SQLite store puts artifacts in ./mlruns
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)


def _temp_file(name: str, text: str) -> str:
    folder = tempfile.mkdtemp(prefix="autolog-test-handover-")
    path = os.path.join(folder, name)
    Path(path).write_text(text)
    return path


def _temp_tree() -> str:
    folder = tempfile.mkdtemp(prefix="autolog-test-handover-")
    tree = os.path.join(folder, "report")
    os.makedirs(os.path.join(tree, "plots"))
    Path(tree, "summary.txt").write_text("summary")
    Path(tree, "plots", "loss.csv").write_text("0,1.0\n")
    return tree


def _artifact_text(client: Any, run_id: str, path: str, into: Path) -> str:
    local = client.download_artifacts(run_id, path, str(into))
    return Path(local).read_text()


def test_a_handed_over_file_and_directory_arrive_and_their_folders_are_gone(
    sqlite_client: Any, tmp_path: Path
) -> None:
    sink = MlflowBackend().open(None, {})
    assert isinstance(sink, RunSink)
    file = _temp_file("best.keras", "weights")
    tree = _temp_tree()
    sink.log_temp_artifacts(file, "checkpoints")
    sink.log_temp_artifacts(tree, "report")
    sink.end_run()

    run_id = sink.run_id
    assert run_id is not None
    down = tmp_path / "down"
    assert _artifact_text(sqlite_client, run_id, "checkpoints/best.keras", down) == "weights"
    assert _artifact_text(sqlite_client, run_id, "report/summary.txt", down) == "summary"
    assert _artifact_text(sqlite_client, run_id, "report/plots/loss.csv", down) == "0,1.0\n"
    assert not os.path.exists(os.path.dirname(file))
    assert not os.path.exists(os.path.dirname(tree))


def test_a_models_temp_dir_is_deleted_once_the_model_is_packaged(sqlite_client: Any) -> None:
    np = pytest.importorskip("numpy")
    linear_model = pytest.importorskip("sklearn.linear_model")
    x = np.arange(20, dtype="float64").reshape(10, 2)
    model = linear_model.LinearRegression().fit(x, x.sum(axis=1))
    snapshot = _temp_file("model.pkl", "")
    Path(snapshot).write_bytes(pickle.dumps(model))

    sink = MlflowBackend().open(None, {})
    sink.log_model(
        "sklearn",
        loader=lambda: pickle.loads(Path(snapshot).read_bytes()),
        serialization_format="cloudpickle",
        temp_dir=os.path.dirname(snapshot),
    )
    sink.end_run()

    assert not os.path.exists(os.path.dirname(snapshot))
    (logged,) = sqlite_client.search_logged_models(experiment_ids=["0"])
    assert logged.source_run_id == sink.run_id
    import mlflow.sklearn

    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))


def test_a_failed_packaging_still_deletes_the_temp_dir(sqlite_client: Any) -> None:
    snapshot = _temp_file("model.pkl", "not a pickle")

    def broken_loader() -> Any:
        raise RuntimeError("the snapshot is unreadable")

    sink = MlflowBackend().open(None, {})
    with pytest.warns(Warning, match="packaging the MLflow sklearn model failed"):
        sink.log_model("sklearn", loader=broken_loader, temp_dir=os.path.dirname(snapshot))
        sink.end_run()
    assert not os.path.exists(os.path.dirname(snapshot))


@pytest.mark.parametrize("where", ["tempdir", "cwd"])
def test_a_folder_that_is_not_the_plugins_own_is_refused_naming_the_path(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    if where == "tempdir":
        monkeypatch.setattr(tempfile, "tempdir", str(shared))
    else:
        monkeypatch.chdir(shared)
    loose = shared / "model.keras"
    loose.write_text("x")
    with pytest.raises(ValueError, match=r"model\.keras.*not in a temporary folder of its own"):
        handed_over_folder(str(loose))
    with pytest.raises(ValueError, match=r"temp_dir: .*shared"):
        handed_over_folder(str(shared), enclosing=False, site="temp_dir")
    with pytest.raises(ValueError, match="would delete"):
        handed_over_folder(str(shared.parent), enclosing=False, site="temp_dir")  # holds it
    with pytest.raises(ValueError, match="does not exist"):
        handed_over_folder(str(shared / "missing" / "model.keras"))
    assert loose.exists()  # nothing was deleted


def test_the_in_memory_sink_keeps_a_copy_and_deletes_the_folder() -> None:
    with capture() as store:
        sink = store.open(None, {})
        file = _temp_file("best.keras", "weights")
        tree = _temp_tree()
        sink.log_temp_artifacts(file, "checkpoints")
        sink.log_temp_artifacts(tree, "report")
        assert not os.path.exists(os.path.dirname(file))
        assert not os.path.exists(os.path.dirname(tree))
        run = store.last_run()
        assert Path(run.artifacts["checkpoints/best.keras"]).read_text() == "weights"
        assert Path(run.artifacts["report/summary.txt"]).read_text() == "summary"
        assert Path(run.artifacts["report/plots"], "loss.csv").read_text() == "0,1.0\n"

        snapshot = _temp_file("model.txt", "a model")
        sink.log_model(
            "text", loader=lambda: Path(snapshot).read_text(), temp_dir=os.path.dirname(snapshot)
        )
        # Kept while the block lasts: the recorded model may read its snapshot lazily.
        assert os.path.exists(snapshot)
        assert run.models[0]["model"] == "a model"
        assert "temp_dir" not in run.models[0]
    assert not os.path.exists(os.path.dirname(snapshot))
