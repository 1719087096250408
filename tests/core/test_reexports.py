"""Re-exports: a function a package re-exports is patched (and restored) under every name.

``toyfw/__init__.py`` does ``from toyfw.api import predict``, as ``xgboost`` re-exports
``xgboost.training.train``. A plugin author declares the re-export with
``Patch(..., reexported_by=("toyfw",))``; the conformance kit fails a plugin that did not.
"""

from __future__ import annotations

import pytest

import autolog
import autolog.testing
from autolog import Patch, PluginDeclarationError
from autolog.registry import is_patched, locate
from autolog.testing import MemoryStore


def _variants():
    from autolog_toy.variants import PredictPlugin, PredictReexportedPlugin

    return PredictPlugin, PredictReexportedPlugin


def test_the_kit_fails_a_plugin_that_leaves_a_re_export_unpatched() -> None:
    missed, _ = _variants()
    report = autolog.testing.check_plugin(missed)
    (failure,) = report.failures()
    assert failure.name == "no target reachable unpatched under another public name"
    assert "toyfw.predict is toyfw.api:predict, unpatched" in failure.detail
    assert "reexported_by=('toyfw',)" in failure.detail
    with pytest.raises(AssertionError, match=r"\[FAIL\] no target reachable unpatched"):
        report.assert_ok()


def test_the_kit_passes_the_plugin_that_names_the_re_export() -> None:
    _, fixed = _variants()
    autolog.testing.check_plugin(fixed).assert_ok()


@pytest.mark.parametrize("order", ["import-then-enable", "enable-then-import"])
def test_every_re_exported_binding_logs_and_is_restored(order: str, store: MemoryStore) -> None:
    _, fixed = _variants()
    if order == "import-then-enable":
        import toyfw

        autolog.autolog(plugins=[fixed])
    else:
        autolog.autolog(plugins=[fixed])
        import toyfw
    from toyfw import api

    original = locate("toyfw.api:predict").value.__wrapped__
    assert toyfw.predict is api.predict  # one wrapper under both names
    assert is_patched(toyfw.predict)
    toyfw.predict(toyfw.Model(units=3), 1, batch_size=8)
    api.predict(toyfw.Model(units=2), 1)
    assert [run.params["batch_size"] for run in store.runs.values()] == ["8", "32"]
    assert [run.metric_history("predictions") for run in store.runs.values()] == [
        [(0, 3.0)],
        [(0, 2.0)],
    ]
    autolog.disable(["toy_predict"])
    assert toyfw.predict is original
    assert api.predict is original


def test_without_the_declaration_the_package_name_bypasses_autolog(store: MemoryStore) -> None:
    missed, _ = _variants()
    import toyfw

    autolog.autolog(plugins=[missed])
    toyfw.predict(toyfw.Model(), 1)
    assert store.runs == {}  # what the conformance check catches


def test_a_re_export_that_is_another_object_is_reported_and_left_alone(
    recwarn: pytest.WarningsRecorder,
) -> None:
    class Wrong(autolog.Plugin):
        name = "toy_wrong_reexport"
        patches = (Patch("toyfw.models:train", reexported_by=("toyfw:Model",)),)

    import toyfw

    model_class = toyfw.Model
    autolog.autolog(plugins=[Wrong])
    assert toyfw.Model is model_class
    assert any(
        "toyfw:Model (a re-export of toyfw.models:train)" in str(w.message)
        and "not the same object" in str(w.message)
        for w in recwarn
    )


def test_re_exports_are_declared_for_module_level_functions_only() -> None:
    with pytest.raises(PluginDeclarationError, match="module-level functions"):
        Patch("toyfw.models:Model.fit", reexported_by=("toyfw",))
    with pytest.raises(PluginDeclarationError, match="not the string 'toyfw'"):
        Patch("toyfw.api:predict", reexported_by="toyfw")
    with pytest.raises(PluginDeclarationError, match="'toyfw:'"):
        Patch("toyfw.api:predict", reexported_by=("toyfw:",))
    assert Patch("toyfw.api:predict", reexported_by=("toyfw", "a.b:other")).reexports == (
        ("toyfw", "predict"),
        ("a.b", "other"),
    )


def test_patching_the_re_export_instead_points_to_where_it_is_defined() -> None:
    """``Patch("xgboost:train")`` (issue 30): the kit names the defining module."""

    class ReExportOnly(autolog.Plugin):
        name = "toy_predict"
        patches = (Patch("toyfw:predict", owns_run=True),)

    (failure,) = autolog.testing.check_plugin(ReExportOnly).failures()
    assert failure.detail == (
        "toyfw.api.predict is toyfw:predict, unpatched (target 'toyfw.api:predict', where "
        "it is defined, with reexported_by=('toyfw',))"
    )
