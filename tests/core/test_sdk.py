"""The helpers a plugin author builds on: lazy_subclass, flatten_params, log_dict.

Each is used here the way a plugin uses it: a callback class against the toy framework's
base class (imported only on first use), a framework's params as logged params, a dict
as an artifact in a real SQLite-backed run.
"""

from __future__ import annotations

import json
import sys
import threading
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
