"""Exception-safety sweep (guarantee 1): make each piece of autolog's code raise, in turn.

The injection points are enumerated, not hand-picked:

* ``hook``: every hook (before/after/on_error) of every Patch the Keras plugin declares, made
  to raise before doing anything and, separately, after doing its work;
* ``plugin``: every function and method defined in the ``autolog_keras`` modules, replaced
  in every namespace that refers to it (a ``_guarded`` callback hook has its inner method
  replaced, so the guard itself stays in place);
* ``core``: the core's capture and run-opening path (interception, session, redaction, the
  MLflow backend and sink);
* ``batching``: each ``BatchLogger`` method the sink calls, and the batching layer's own
  steps (chunking, sending, run creation, the flusher's dispatch);
* ``client``: each ``MlflowClient`` method the flusher calls.

For each point, with ``AUTOLOG_TESTING`` unset, the user's code (``fit`` then ``evaluate`` of
a same-seed model, or for ``on_error`` hooks a ``fit`` whose own callback raises) must give
exactly what it gives with autologging off, within a time limit (no hang), and an
``AutologWarning`` must carry the injected error's message. A point is tried in the cheapest
autolog configuration that reaches it (per-step logging; then with checkpoints and the
``.keras`` file; then with MLflow models); a point no configuration reaches is reported as
unreached and not counted. The count goes to ``benchmarks/results/exception_sweep.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.reliability import _support

pytestmark = pytest.mark.server

PLUGIN_MODULES = (
    "autolog_keras.plugin",
    "autolog_keras.callback",
    "autolog_keras.checkpoints",
    "autolog_keras.params",
    "autolog_keras.datasets",
    "autolog_keras.snapshots",
    "autolog_keras.compat",
    "autolog_keras.distributed",
)
# Run when autolog() is called or at import/exit, never during a fit: not injection points of
# the user's training call.
NOT_AT_FIT_TIME = {
    "autolog_keras.plugin:KerasOptions.__post_init__",
    "autolog_keras.checkpoints:check_options",
    "autolog_keras.checkpoints:_is_validation",
    "autolog_keras.plugin:_patches",
    "autolog_keras.callback:_guarded",
    "autolog_keras.snapshots:_collect_all",
}
HOOK_FUNCTIONS = {"before_fit", "after_fit", "on_fit_error", "before_evaluate", "after_evaluate"}
# The user code ends up to two runs (fit's end_run, then evaluate's close), each bounded by
# END_OF_RUN_TIMEOUT plus a 2 s grace: a stalled store may legitimately hold it ~14 s on top
# of training. Twice that still tells a bounded wait from one that never ends.
TIMEOUT = 40.0
SETTLE_TIMEOUT = 15.0  # for a point's runs to be delivered once its injection is undone
IN_MEMORY = ("plugin", "hook")
# Plugin code that only MLflow's model packaging calls: reached against a real store only
# (the in-memory store does not package models).
PACKAGING_ONLY = {"plugin:autolog_keras.snapshots:SnapshotModel.save"}

# Scenarios: autolog configurations, cheapest first.
SCENARIOS: dict[str, dict[str, Any]] = {
    "steps": {
        "log_every_n_steps": 1,
        "log_models": False,
        "keras": {"log_keras_file": False},
    },
    "checkpoints": {
        "log_every_n_steps": 1,
        "log_models": False,
        "keras": {"checkpoint": "best", "log_keras_file": True},
    },
    "models": {"log_every_n_steps": 1, "log_models": True, "keras": {"log_keras_file": True}},
}


class InjectedFailure(RuntimeError):
    """The error an injection point raises."""


Make = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclasses.dataclass(frozen=True)
class Point:
    id: str
    category: str
    # inject(make) -> undo, where make(original) returns what replaces ``original``
    inject: Callable[[Make], Callable[[], None]]
    failing_fit: bool = False  # on_error hooks: only a fit that raises reaches them
    target: str | None = None  # hook points: the Patch target
    reach_key: str = ""  # points sharing one (both failure modes of a hook) are reached together

    @property
    def key(self) -> str:
        return self.reach_key or self.id


# -- enumeration -------------------------------------------------------------------------------


def _setattr(owner: Any, name: str, value: Any, undo: list[Callable[[], None]]) -> None:
    missing = object()
    previous = owner.__dict__.get(name, missing) if hasattr(owner, "__dict__") else missing
    setattr(owner, name, value)
    if previous is missing:
        undo.append(lambda: delattr(owner, name))
    else:
        undo.append(lambda: setattr(owner, name, previous))


def _undo_all(undo: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for step in reversed(undo):
            step()

    return run


def _replace_function(module_names: tuple[str, ...], original: Any) -> Any:
    """An injector replacing ``original`` wherever one of the modules' globals refers to it."""

    def inject(make: Make) -> Callable[[], None]:
        undo: list[Callable[[], None]] = []
        replacement = make(original)
        for name in module_names:
            module = importlib.import_module(name)
            for attr, value in list(vars(module).items()):
                if value is original:
                    _setattr(module, attr, replacement, undo)
        return _undo_all(undo)

    return inject


def _replace_member(cls: type, attr: str) -> Any:
    """An injector replacing a method/property/classmethod on its class (the guard kept)."""

    def inject(make: Make) -> Callable[[], None]:
        undo: list[Callable[[], None]] = []
        raw = cls.__dict__[attr]
        inner = getattr(raw, "__wrapped__", None)
        cells = [
            c
            for c in (getattr(raw, "__closure__", None) or ())
            if inner is not None and _is_guard(raw) and _cell_value(c) is inner
        ]
        if cells:  # a _guarded hook: replace the method inside the guard
            cell = cells[0]
            cell.cell_contents = make(inner)
            undo.append(lambda: setattr(cell, "cell_contents", inner))
        elif isinstance(raw, property):
            _setattr(cls, attr, property(make(raw.fget)), undo)
        elif isinstance(raw, classmethod):
            _setattr(cls, attr, classmethod(make(raw.__func__)), undo)
        elif isinstance(raw, staticmethod):
            _setattr(cls, attr, staticmethod(make(raw.__func__)), undo)
        else:
            _setattr(cls, attr, make(raw), undo)
        return _undo_all(undo)

    return inject


def _is_guard(func: Any) -> bool:
    """Whether ``func`` is the wrapper ``autolog_keras.callback._guarded`` makes."""
    from autolog_keras.callback import _FitHooks

    guard_code = _FitHooks.__dict__["on_epoch_end"].__code__
    return getattr(func, "__code__", None) is guard_code


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _defined_here(obj: Any, module: ModuleType) -> bool:
    func = getattr(obj, "__wrapped__", obj)
    func = getattr(func, "__func__", func)
    if isinstance(func, property):
        func = func.fget
    code = getattr(func, "__code__", None)
    return code is not None and code.co_filename == module.__file__


def plugin_points() -> Iterator[Point]:
    modules = [importlib.import_module(name) for name in PLUGIN_MODULES]
    for module in modules:
        for name, obj in sorted(vars(module).items()):
            where = f"{module.__name__}:{name}"
            if where in NOT_AT_FIT_TIME or name in HOOK_FUNCTIONS:
                continue
            is_function = inspect.isfunction(obj) or isinstance(obj, functools._lru_cache_wrapper)
            if is_function and _defined_here(obj, module):
                yield Point(f"plugin:{where}", "plugin", _replace_function(PLUGIN_MODULES, obj))
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for attr, member in sorted(vars(obj).items()):
                    member_id = f"{where}.{attr}"
                    if member_id in NOT_AT_FIT_TIME or not _defined_here(member, module):
                        continue
                    if isinstance(member, (property, classmethod, staticmethod)) or callable(
                        member
                    ):
                        yield Point(f"plugin:{member_id}", "plugin", _replace_member(obj, attr))


def hook_points() -> Iterator[Point]:
    from autolog_keras.plugin import KerasPlugin

    for patch in KerasPlugin.patches:
        for hook_name in ("before", "after", "on_error"):
            if getattr(patch, hook_name) is None:
                continue
            for mode in ("raise-first", "raise-after-work"):
                yield Point(
                    f"hook:{patch.target}:{hook_name}:{mode}",
                    "hook",
                    _replace_hook(patch.target, hook_name, mode),
                    failing_fit=hook_name == "on_error",
                    target=patch.target,
                    reach_key=f"hook:{patch.target}:{hook_name}",
                )


def _replace_hook(target: str, hook_name: str, mode: str) -> Any:
    def inject(make: Make) -> Callable[[], None]:
        from autolog_keras.plugin import KerasPlugin

        undo: list[Callable[[], None]] = []
        patches = []
        for patch in KerasPlugin.patches:
            if patch.target == target:
                original = getattr(patch, hook_name)
                replacement = make(original)

                def failing(*args: Any, _original: Any = original, _new: Any = replacement) -> None:
                    if mode == "raise-after-work":
                        _original(*args)
                    _new(*args)

                patch = dataclasses.replace(patch, **{hook_name: failing})
            patches.append(patch)
        _setattr(KerasPlugin, "patches", tuple(patches), undo)
        return _undo_all(undo)

    return inject


def _attr_point(category: str, module: str, path: str) -> Point:
    """A point replacing ``module:path`` (``Class.method`` or a module-level name)."""

    def inject(make: Make) -> Callable[[], None]:
        owner: Any = importlib.import_module(module)
        *parents, attr = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        if isinstance(owner, type):
            return _replace_member(owner, attr)(make)
        undo: list[Callable[[], None]] = []
        _setattr(owner, attr, make(getattr(owner, attr)), undo)
        return _undo_all(undo)

    return Point(f"{category}:{module}:{path}", category, inject)


CORE_POINTS = [
    ("autolog.interception", "_captured"),
    ("autolog.interception", "_loggable"),
    ("autolog.interception", "redact_mapping"),
    ("autolog.interception", "_run_tags"),
    ("autolog.interception", "_open_run"),
    ("autolog.session", "get_backend"),
    ("autolog.session", "status_for"),
    ("autolog.session", "_InstanceRuns.remember"),
    ("autolog.session", "_InstanceRuns.lookup"),
    ("autolog.plugin", "Call.get"),
    ("autolog.plugin", "Call.passed"),
    ("autolog.plugin", "Call.replace"),
    ("autolog.plugin", "Call.call_args"),
    ("autolog.mlflow_backend", "MlflowBackend.open"),
    ("autolog.mlflow_backend", "MlflowBackend.active_run_id"),
    ("autolog.mlflow_backend", "_context_tags"),
    ("autolog.mlflow_backend", "redact_mapping"),
    ("autolog.mlflow_backend", "redact_value"),
    ("autolog.mlflow_backend", "MlflowSink.log_metric"),
    ("autolog.mlflow_backend", "MlflowSink.log_metrics"),
    ("autolog.mlflow_backend", "MlflowSink.log_params"),
    ("autolog.mlflow_backend", "MlflowSink.set_tag"),
    ("autolog.mlflow_backend", "MlflowSink.log_artifact"),
    ("autolog.mlflow_backend", "MlflowSink.log_text"),
    ("autolog.mlflow_backend", "MlflowSink.log_model"),
    ("autolog.mlflow_backend", "MlflowSink.close"),
    ("autolog.mlflow_backend", "MlflowSink.send_pending"),
    ("autolog.mlflow_backend", "MlflowSink.end_run"),
    ("autolog.models", "package_model"),
    ("autolog.models", "pip_requirements"),
]
BATCHING_POINTS = [
    ("autolog.batching.logger", "BatchLogger.start_run"),
    ("autolog.batching.logger", "BatchLogger.log_metric"),
    ("autolog.batching.logger", "BatchLogger.log_metrics"),
    ("autolog.batching.logger", "BatchLogger.log_params"),
    ("autolog.batching.logger", "BatchLogger.set_tag"),
    ("autolog.batching.logger", "BatchLogger.set_tags"),
    ("autolog.batching.logger", "BatchLogger.log_artifact"),
    ("autolog.batching.logger", "BatchLogger.log_artifacts"),
    ("autolog.batching.logger", "BatchLogger.log_text"),
    ("autolog.batching.logger", "BatchLogger.submit"),
    ("autolog.batching.logger", "BatchLogger.close"),
    ("autolog.batching.logger", "BatchLogger.send_pending"),
    ("autolog.batching.logger", "BatchLogger.end_run"),
    ("autolog.batching.chunks", "ChunkBuilder.add_metric"),
    ("autolog.batching.chunks", "ChunkBuilder.add_param"),
    ("autolog.batching.chunks", "ChunkBuilder.add_tag"),
    ("autolog.batching.transport", "send_chunk"),
    ("autolog.batching.stores.rest", "log_batch_body"),
    ("autolog.batching.runs", "ensure_run"),
    ("autolog.batching.scheduler", "Scheduler._pump"),
]
CLIENT_METHODS = [
    "log_batch",
    "create_run",
    "set_terminated",
    "log_artifact",
    "log_artifacts",
    "search_runs",
    "get_experiment_by_name",
    "create_experiment",
]


def client_points() -> Iterator[Point]:
    for method in CLIENT_METHODS:
        yield _attr_point("client", "mlflow.tracking.client", f"MlflowClient.{method}")


def all_points() -> list[Point]:
    points = [
        *hook_points(),
        *(_attr_point("core", m, p) for m, p in CORE_POINTS),
        *(_attr_point("batching", m, p) for m, p in BATCHING_POINTS),
        *client_points(),
        *plugin_points(),
    ]
    ids = [p.id for p in points]
    assert len(ids) == len(set(ids)), "duplicate injection point ids"
    return points


POINTS = all_points()

# -- the user's code -----------------------------------------------------------------------------


class UserError(Exception):
    """Raised by the user's own callback in the failing-fit scenario."""


def _user_code(failing: bool) -> tuple[Any, Any]:
    """What the user runs: a same-seed fit, then evaluate; or a fit whose callback raises.

    Eager and tiny (2 epochs of 1 step): the sweep runs it once per injection point.
    """
    keras = _support.keras_module()
    x, y = _support.make_data(64, classes=3)
    model = _support.build_mlp(classes=3, eager=True)
    callbacks: list[Any] = [keras.callbacks.EarlyStopping(monitor="loss", patience=5)]
    if failing:

        class Explode(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                if epoch == 1:
                    raise UserError("the user's own error")

        callbacks.append(Explode())
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=48,  # one step per epoch
        validation_split=0.25,
        validation_freq=2,  # one validation pass, at the end
        verbose=0,
        callbacks=callbacks,
    )
    evaluation = model.evaluate(x, y, batch_size=64, verbose=0)
    return _support.plain_history(history), [float(v) for v in evaluation]


def _run_user_code(failing: bool, timeout: float) -> tuple[str, Any]:
    """("ok", result) | ("raised", exc) | ("hang", thread), run on a thread with a time limit."""
    outcome: list[tuple[str, Any]] = []

    def target() -> None:
        try:
            outcome.append(("ok", _user_code(failing)))
        except BaseException as exc:
            outcome.append(("raised", exc))

    thread = threading.Thread(target=target, name="user-code", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return "hang", thread
    return outcome[0]


def _thread_stacks() -> str:
    """The stacks of the user's thread and autolog's threads, to tell where a call hangs."""
    frames = sys._current_frames()
    parts = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        if frame is not None and (thread.name == "user-code" or thread.name.startswith("autolog")):
            stack = "".join(traceback.format_stack(frame)[-8:])
            parts.append(f"--- {thread.name}\n{stack}")
    return "\n".join(parts)


def _live_runs(*, busy_only: bool = False) -> set[int]:
    """The runs in the batching engine (``busy_only``: those with work left to do)."""
    from autolog.batching.flusher import ENGINE

    with ENGINE.lock:
        return {
            id(run) for run in ENGINE.runs if not busy_only or run.inbox or run.ops or run.inflight
        }


def _wait_for_runs_to_settle(earlier: set[int], timeout: float) -> bool:
    """Wait until the runs not in ``earlier`` have nothing left to send.

    A run whose end the point broke stays in the engine, idle: only work matters here.
    """
    from autolog.batching.flusher import ENGINE

    deadline = time.monotonic() + timeout
    while _live_runs(busy_only=True) - earlier:
        if time.monotonic() > deadline:
            return False
        ENGINE.wake.set()
        time.sleep(0.05)
    return True


def _clear_plugin_caches() -> None:
    """So that cached plugin helpers (callback classes, flavors) are called again."""
    for name in PLUGIN_MODULES:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, functools._lru_cache_wrapper):
                obj.cache_clear()


# -- the sweep -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The user's results with autologging off."""
    import autolog

    autolog.disable()
    ok, result = _run_user_code(failing=False, timeout=TIMEOUT)
    assert ok == "ok", result
    again = _run_user_code(failing=False, timeout=TIMEOUT)
    assert again == (ok, result), "the user's code is not deterministic"
    kind, error = _run_user_code(failing=True, timeout=TIMEOUT)
    assert kind == "raised" and isinstance(error, UserError)
    return {"result": result, "error_line": traceback.extract_tb(error.__traceback__)[-1].line}


@pytest.fixture(scope="module")
def reach(tracking_module: None) -> dict[tuple[str, bool], str]:
    """Which configuration first reaches each point: every point is wrapped at once in a
    pass-through that counts calls, and the user's code runs once per configuration."""
    import autolog

    found: dict[tuple[str, bool], str] = {}
    for failing in (False, True):
        for scenario, options in SCENARIOS.items():
            counts: dict[str, int] = {}
            undo: list[Callable[[], None]] = []
            _clear_plugin_caches()
            seen: set[str] = set()
            for point in POINTS:
                if point.key in seen:
                    continue
                seen.add(point.key)
                undo.append(point.inject(_counting(point.key, counts)))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    autolog.autolog(frameworks=["keras"], **options)
                    kind, value = _run_user_code(failing, TIMEOUT)
            finally:
                for step in reversed(undo):
                    step()
                autolog.disable()
            assert kind == ("raised" if failing else "ok"), value
            for key in counts:
                found.setdefault((key, failing), scenario)
    return found


def _counting(key: str, counts: dict[str, int]) -> Make:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[key] = counts.get(key, 0) + 1
            return original(*args, **kwargs)

        return counted

    return make


@pytest.fixture(scope="module")
def tracking_module(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """MLflow pointed at the PostgreSQL-backed server, one experiment for the whole sweep."""
    import mlflow

    patcher = pytest.MonkeyPatch()
    patcher.setenv("MLFLOW_TRACKING_URI", pg_server.url)
    patcher.setenv("AUTOLOG_SPOOL_DIR", str(tmp_path_factory.mktemp("sweep-spool")))
    patcher.delenv("MLFLOW_RUN_ID", raising=False)
    patcher.delenv("AUTOLOG_TESTING", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pg_server.url)
    # set_experiment also puts the experiment in os.environ (for child processes): a
    # placeholder first, so that undo() takes it out again for the tests that follow.
    patcher.setenv("MLFLOW_EXPERIMENT_ID", "")
    mlflow.set_experiment("exception-sweep")
    try:
        yield
    finally:
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(previous)
        patcher.undo()


@pytest.fixture(scope="module")
def sweep_results() -> Iterator[dict[str, Any]]:
    results: dict[str, Any] = {
        "swept": {},
        "unreached": {},
        "failed": {},
        "seconds": {},
        "unsettled": [],
    }
    yield results
    swept = results["swept"]
    by_category: dict[str, int] = {}
    for category in swept.values():
        by_category[category] = by_category.get(category, 0) + 1
    failed = {
        point: problems if isinstance(problems, str) else "; ".join(problems)[:300]
        for point, problems in results["failed"].items()
    }
    _support.record("exception_sweep", "swept", len(swept))
    _support.record("exception_sweep", "passed", len(swept) - len(failed))
    _support.record("exception_sweep", "failed_count", len(failed))
    _support.record("exception_sweep", "enumerated", len(POINTS))
    _support.record("exception_sweep", "unreached_count", len(results["unreached"]))
    _support.record("exception_sweep", "by_category", by_category)
    _support.record("exception_sweep", "failed", failed)
    _support.record(
        "exception_sweep",
        "unreached",
        [f"{point}: {why}" for point, why in sorted(results["unreached"].items())],
    )
    _support.record("exception_sweep", "points", sorted(swept))
    _support.record("exception_sweep", "unsettled_after", results["unsettled"])
    slowest = sorted(results["seconds"].items(), key=lambda item: -item[1])[:5]
    _support.record("exception_sweep", "slowest_user_calls_s", dict(slowest))
    print(
        f"\n[exception-sweep] {len(swept)} injection points swept "
        f"({by_category}), {len(results['unreached'])} unreached, "
        f"{len(results['failed'])} failed, of {len(POINTS)} enumerated"
    )


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_injected_failure_never_reaches_the_user(
    point: Point,
    tracking_module: None,
    reference: dict[str, Any],
    reach: dict[tuple[str, bool], str],
    sweep_results: dict[str, Any],
) -> None:
    import autolog
    from autolog import safety
    from autolog.registry import registry
    from autolog.testing import capture

    scenario = reach.get((point.key, point.failing_fit))
    if scenario is None:
        module = (point.target or "").partition(":")[0]
        if point.target is not None and module not in sys.modules:
            why = f"{module} is not part of the installed Keras"
        else:
            why = "no configuration reaches it"
        sweep_results["unreached"][point.id] = why
        pytest.skip(f"{point.id}: {why}")
    token = f"injected failure at {point.id}"
    hits = [0]

    def raiser(*args: Any, **kwargs: Any) -> Any:
        hits[0] += 1
        raise InjectedFailure(token)

    safety.reset_reported()
    _clear_plugin_caches()
    # The plugin's own code does not care where runs go: the in-memory store is cheaper.
    # Everything from the core's sink down runs against the PostgreSQL-backed server.
    in_memory = point.category in IN_MEMORY and point.id not in PACKAGING_ONLY
    store = capture() if in_memory else contextlib.nullcontext()
    earlier_runs = _live_runs()
    undo = point.inject(lambda original: raiser)
    try:
        with store, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            autolog.autolog(frameworks=["keras"], **SCENARIOS[scenario])
            if point.target is not None:
                assert any(a.patch.target == point.target for a in registry.applied("keras"))
            began = time.monotonic()
            kind, value = _run_user_code(point.failing_fit, TIMEOUT)
            sweep_results["seconds"][point.id] = round(time.monotonic() - began, 2)
            stacks = _thread_stacks() if kind == "hang" else ""
    finally:
        undo()
        autolog.disable()
        # The runs this point left behind finish their work before the next point begins,
        # which would otherwise meet them (and its own injection) on the same threads.
        settled = _wait_for_runs_to_settle(earlier_runs, SETTLE_TIMEOUT)
        if not settled:
            sweep_results["unsettled"].append(point.id)
    if kind == "hang":
        value.join(TIMEOUT)  # the injection is undone: let it finish, then report
        sweep_results["failed"][point.id] = "hang"
        sweep_results["swept"][point.id] = point.category
        pytest.fail(
            f"{point.id}: the user's call did not return within {TIMEOUT:.0f} s; "
            f"where the threads were:\n{stacks}"
        )
    assert hits[0] > 0, f"{point.id} was reached when probed but not now"
    messages = [str(w.message) for w in caught if issubclass(w.category, autolog.AutologWarning)]
    problems = _check(point, kind, value, reference)
    if not any(token in m for m in messages):
        problems.append("no AutologWarning names the injected failure")
    if problems:
        sweep_results["failed"][point.id] = problems
        sweep_results["swept"][point.id] = point.category
        pytest.fail(f"{point.id} ({scenario}): " + "; ".join(problems))
    sweep_results["swept"][point.id] = point.category


def _check(point: Point, kind: str, value: Any, reference: dict[str, Any]) -> list[str]:
    if point.failing_fit:
        if kind != "raised" or not isinstance(value, UserError):
            return [f"expected the user's UserError, got {kind}: {value!r}"]
        line = traceback.extract_tb(value.__traceback__)[-1].line
        if line != reference["error_line"]:
            return [f"the user's traceback changed: it ends at {line!r}"]
        return []
    if kind != "ok":
        return [
            f"the user's call raised {type(value).__name__}: {value}",
            "".join(traceback.format_exception(value)[-6:]),
        ]
    if value != reference["result"]:
        return [f"the user's results changed: {value} != {reference['result']}"]
    return []
