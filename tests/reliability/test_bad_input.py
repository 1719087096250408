"""Bad input at the API: wrong types, unknown names and options, broken plugins.

Each must give a clear message naming the culprit, and disturb nothing else: what was
enabled stays enabled with its configuration, and the plugins that are fine keep logging
(checked with real fits: the first-party Keras plugin and a well-behaved third-party one,
both installed next to the broken ones).

Broken plugins are fake distributions (``*.dist-info`` folders plus modules) in a temp dir on
``sys.path``, which importlib-metadata sees exactly as installed packages.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import _fakedist, _support

FAKE_PACKAGES = ("relfw", "autolog_relok", "autolog_relbroken", "autolog_relspy")

RELFW = {
    "relfw/__init__.py": "from relfw.models import Model\n",
    "relfw/models.py": _fakedist.FRAMEWORK_SOURCE,
}

RELOK = """
from autolog import Patch, Plugin


def _add_callback(call):
    sink = call.sink

    def log_epoch(epoch, logs):
        sink.log_metrics(logs, step=epoch)

    call.replace("callbacks", [*(call.get("callbacks") or ()), log_epoch])


class RelOk(Plugin):
    name = "rel_ok"
    requires = ("relfw>=1",)
    patches = (
        Patch("relfw.models:Model.fit", capture=("epochs",), before=_add_callback, owns_run=True),
    )
"""

BROKEN_MODULES = {
    "autolog_relbroken/__init__.py": "",
    "autolog_relbroken/missing.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_missing_target"
            requires = ("relfw>=1",)
            patches = (Patch("relfw.models:Model.fit_v2", owns_run=True),)
    """,
    "autolog_relbroken/future.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_future"
            requires = ("relfw>=5",)
            patches = (Patch("relfw.models:Model.fit", owns_run=True),)
    """,
    "autolog_relbroken/notinstalled.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_notinstalled"
            requires = ("no-such-framework>=1",)
            patches = (Patch("no_such_framework:Model.fit", owns_run=True),)
    """,
    "autolog_relbroken/badreq.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_badreq"
            requires = ("relfw >>> 1",)
            patches = (Patch("relfw.models:Model.fit", owns_run=True),)
    """,
    "autolog_relbroken/badver.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_badver"
            requires = ("brokenver>=1",)
            patches = (Patch("relfw.models:Model.fit", owns_run=True),)
    """,
    "autolog_relbroken/importerror.py": """
        raise ImportError("no backend available for rel_importerror")
    """,
    "autolog_relbroken/notplugin.py": """
        def make():
            return None
    """,
    "autolog_relbroken/misnamed.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "something_else"
            requires = ("relfw>=1",)
            patches = (Patch("relfw.models:Model.fit", owns_run=True),)
    """,
    "autolog_relbroken/badpatch.py": """
        from autolog import Patch, Plugin

        class P(Plugin):
            name = "rel_badpatch"
            requires = ("relfw>=1",)
            patches = (Patch("not a target"),)
    """,
}
BROKEN_ENTRY_POINTS = {
    "rel_missing_target": "autolog_relbroken.missing:P",
    "rel_future": "autolog_relbroken.future:P",
    "rel_notinstalled": "autolog_relbroken.notinstalled:P",
    "rel_badreq": "autolog_relbroken.badreq:P",
    "rel_badver": "autolog_relbroken.badver:P",
    "rel_importerror": "autolog_relbroken.importerror:P",
    "rel_notplugin": "autolog_relbroken.notplugin:make",
    "rel_misnamed": "autolog_relbroken.misnamed:P",
    "rel_noattr": "autolog_relbroken:DoesNotExist",
    "rel_badpatch": "autolog_relbroken.badpatch:P",
}
# Plugins that fail to load: named, with the reason, even when not requested.
LOAD_ERRORS = {
    "rel_badreq": "not a PEP 508 requirement",
    "rel_importerror": "no backend available for rel_importerror",
    "rel_notplugin": "not a subclass of autolog.Plugin",
    "rel_misnamed": "something_else",
    "rel_noattr": "DoesNotExist",
    "rel_badpatch": "not of the form",
}
# Plugins whose requirements are unmet: named, with the reason, when requested.
UNMET = {
    "rel_future": "relfw 1.2.0 is installed, the plugin supports >=5",
    "rel_notinstalled": "no-such-framework is not installed",
    # A framework whose installed version is not a valid version: never "compatible".
    "rel_badver": "brokenver not.a.version!! is installed, the plugin supports >=1",
}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake site-packages: relfw 1.2.0, a good third-party plugin, and the broken ones."""
    root = tmp_path / "site"
    _fakedist.install(root, "relfw", "1.2.0", modules=RELFW)
    _fakedist.install(
        root,
        "autolog-relok",
        entry_points={"rel_ok": "autolog_relok:RelOk"},
        modules={"autolog_relok/__init__.py": RELOK},
    )
    _fakedist.install(
        root, "autolog-relbroken", entry_points=BROKEN_ENTRY_POINTS, modules=BROKEN_MODULES
    )
    _fakedist.install(
        root,
        "brokenver",
        "1.0",
        metadata="Metadata-Version: 2.1\nName: brokenver\nVersion: not.a.version!!\n",
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("AUTOLOG_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("AUTOLOG_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    _fakedist.forget(*FAKE_PACKAGES)
    yield root
    import autolog

    autolog.disable()
    _fakedist.forget(*FAKE_PACKAGES)


def _autolog_warnings(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    import autolog

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [
        str(w.message) for w in caught if issubclass(w.category, autolog.AutologWarning)
    ]


def _keras_fit_logs(store: Any) -> None:
    """A real Keras fit still logs a complete run."""
    x, y = _support.make_data(32)
    model = _support.build_mlp(eager=True)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    run = store.last_run()
    assert run.tags["autolog.plugin"] == "keras" and run.status == "FINISHED"
    assert [v for _, v in run.metric_history("loss")] == pytest.approx(history.history["loss"])


def _relfw_fit_logs(store: Any) -> None:
    import relfw

    relfw.Model().fit(1, epochs=3)
    run = store.last_run()
    assert run.tags["autolog.plugin"] == "rel_ok"
    assert run.params["epochs"] == "3"
    assert run.metric_history("loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]


def test_each_broken_plugin_is_named_with_its_reason_and_the_others_work(site: Path) -> None:
    import autolog
    from autolog.testing import capture

    inputs = 0
    with capture() as store:
        enabled, messages = _autolog_warnings(autolog.autolog, log_models=False)
        assert {"keras", "rel_ok"} <= set(enabled)
        assert not set(enabled) & (set(BROKEN_ENTRY_POINTS) - {"rel_missing_target"})
        for name, reason in LOAD_ERRORS.items():
            named = [m for m in messages if repr(name) in m]
            assert named, f"no warning names {name}: {messages}"
            assert any(reason in m for m in named), (name, named)
            inputs += 1
        # Unmet requirements are quiet unless the plugin is asked for by name.
        assert not any(repr(name) in m for m in messages for name in UNMET)

        enabled, messages = _autolog_warnings(
            autolog.autolog,
            frameworks=[*UNMET, "rel_missing_target", "rel_ok", "keras"],
            log_models=False,
        )
        assert enabled == ["keras", "rel_missing_target", "rel_ok"]
        for name, reason in UNMET.items():
            assert any(repr(name) in m and reason in m for m in messages), (name, messages)
            inputs += 1

        # A target missing from the installed framework: named when the framework loads.
        _, messages = _autolog_warnings(__import__, "relfw")
        assert any(
            "rel_missing_target" in m and "relfw.models:Model.fit_v2" in m for m in messages
        ), messages
        inputs += 1

        _relfw_fit_logs(store)
        _keras_fit_logs(store)
    _support.record("bad_input", "broken_plugins_named", inputs)


def test_autolog_plugins_cli_lists_every_plugin_and_why(site: Path) -> None:
    from click.testing import CliRunner

    from autolog.cli import main

    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["rel_ok"]["state"] == "would be enabled"
    assert rows["keras"]["state"] == "would be enabled"
    for name, reason in {**LOAD_ERRORS, **UNMET}.items():
        assert reason in rows[name]["state"], rows[name]


# -- malformed metadata of some installed distribution ------------------------------------------

MALFORMED = {
    "metadata_without_name": {"metadata": "Metadata-Version: 2.1\nVersion: 1.0\n"},
    "metadata_not_utf8": {"metadata": b"\xff\xfe\x00Name: x\n\x00\x01"},
    "entry_points_txt_unparsable": {
        "entry_points_text": "[autolog.plugins]\nthis line has no equals sign\n"
    },
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_distribution_with_malformed_metadata_does_not_break_autolog(
    kind: str, site: Path
) -> None:
    """One broken dist-info (not even necessarily an autolog plugin) must be reported by
    name, and every other plugin still enabled, although discovery reads every
    distribution's entry points."""
    import autolog
    from autolog.testing import capture

    _fakedist.install(
        site,
        "autolog-relmalformed",
        entry_points={"rel_malformed": "autolog_relok:RelOk"},
        **MALFORMED[kind],
    )
    with capture() as store:
        enabled, messages = _autolog_warnings(
            autolog.autolog, frameworks=["keras", "rel_ok"], log_models=False
        )
        assert enabled == ["keras", "rel_ok"]
        # The broken distribution is named (its dist-info folder, or its entry point).
        assert any("relmalformed" in m or "rel_malformed" in m for m in messages), messages
        _relfw_fit_logs(store)
        _keras_fit_logs(store)
    infos = autolog.available_plugins()
    assert {"keras", "rel_ok"} <= set(infos)


# -- autolog() arguments -------------------------------------------------------------------------

WRONG_CALLS = [
    ({"frameworks": 3}, TypeError, "frameworks"),
    ({"frameworks": [None]}, TypeError, "frameworks"),
    ({"frameworks": ["keras", b"rel_ok"]}, TypeError, "frameworks"),
    ({"frameworks": ["Keras"]}, ValueError, "'Keras'"),
    ({"frameworks": ["torch"]}, ValueError, "available plugins"),
    ({"log_every_n_steps": 0}, TypeError, "log_every_n_steps"),
    ({"log_every_n_steps": -3}, TypeError, "log_every_n_steps"),
    ({"log_every_n_steps": 2.5}, TypeError, "log_every_n_steps"),
    ({"log_every_n_steps": "10"}, TypeError, "log_every_n_steps"),
    ({"log_models": "yes"}, TypeError, "log_models"),
    ({"log_models": None}, TypeError, "log_models"),
    ({"silent": 1}, TypeError, "silent"),
    ({"exclusive": "no"}, TypeError, "exclusive"),
    ({"disable": 0}, TypeError, "disable"),
    ({"extra_tags": ["team"]}, TypeError, "extra_tags"),
    ({"extra_tags": "team=x"}, TypeError, "extra_tags"),
    ({"pytorch": {"log_models": False}}, TypeError, "pytorch"),
    ({"keras": ["log_models"]}, TypeError, "keras"),
    ({"keras": {"colour": "red"}}, TypeError, "colour"),
    ({"keras": {"checkpoint": "sometimes"}}, ValueError, "checkpoint"),
    ({"keras": {"checkpoint_mode": "up"}}, ValueError, "checkpoint_mode"),
    # Per-plugin overrides of the global options: same rules as the global ones.
    ({"keras": {"log_every_n_steps": 0}}, TypeError, "log_every_n_steps"),
    ({"keras": {"log_every_n_steps": "5"}}, TypeError, "log_every_n_steps"),
    ({"keras": {"log_models": "no"}}, TypeError, "log_models"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "culprit"), WRONG_CALLS, ids=[repr(c[0]) for c in WRONG_CALLS]
)
def test_wrong_autolog_arguments_name_the_culprit_and_change_nothing(
    kwargs: dict[str, Any], error: type[Exception], culprit: str
) -> None:
    import autolog
    from autolog.registry import registry

    assert autolog.autolog(frameworks=["keras"], log_every_n_steps=2, log_models=False) == ["keras"]
    before = registry.enabled("keras")
    with pytest.raises(error) as raised:
        autolog.autolog(**kwargs)
    assert culprit in str(raised.value), str(raised.value)
    # Nothing disturbed: the same plugin, same options.
    assert registry.enabled_names() == ["keras"]
    assert registry.enabled("keras") is before


def test_after_every_wrong_call_keras_still_logs() -> None:
    import autolog
    from autolog.registry import registry
    from autolog.testing import capture

    _support.keras_module()
    with capture() as store:
        autolog.autolog(frameworks=["keras"], log_every_n_steps=2, log_models=False)
        before = registry.enabled("keras")
        refused = 0
        for kwargs, _, _ in WRONG_CALLS:
            try:
                autolog.autolog(**kwargs)
            except (TypeError, ValueError):
                refused += 1
        assert refused == len(WRONG_CALLS)
        assert registry.enabled("keras") is before
        _keras_fit_logs(store)
        assert [s for s, _ in store.last_run().metric_history("batch_loss")] == [2, 4]
    _support.record("bad_input", "wrong_autolog_calls", len(WRONG_CALLS))
    _support.record("bad_input", "wrong_autolog_calls_refused", refused)
