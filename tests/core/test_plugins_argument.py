"""``autolog.autolog(plugins=[MyPlugin])``: a plugin class tried without installing it.

It goes through the same checks as an installed plugin: its declaration, its
``requires`` from installed metadata, its options under its name; ``disable`` works by
name. Runs land in a real SQLite store.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import autolog
from autolog import Call, Patch, Plugin, PluginDeclarationError, PluginOptions
from autolog.registry import is_patched, registry


@dataclasses.dataclass
class ProbeOptions(PluginOptions):
    prefix: str = "probe"


def _log(call: Call, result: object) -> None:
    call.sink.log_metric(f"{call.options.prefix}_units", call.instance.units)


class Probe(Plugin):
    name = "probe"
    requires = ("toyfw>=1.0,<2",)
    options_type = ProbeOptions
    patches = (Patch("toyfw.models:Model.evaluate", owns_run=True, after=_log),)


def test_an_uninstalled_plugin_logs_into_a_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        assert autolog.autolog(plugins=[Probe], probe={"prefix": "p"}) == ["probe"]
        assert registry.enabled_names() == ["probe"]  # only the given plugin
        import toyfw

        toyfw.Model(units=5).evaluate(1)
        autolog.disable(["probe"])
        assert not is_patched(vars(toyfw.models.Trainer)["evaluate"])
        (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
        assert run.data.metrics == {"p_units": 5.0}
        assert run.data.tags["autolog.plugin"] == "probe"
    finally:
        mlflow.set_tracking_uri(None)


def test_frameworks_and_plugins_together() -> None:
    assert autolog.autolog(frameworks=["toy"], plugins=[Probe]) == ["probe", "toy"]
    autolog.disable()
    assert registry.enabled_names() == []


def test_unmet_requirements_are_reported_as_for_an_installed_plugin() -> None:
    class Future(Plugin):
        name = "probe_future"
        requires = ("toyfw>=9",)
        patches = (Patch("toyfw.models:Model.fit"),)

    with pytest.warns(autolog.AutologWarning, match=r"'probe_future' is not enabled: toyfw 1.2.0"):
        assert autolog.autolog(plugins=[Future]) == []


@pytest.mark.parametrize(
    ("plugins", "error", "message"),
    [
        (Probe, TypeError, r"a list of Plugin classes, got Probe; write plugins=\[Probe\]"),
        ([Probe()], TypeError, r"an instance of .*Probe; pass the class itself"),
        ([int], TypeError, r"<class 'int'>, which is not a subclass of autolog.Plugin"),
        ([Plugin], TypeError, "an abstract plugin class"),
        (3, TypeError, "got int"),
    ],
)
def test_bad_plugins_are_refused_naming_the_item(plugins, error, message) -> None:
    with pytest.raises(error, match=message):
        autolog.autolog(plugins=plugins)
    assert registry.enabled_names() == []


def test_a_declaration_broken_after_the_class_statement_is_refused() -> None:
    class Later(Plugin):
        name = "probe_later"
        patches = (Patch("toyfw.models:Model.fit"),)

    Later.patches = "toyfw.models:Model.fit"  # type: ignore[assignment]
    with pytest.raises(PluginDeclarationError, match=r"Later.patches must be a sequence of Patch"):
        autolog.autolog(plugins=[Later])


def test_names_must_be_unique_and_not_shadow_an_installed_plugin() -> None:
    class Other(Plugin):
        name = "probe"

    with pytest.raises(ValueError, match=r"two plugins named 'probe': .*Probe and .*Other"):
        autolog.autolog(plugins=[Probe, Other])

    class Toy(Plugin):
        name = "toy"

    with pytest.raises(ValueError, match=r"named 'toy' like the installed plugin autolog_toy:"):
        autolog.autolog(plugins=[Toy])
    from autolog_toy import ToyPlugin

    assert autolog.autolog(plugins=[ToyPlugin]) == ["toy"]  # the installed class itself


def test_options_are_checked_under_the_plugin_name() -> None:
    with pytest.raises(TypeError, match=r"unknown option 'prefx' \(did you mean 'prefix'\?\)"):
        autolog.autolog(plugins=[Probe], probe={"prefx": "x"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'probe'"):
        autolog.autolog(frameworks=["toy"], probe={"prefix": "x"})


def test_disable_true_turns_them_off() -> None:
    autolog.autolog(plugins=[Probe])
    assert autolog.autolog(plugins=[Probe], disable=True) == []
    assert registry.enabled_names() == []
