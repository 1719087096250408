"""Around one call: exception safety, arguments, nesting, threads and run lifecycle."""

from __future__ import annotations

import threading
import traceback

import pytest

import autolog
from autolog.testing import MemoryStore


@pytest.fixture
def toyfw(store: MemoryStore):
    autolog.autolog(frameworks=["toy"])
    import toyfw

    return toyfw


def test_user_exception_propagates_unchanged_and_run_fails(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    with pytest.raises(ValueError, match="user error from fit") as info:
        model.fit("boom")
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "fit"  # raised where the user's code raised it
    assert store.last_run().status == "FAILED"
    assert model.fit_calls == 1


def test_user_exception_is_the_same_object(toyfw) -> None:
    model = toyfw.Model()
    captured = []
    original = toyfw.models.Trainer.fit.__wrapped__

    def raiser(self, *a, **k):
        exc = ValueError("mine")
        captured.append(exc)
        raise exc

    toyfw.models.Trainer.fit.__wrapped__  # noqa: B018
    try:
        # Patch the wrapped function's code path by calling the wrapper around a raiser.
        from autolog.registry import registry

        applied = next(a for a in registry.applied("toy") if a.attr == "fit")
        wrapper = applied.replacement
        with pytest.raises(ValueError) as info:
            wrapper._self_wrapper(lambda *a, **k: raiser(model, *a, **k), model, (1,), {})
        assert info.value is captured[0]
    finally:
        assert toyfw.models.Trainer.fit.__wrapped__ is original


def test_keyboard_interrupt_marks_the_run_killed(toyfw, store: MemoryStore) -> None:
    with pytest.raises(KeyboardInterrupt):
        toyfw.Model().fit("interrupt")
    assert store.last_run().status == "KILLED"


@pytest.mark.parametrize("where", ["before", "after"])
def test_our_failure_warns_once_and_the_call_runs_once(
    where: str, toyfw, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    autolog.autolog(frameworks=["toy"], toy={"fail_in": where})
    model = toyfw.Model()
    callbacks = [lambda epoch, logs: None]
    with pytest.warns(autolog.AutologWarning, match=r"'toy'.*(before|after)-hook") as caught:
        result = model.fit(1, epochs=2, callbacks=None)
    assert result == [1.0, 0.5]
    assert model.fit_calls == 1
    assert len([w for w in caught if issubclass(w.category, autolog.AutologWarning)]) == 1
    # Second call: no second warning for the same call site.
    import warnings

    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        model.fit(1)
    assert not [w for w in again if issubclass(w.category, autolog.AutologWarning)]
    if where == "before":
        # The failed hook's changes are dropped: the user's arguments go through untouched.
        model.fit(1, callbacks=callbacks)
        assert model.last_callbacks is callbacks
    assert store.last_run().status == "FINISHED"


def test_under_autolog_testing_our_failure_raises(toyfw) -> None:
    autolog.autolog(frameworks=["toy"], toy={"fail_in": "after"})
    with pytest.raises(RuntimeError, match=r"toy plugin failure"):
        toyfw.Model().fit(1)


def test_callbacks_added_without_touching_the_callers_objects(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    seen = []
    user_list = [lambda epoch, logs: seen.append(epoch)]
    snapshot = list(user_list)
    model.fit(1, None, 2, user_list)  # positional
    assert user_list == snapshot and len(user_list) == 1
    assert seen == [0, 1]
    user_tuple = (lambda e, logs: None,)
    model.fit(1, epochs=1, callbacks=user_tuple)
    assert isinstance(user_tuple, tuple) and len(user_tuple) == 1
    assert store.last_run().metric_history("loss") == [(0, 1.0)]


def test_positional_and_keyword_calls_capture_the_same(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    model.fit(1, None, 3, None, "hunter2")
    positional = store.last_run().params
    model.fit(x=1, epochs=3, password="hunter2")
    assert store.last_run().params == positional == {"epochs": "3", "password": "***"}


def test_wrong_arguments_raise_the_users_own_type_error(toyfw, store: MemoryStore) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword"):
        toyfw.models.train(toyfw.Model(), 1, not_an_arg=1)


def test_nested_calls_log_once_into_the_outer_run(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    toyfw.models.train(model, 1, epochs=2)  # train -> fit
    model.fit(1, epochs=1, nested=True)  # fit -> fit
    assert len(store.runs) == 2
    first, second = store.runs.values()
    assert first.params == {"epochs": "2", "learning_rate": "0.1", "api_key": "***"}
    assert "loss" not in first.metrics  # the inner fit was skipped, not logged
    assert second.metric_history("loss") == [(0, 1.0)]


def test_evaluate_after_fit_logs_into_the_fits_run(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    model.fit(1)
    model.evaluate(1)
    assert len(store.runs) == 1
    assert store.last_run().metric_history("eval_accuracy") == [(0, 0.75)]
    other = toyfw.Model()
    other.evaluate(1)  # no fit before: a run of its own
    assert len(store.runs) == 2


def test_two_sequential_fits_make_two_runs(toyfw, store: MemoryStore) -> None:
    model = toyfw.Model()
    model.fit(1)
    model.fit(1)
    assert len(store.runs) == 2
    assert all(r.status == "FINISHED" for r in store.runs.values())


def test_user_active_run_is_used_and_left_open(toyfw, store: MemoryStore) -> None:
    run_id = store.start_user_run()
    toyfw.Model().fit(1, epochs=2)
    assert list(store.runs) == [run_id]
    run = store.runs[run_id]
    assert run.status == "RUNNING"
    assert run.tags["mlflow.autologging"] == "toy"
    assert run.metric_history("loss") == [(0, 1.0), (1, 0.5)]


def test_exclusive_leaves_user_runs_alone(toyfw, store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"], exclusive=True)
    run_id = store.start_user_run()
    toyfw.Model().fit(1)
    assert store.runs[run_id].metrics == {}
    store.active = None
    toyfw.Model().fit(1)
    assert len(store.runs) == 2


def test_run_tags_and_extra_tags(toyfw, store: MemoryStore) -> None:
    autolog.autolog(frameworks=["toy"], extra_tags={"team": "vision", "token": "abc"})
    toyfw.Model().fit(1)
    tags = store.last_run().tags
    assert tags["autolog.plugin"] == "toy"
    assert tags["autolog.version"] == autolog.__version__
    assert tags["team"] == "vision"
    assert tags["token"] == "***"


def test_two_threads_get_two_runs_without_cross_talk(toyfw, store: MemoryStore) -> None:
    barrier = threading.Barrier(2)
    results = {}

    def work(epochs: int) -> None:
        model = toyfw.Model()
        barrier.wait()
        results[epochs] = model.fit(1, epochs=epochs)

    threads = [threading.Thread(target=work, args=(n,)) for n in (3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.runs) == 2
    histories = sorted(len(r.metric_history("loss")) for r in store.runs.values())
    assert histories == [3, 5]
    for run in store.runs.values():
        assert run.params["epochs"] == str(len(run.metric_history("loss")))


def test_disable_passes_calls_straight_through(toyfw, store: MemoryStore) -> None:
    autolog.disable()
    toyfw.Model().fit(1)
    assert store.runs == {}


def test_non_chief_writes_nothing(toyfw, store: MemoryStore, monkeypatch) -> None:
    from autolog.registry import registry

    plugin = registry.enabled("toy").plugin
    monkeypatch.setattr(type(plugin), "is_chief", lambda self: False)
    assert toyfw.Model().fit(1, epochs=2) == [1.0, 0.5]
    assert store.runs == {}
