"""autolog.testing's conformance kit, run on the toy plugin as a plugin author would."""

from __future__ import annotations

import autolog.testing
from tests.support.toy import TOYENV


def test_toy_plugin_passes_the_conformance_checks() -> None:
    def exercise() -> None:
        import toyfw

        toyfw.Model().fit(1, epochs=2)

    report = autolog.testing.check_plugin(
        "toy",
        exercise=exercise,
        import_code=f"import sys; sys.path.insert(0, {TOYENV!r}); import toyfw",
        exercise_code="toyfw.Model().fit(1, epochs=2)",
    )
    report.assert_ok()
    names = [r.name for r in report.results]
    assert any(n.startswith("ordering:") for n in names)
    assert len(report.results) >= 12


def test_memory_store_records_like_mlflow(store) -> None:
    sink = store.open(None, {"a": "b"})
    sink.log_params({"lr": 0.1, "db_password": "x"})
    sink.log_param("lr", 0.2)  # conflicting re-log is recorded, not applied
    sink.log_metrics({"loss": 1}, step=3)
    run = store.last_run()
    assert run.params == {"lr": "0.1", "db_password": "***"}
    assert store.conflicts == [(run.run_id, "lr", "0.1", "0.2")]
    assert run.metric_history("loss") == [(3, 1.0)]


def test_memory_store_reports_and_drops_a_value_that_is_no_number(store) -> None:
    import pytest

    from autolog.batching import InvalidDataWarning

    sink = store.open(None, {})
    with pytest.warns(InvalidDataWarning, match="'f1_score' dropped"):
        sink.log_metrics({"f1_score": [0.5, 0.7], "loss": 0.25}, step=1)
    run = store.last_run()
    assert run.metric_history("loss") == [(1, 0.25)]
    assert run.metric_history("f1_score") == []


def test_plugin_info_answers_for_an_installed_plugin() -> None:
    import pytest

    info = autolog.testing.plugin_info("toy")
    assert info.available and info.plugin_class.__name__ == "ToyPlugin"
    assert info.framework_version == "1.2.0"
    assert autolog.testing.plugin_info("toy_future").unmet
    with pytest.raises(
        LookupError, match=r"no installed plugin is named 'nope' .*installed: .*toy"
    ):
        autolog.testing.plugin_info("nope")


def test_locate_and_is_patched_answer_what_a_test_asks() -> None:
    import pytest

    from autolog.registry import PatchError, is_patched, locate

    with pytest.raises(PatchError, match=r"module 'toyfw\.models' is not imported"):
        locate("toyfw.models:Model.fit")
    from toyfw import models

    where = locate("toyfw.models:Model.fit")
    assert (where.owner, where.attr, where.own) == (models.Trainer, "fit", True)
    assert where.value is vars(models.Trainer)["fit"] and not is_patched(where.current())
    assert not locate("toyfw.models:DEFAULT_MODEL.fit").own  # an instance's inherited method
    autolog.autolog(frameworks=["toy"])
    assert is_patched(where.current()) and where.current().__wrapped__ is where.value
    assert is_patched(locate("toyfw.models:Model.size").current())  # a property's getter
    autolog.disable()
    assert where.current() is where.value
    with pytest.raises(PatchError, match="has no attribute 'nope'"):
        locate("toyfw.models:Model.nope")


def test_the_kit_imports_no_private_name_of_the_core() -> None:
    import ast
    from pathlib import Path

    import autolog.testing.conformance as kit

    tree = ast.parse(Path(kit.__file__).read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autolog")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    private += [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"registry", "discovery", "env", "autolog"}
        and node.attr.startswith("_")
    ]
    assert private == []
