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
