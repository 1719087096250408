"""The helpers a plugin author builds on: lazy_subclass, flatten_params, log_dict.

Each is used here the way a plugin uses it: a callback class against the toy framework's
base class (imported only on first use), a framework's params as logged params, a dict
as an artifact in a real SQLite-backed run.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autolog
from autolog import Call, Patch, Plugin
from autolog.testing import MemoryStore

# lazy_subclass ------------------------------------------------------------------------


class _Logging:
    """The plugin's methods; the framework base comes after it in the MRO."""

    def __init__(self, sink: object) -> None:
        super().__init__()
        self.sink = sink

    def describe(self) -> str:
        return f"logging {self.units}"


LoggingModel = autolog.lazy_subclass("toyfw.models:Model", _Logging, name="LoggingModel")


def test_the_base_is_imported_only_on_first_use() -> None:
    lazy = autolog.lazy_subclass("toyfw.models:Model", _Logging, name="LoggingModel")
    assert "toyfw" not in sys.modules
    assert not isinstance(object(), lazy)  # asks nothing of the framework
    assert "toyfw" not in sys.modules and not lazy.built
    instance = lazy("a sink")
    from toyfw.models import Model

    assert isinstance(instance, Model) and isinstance(instance, lazy)
    assert instance.sink == "a sink" and instance.units == 4
    assert instance.describe() == "logging 4"  # the mixin comes first
    cls = lazy.resolve()
    assert cls.__name__ == "LoggingModel" and cls.__mro__[1:3] == (_Logging, Model)
    assert cls.__module__ == __name__
    assert lazy.resolve() is cls  # built once
    assert "built" in repr(lazy)


def test_concurrent_first_uses_build_one_class() -> None:
    lazy = autolog.lazy_subclass("toyfw.models:Model", _Logging, name="LoggingModel")
    barrier = threading.Barrier(8)
    built: list[type] = []

    def use() -> None:
        barrier.wait()
        built.append(lazy.resolve())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in built}) == 1


def test_a_hook_uses_the_lazy_class_as_the_framework_requires(store: MemoryStore) -> None:
    class ToyCallback:
        def __init__(self, sink: object) -> None:
            self.sink = sink

        def __call__(self, epoch: int, logs: dict) -> None:
            self.sink.log_metrics(logs, step=epoch)

    Callback = autolog.lazy_subclass("toyfw.models:Trainer", ToyCallback, name="Callback")

    def add_callback(call: Call) -> None:
        call.replace("callbacks", [*(call.get("callbacks") or ()), Callback(call.sink)])

    class CallbackPlugin(Plugin):
        name = "toy_callback"
        patches = (Patch("toyfw.models:Model.fit", before=add_callback, owns_run=True),)

    autolog.autolog(plugins=[CallbackPlugin])
    import toyfw

    model = toyfw.Model()
    model.fit(1, epochs=2)
    assert store.last_run().metric_history("loss") == [(0, 1.0), (1, 0.5)]
    assert isinstance(model.last_callbacks[0], Callback)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("toyfw.models.Model", _Logging), {"name": "X"}, ValueError, "'module:Qualname'"),
        (("toyfw.models:Model", "not a class"), {"name": "X"}, TypeError, "must be classes"),
        (("toyfw.models:Model", _Logging), {"name": "not valid"}, ValueError, "identifier"),
    ],
)
def test_bad_declarations_are_refused_when_made(args, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        autolog.lazy_subclass(*args, **kwargs)


def test_a_base_that_is_no_class_is_reported_on_first_use() -> None:
    lazy = autolog.lazy_subclass("toyfw.models:train", _Logging, name="X")
    with pytest.raises(TypeError, match=r"toyfw\.models:train is <function train"):
        lazy.resolve()


# flatten_params -----------------------------------------------------------------------


def test_mappings_pairs_and_nesting() -> None:
    params = {"eta": 0.3, "booster": {"name": "gbtree", "depth": {"max": 6}}, "metrics": ["a"]}
    assert autolog.flatten_params(params) == {
        "eta": "0.3",
        "booster.name": "gbtree",
        "booster.depth.max": "6",
        "metrics": "['a']",
    }
    assert autolog.flatten_params([("eta", 0.1), ("eval_metric", "auc")]) == {
        "eta": "0.1",
        "eval_metric": "auc",
    }
    pairs = [("eval_metric", "auc"), ("eval_metric", "logloss"), ["seed", None]]
    assert autolog.flatten_params(pairs, prefix="xgb", sep="/") == {
        "xgb/eval_metric": "['auc', 'logloss']",
        "xgb/seed": "None",
    }
    assert autolog.flatten_params(None) == {}
    assert autolog.flatten_params({1: (1, 2)}) == {"1": "(1, 2)"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("eta=0.3", "got str 'eta=0.3'"),
        (3, "got int 3"),
        ([("eta", 0.3), ("depth",)], r"the item \('depth',\) is not a \(key, value\) pair"),
    ],
)
def test_what_is_not_params_is_refused_naming_it(params, message) -> None:
    with pytest.raises(TypeError, match=message):
        autolog.flatten_params(params)


_keys = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
_nested = st.recursive(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.none()),
    lambda inner: st.dictionaries(_keys, inner, min_size=1, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _nested, max_size=4))
def test_flattening_keeps_every_leaf_once(params: dict) -> None:
    flat = autolog.flatten_params(params)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in flat.items())

    def leaves(obj: dict, prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else k
            out.update(leaves(v, key) if isinstance(v, dict) else {key: str(v)})
        return out

    assert flat == leaves(params)


# log_dict ----------------------------------------------------------------------------


def test_json_and_yaml_artifacts_in_a_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import numpy as np

    monkeypatch.chdir(tmp_path)  # artifacts of a SQLite store go to ./mlruns
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))  # not the user's
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")

    def log_artifacts(call: Call, result: object) -> None:
        importance = {"f0": np.float32(0.75), "f1": 0.25}
        autolog.log_dict(call.sink, importance, "feature_importance.json")
        autolog.log_dict(call.sink, {"layers": [4, np.int64(2)]}, "config/model.yaml")

    class DictPlugin(Plugin):
        name = "toy_dict"
        patches = (Patch("toyfw.models:Model.evaluate", owns_run=True, after=log_artifacts),)

    try:
        autolog.autolog(plugins=[DictPlugin])
        import toyfw

        toyfw.Model().evaluate(1)
        (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
        # No artifact location given: the store put them under ./mlruns of the cwd.
        root = Path(run.info.artifact_uri.removeprefix("file://"))
        assert root.is_relative_to(tmp_path / "mlruns"), run.info.artifact_uri
        text = (root / "feature_importance.json").read_text()
        assert json.loads(text) == {"f0": 0.75, "f1": 0.25}
        assert text.startswith('{\n  "f0"')  # indented, in the given order
        assert yaml.safe_load((root / "config" / "model.yaml").read_text()) == {"layers": [4, 2]}
    finally:
        mlflow.set_tracking_uri(None)


def test_log_dict_refuses_what_is_not_a_mapping(store: MemoryStore) -> None:
    sink = store.open(None, {})
    with pytest.raises(TypeError, match="log_dict needs a mapping, got list"):
        autolog.log_dict(sink, [1, 2], "x.json")


# add_callback ------------------------------------------------------------------------


class _Marker:
    """A plugin's callback (the toy framework calls callbacks as ``cb(epoch, logs)``)."""

    def __init__(self, sink: object = None) -> None:
        self.sink = sink

    def __call__(self, epoch: int, logs: dict) -> None:
        self.sink.log_metrics(logs, step=epoch)


def _with_callback(store: MemoryStore) -> list[bool]:
    """A plugin whose before hook adds a `_Marker`; returns what add_callback said."""
    added: list[bool] = []

    class CallbackPlugin(Plugin):
        name = "toy_add_callback"
        patches = (
            Patch(
                "toyfw.models:Trainer.fit",
                before=lambda call: added.append(autolog.add_callback(call, _Marker(call.sink))),
                owns_run=True,
            ),
        )

    autolog.autolog(plugins=[CallbackPlugin])
    return added


def test_add_callback_appends_to_a_new_list(store: MemoryStore) -> None:
    added = _with_callback(store)
    import toyfw

    model = toyfw.Model()
    model.fit(1, epochs=2)  # callbacks=None: the list is ours alone
    assert [type(cb) for cb in model.last_callbacks] == [_Marker]
    assert store.last_run().metric_history("loss") == [(0, 1.0), (1, 0.5)]

    seen: list[int] = []
    theirs = [lambda epoch, logs: seen.append(epoch)]
    model.fit(1, epochs=1, callbacks=theirs)  # positional or keyword: the same
    assert model.last_callbacks[0] is theirs[0] and isinstance(model.last_callbacks[1], _Marker)
    assert len(theirs) == 1 and seen == [0]  # the caller's list is left as it was
    model.fit(1, 1, 1, (theirs[0],))  # a tuple: a new list too
    assert isinstance(model.last_callbacks, list) and len(model.last_callbacks) == 2
    assert added == [True, True, True]


def test_add_callback_leaves_alone_what_it_cannot_extend(store: MemoryStore) -> None:
    added = _with_callback(store)
    import toyfw

    model = toyfw.Model()
    own = _Marker(store.open(None, {}))
    model.fit(1, epochs=1, callbacks=[own])  # one of ours already there
    assert model.last_callbacks == [own]

    class CallbackList:  # a framework's own container, used as it is
        def __iter__(self):
            return iter(())

    container = CallbackList()
    model.fit(1, epochs=1, callbacks=container)
    assert model.last_callbacks is container
    assert added == [False, False]


def test_add_callback_to_an_argument_the_function_lacks_is_refused() -> None:
    import inspect

    def train(params: dict) -> None: ...

    signature = inspect.signature(train)
    call = Call(
        plugin=Plugin(),
        patch=Patch("toyfw.models:train"),
        instance=None,
        bound=signature.bind({}),
        signature=signature,
        options=autolog.PluginOptions(),
        sink=None,
    )
    with pytest.raises(KeyError, match="takes no argument named 'callbacks'"):
        autolog.add_callback(call, _Marker())


# log_history -------------------------------------------------------------------------


def test_log_history_logs_each_value_at_its_iteration(store: MemoryStore) -> None:
    sink = store.open(None, {})
    autolog.log_history(sink, {"loss": [0.9, 0.5, 0.3], "val_loss": (1.0, 0.8), "acc": None})
    (run,) = store.runs.values()
    assert run.metric_history("loss") == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert run.metric_history("val_loss") == [(0, 1.0), (1, 0.8)]
    assert "acc" not in run.metrics  # None: an attribute this model lacks

    autolog.log_history(sink, {"lr": [0.1, 0.05]}, first_step=1)
    assert run.metric_history("lr") == [(1, 0.1), (2, 0.05)]
    autolog.log_history(sink, {"empty": []})
    assert "empty" not in run.metrics


@pytest.mark.parametrize(
    ("length", "every", "steps"),
    [
        (4, 2, [0, 2, 3]),  # every second value, and the last
        (5, 2, [0, 2, 4]),  # the last is one of them
        (5, 10, [0, 4]),
        (1, 3, [0]),
        (3, None, [0, 1, 2]),
        (3, 1, [0, 1, 2]),
    ],
)
def test_log_history_every_n_steps_keeps_the_first_and_the_last(
    store: MemoryStore, length: int, every: int | None, steps: list[int]
) -> None:
    sink = store.open(None, {})
    values = [float(i) for i in range(length)]
    autolog.log_history(sink, {"loss": values}, every_n_steps=every)
    (run,) = store.runs.values()
    assert run.metric_history("loss") == [(s, values[s]) for s in steps]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=40), st.integers(min_value=1, max_value=12))
def test_log_history_thins_like_log_every_n_steps(length: int, every: int) -> None:
    from autolog.testing import capture

    with capture() as store:
        autolog.log_history(store.open(None, {}), {"m": list(range(length))}, every)
        history = [step for step, _ in store.last_run().metric_history("m")]
    expected = sorted({*range(0, length, every), *([length - 1] if length else [])})
    assert history == expected


@pytest.mark.parametrize(
    ("history", "every", "error", "message"),
    [
        ({"loss": [1.0]}, 0, ValueError, "every_n_steps must be None or an int >= 1, got 0"),
        ({"loss": [1.0]}, True, ValueError, "got True"),
        ({"loss": [1.0]}, 2.0, ValueError, "got 2.0"),
        ([("loss", [1.0])], None, TypeError, "needs a mapping of metric names"),
        ({"loss": 0.5}, None, TypeError, "the values of 'loss' must be a sequence, got float"),
        ({"loss": "0.5"}, None, TypeError, "the values of 'loss' must be a sequence, got str"),
    ],
)
def test_log_history_refuses_bad_input_naming_it(
    store: MemoryStore, history: object, every: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        autolog.log_history(store.open(None, {}), history, every)  # type: ignore[arg-type]


# snapshot ----------------------------------------------------------------------------


def test_snapshot_is_the_model_as_it_was_when_taken() -> None:
    model = {"weights": [1.0, 2.0], "rounds": 3}
    loader = autolog.snapshot(model)
    model["weights"].append(99.0)  # training goes on changing the live object
    model["rounds"] = 4
    first = loader()
    assert first == {"weights": [1.0, 2.0], "rounds": 3}
    assert loader() == first and loader() is not first  # a fresh copy per call
    assert repr(loader).startswith("<snapshot of a dict, ")


def test_snapshot_packaged_by_the_core_after_a_refit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader runs on the worker, after the hook: the model is the one the hook saw."""
    pytest.importorskip("sklearn")
    import mlflow
    import numpy as np
    from sklearn.linear_model import LinearRegression

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path / "spool"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")

    def log_model(call: Call, result: object) -> None:
        call.sink.log_model("sklearn", loader=autolog.snapshot(call.instance))
        call.instance.coef_ = np.array([99.0])  # changed before the worker packages it

    class SnapshotPlugin(Plugin):
        name = "toy_snapshot"
        patches = (
            Patch("sklearn.linear_model:LinearRegression.fit", owns_run=True, after=log_model),
        )

    try:
        autolog.autolog(plugins=[SnapshotPlugin])
        LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
        # The end of the run waits 5 s at most; on a busy machine the first model of a
        # process may be packaged later and delivered from the run log: wait (bounded).
        deadline = time.monotonic() + 60
        while (
            not (logged := mlflow.search_logged_models(experiment_ids=["0"], output_format="list"))
            or str(logged[0].status) != "READY"
        ):
            assert time.monotonic() < deadline, f"no READY model after 60 s: {logged}"
            time.sleep(0.2)
        (logged,) = logged
        loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
        assert loaded.coef_ == pytest.approx([2.0])
    finally:
        autolog.disable()
        mlflow.set_tracking_uri(None)


def test_what_cannot_be_pickled_is_refused_naming_its_type() -> None:
    class Local:  # a class defined in a function cannot be pickled by reference
        pass

    with pytest.raises(TypeError, match=r"snapshot: a .*Local cannot be pickled .*temp_dir"):
        autolog.snapshot(Local())
