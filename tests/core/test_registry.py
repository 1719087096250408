"""The patch registry against the toy framework: laziness, exactness, idempotence."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pickle
import sys
import threading
import types

import pytest

import autolog
from autolog.registry import registry
from autolog.testing import MemoryStore
from tests.support.toy import forget_toyfw


def current(models_module) -> dict[str, object]:
    return {
        "fit": models_module.Trainer.__dict__["fit"],
        "evaluate": models_module.Trainer.__dict__["evaluate"],
        "from_config": models_module.Model.__dict__["from_config"],
        "describe": models_module.Model.__dict__["describe"],
        "size": models_module.Model.__dict__["size"],
        "afit": models_module.Model.__dict__["afit"],
        "train": models_module.__dict__["train"],
    }


def originals() -> dict[str, object]:
    """The raw attributes before autolog touched them (toyfw must not be patched yet)."""
    from toyfw import models

    return current(models)


def test_enable_never_imports_the_framework(store: MemoryStore) -> None:
    assert autolog.autolog(frameworks=["toy"]) == ["toy"]
    assert "toyfw" not in sys.modules
    assert "toyfw.models" not in sys.modules


@pytest.mark.parametrize("order", ["enable-import", "import-enable", "enable-import-enable"])
def test_orderings_give_the_same_result(order: str, store: MemoryStore) -> None:
    steps = order.split("-")
    for step in steps:
        if step == "enable":
            autolog.autolog(frameworks=["toy"])
        else:
            import toyfw
    import toyfw

    model = toyfw.Model()
    model.fit(1, epochs=2)
    assert len(store.runs) == 1
    run = store.last_run()
    assert run.metric_history("loss") == [(0, 1.0), (1, 0.5)]
    assert run.params == {"epochs": "2", "password": "***"}
    assert model.fit_calls == 1


def test_disable_before_import_patches_nothing(store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"])
    autolog.disable(["toy"])
    import toyfw
    from toyfw import models

    assert not hasattr(models.Trainer.__dict__["fit"], "__wrapped__")
    toyfw.Model().fit(1)
    assert store.runs == {}


def test_reimport_after_removal_is_patched_again(store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"])
    import toyfw

    toyfw.Model().fit(1)
    forget_toyfw()
    fresh = importlib.import_module("toyfw")
    assert fresh is not toyfw
    fresh.Model().fit(1)
    assert len(store.runs) == 2


def test_disable_restores_the_exact_objects() -> None:
    from toyfw import models

    before = originals()
    autolog.autolog(frameworks=["toy"])
    wrapped = current(models)
    assert all(wrapped[k] is not before[k] for k in before)
    autolog.disable()
    after = current(models)
    assert all(after[k] is before[k] for k in before)
    # Inherited attribute: the patch landed on Trainer, not on Model.
    assert "fit" not in vars(models.Model)
    assert models.Model.fit is before["fit"]


def test_enabling_twice_wraps_once() -> None:
    from toyfw import models

    autolog.autolog(frameworks=["toy"])
    first = current(models)
    autolog.autolog(frameworks=["toy"])
    second = current(models)
    assert all(first[k] is second[k] for k in first)
    fit = models.Trainer.__dict__["fit"]
    assert not hasattr(fit.__wrapped__, "__wrapped__")


def test_signatures_names_and_docs_are_preserved() -> None:
    from toyfw import models

    before = {
        "fit": (inspect.signature(models.Model.fit), models.Model.fit.__doc__),
        "train": (inspect.signature(models.train), models.train.__doc__),
        "from_config": (inspect.signature(models.Model.from_config), None),
        "describe": (inspect.signature(models.Model.describe), models.Model.describe.__doc__),
        "afit": (inspect.signature(models.Model.afit), models.Model.afit.__doc__),
    }
    raw_fit = models.Trainer.__dict__["fit"]
    autolog.autolog(frameworks=["toy"])
    assert inspect.signature(models.Model.fit) == before["fit"][0]
    assert models.Model.fit.__doc__ == before["fit"][1]
    assert models.Model.fit.__name__ == "fit"
    assert models.Model.fit.__wrapped__ is raw_fit
    assert inspect.signature(models.train) == before["train"][0]
    assert inspect.signature(models.Model.from_config) == before["from_config"][0]
    assert inspect.signature(models.Model.describe) == before["describe"][0]
    assert inspect.signature(models.Model().fit) == inspect.signature(raw_fit.__get__(object()))
    assert inspect.iscoroutinefunction(models.Model.afit)
    assert models.Model.size.__doc__ == "Parameter count."


def test_class_static_property_async_and_function_targets(store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"])
    from toyfw import models

    model = models.Model.from_config({"units": 3})
    assert isinstance(model, models.Model) and model.units == 3
    assert store.last_run().params["units"] == "3"
    assert models.Model.describe(5) == "toy model with 5 units"
    assert asyncio.run(model.afit(1, epochs=4)) == [1.0] * 4
    assert store.last_run().metric_history("async_epochs") == [(0, 4.0)]
    assert models.train(model, 1, epochs=2, api_key="s3cr3t") == [1.0, 0.5]
    run = store.last_run()
    assert run.params == {"epochs": "2", "learning_rate": "0.1", "api_key": "***"}
    # A property read inside a run joins it; outside any run it logs nothing.
    assert model.size == 6


def test_property_read_inside_a_run_joins_it(store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"])
    from toyfw import models

    model = models.Model(units=2)
    user_run = store.start_user_run()
    models.Model.describe(1)  # owns_run: logs into the user's run
    assert model.size == 4
    assert list(store.runs) == [user_run]


def test_optional_missing_target_is_silent(recwarn: pytest.WarningsRecorder) -> None:
    autolog.autolog(frameworks=["toy"])
    import toyfw  # noqa: F401

    assert not [w for w in recwarn if issubclass(w.category, autolog.AutologWarning)]


def test_a_hook_that_fails_during_import_never_breaks_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    autolog.autolog(frameworks=["toy"])

    def explode(*_args: object) -> None:
        raise RuntimeError("registry bug during import")

    monkeypatch.setattr(registry, "_apply", explode)
    with pytest.warns(autolog.AutologWarning, match="toy"):
        import toyfw
    assert toyfw.Model().fit(1) == [1.0]


def test_concurrent_enable_disable_leaves_a_consistent_state() -> None:
    from toyfw import models

    before = originals()
    barrier = threading.Barrier(8)

    def churn(index: int) -> None:
        barrier.wait()
        for _ in range(30):
            autolog.autolog(frameworks=["toy"])
            autolog.disable(["toy"])

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(current(models)[k] is before[k] for k in before)
    autolog.autolog(frameworks=["toy"])
    fit = models.Trainer.__dict__["fit"]
    assert fit.__wrapped__ is before["fit"]


def test_instance_bound_method_target_is_patched_on_the_instance_only(store: MemoryStore) -> None:
    from toyfw import models

    autolog.autolog(frameworks=["toy"])
    assert "fit" in vars(models.DEFAULT_MODEL)  # the instance got its own wrapper
    assert "fit" not in vars(models.Model)
    models.DEFAULT_MODEL.fit(1, epochs=2)
    assert len(store.runs) == 1  # the class-level patch nested inside is skipped
    assert store.last_run().metric_history("loss") == []  # instance patch has no hooks
    assert store.last_run().params == {"epochs": "2"}
    autolog.disable()
    assert "fit" not in vars(models.DEFAULT_MODEL)


def test_a_re_exported_copy_is_restored_too(store: MemoryStore) -> None:
    """toyfw.api re-exports models.train; imported while enabled, it holds the wrapper."""
    autolog.autolog(frameworks=["toy"])
    from toyfw import api, models

    original = models.train.__wrapped__
    assert api.train is models.train  # shared wrapper, not wrapped twice
    api.train(models.Model(), 1, epochs=2)
    assert len(store.runs) == 1
    autolog.disable()
    assert models.train is original
    assert api.train is original
    autolog.autolog(frameworks=["toy"])
    api.train(models.Model(), 1, epochs=3)
    assert store.last_run().params["epochs"] == "3"


def test_targets_sharing_an_inherited_method_are_restored_without_a_warning(
    recwarn: pytest.WarningsRecorder,
) -> None:
    from autolog.plugin import Patch, Plugin, PluginOptions
    from autolog.registry import EnabledPlugin

    class Shared(Plugin):
        # Model.fit and Trainer.fit are one function, defined on Trainer (as a framework's
        # estimators share their base class's fit).
        name = "toy_shared"
        requires = ("toyfw>=1",)
        patches = (
            Patch("toyfw.models:Model.fit", owns_run=True),
            Patch("toyfw.models:Trainer.fit", owns_run=True),
        )

    from toyfw import models

    before = models.Trainer.__dict__["fit"]
    registry.enable(EnabledPlugin(plugin=Shared(), options=PluginOptions()))
    assert models.Trainer.__dict__["fit"].__wrapped__ is before  # wrapped once
    registry.disable("toy_shared")
    assert models.Trainer.__dict__["fit"] is before
    assert not [w for w in recwarn if issubclass(w.category, autolog.AutologWarning)]


def test_patched_functions_and_methods_pickle_as_without_autolog(store: MemoryStore) -> None:
    """By reference, as pickle sends a function to a process pool: found again there."""
    autolog.autolog(frameworks=["toy"])
    from toyfw import models

    assert pickle.loads(pickle.dumps(models.train)) is models.train
    describe = pickle.loads(pickle.dumps(models.Model.describe))
    assert describe(3) == "toy model with 3 units"
    built = pickle.loads(pickle.dumps(models.Model.from_config))({"units": 5})
    assert isinstance(built, models.Model) and built.units == 5
    assert pickle.loads(pickle.dumps(models.Model.fit))(models.Model(), 1, epochs=1) == [1.0]
    fit = pickle.loads(pickle.dumps(models.Model(units=3).fit))
    assert fit.__self__.units == 3  # bound to a copy of the instance, as a method is
    runs_before = len(store.runs)
    assert fit(1, epochs=2) == [1.0, 0.5]
    assert len(store.runs) == runs_before + 1  # still autologged
    assert store.last_run().metric_history("loss") == [(0, 1.0), (1, 0.5)]


def test_a_generator_function_is_refused_and_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autolog.plugin import Patch, Plugin, PluginOptions
    from autolog.registry import EnabledPlugin

    module = types.ModuleType("toygen")

    def stream(n: int):
        yield from range(n)

    module.stream = stream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toygen", module)

    class Streaming(Plugin):
        name = "toy_gen"
        requires = ("toyfw>=1",)
        patches = (Patch("toygen:stream", owns_run=True),)

    with pytest.warns(autolog.AutologWarning, match="generator functions are not supported"):
        registry.enable(EnabledPlugin(plugin=Streaming(), options=PluginOptions()))
    assert module.stream is stream
    registry.disable("toy_gen")
