"""The contributor channels: issue forms that GitHub accepts, and the files they point to."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / ".github" / "ISSUE_TEMPLATE"
INPUT_TYPES = {"markdown", "input", "textarea", "dropdown", "checkboxes"}


def _form(name: str) -> dict:
    return yaml.safe_load((FORMS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "name",
    ["bug_report.yml", "documentation.yml", "feature_request.yml", "installation.yml"],
)
def test_issue_form_is_well_formed(name: str) -> None:
    form = _form(name)
    assert {"name", "description", "body"} <= set(form)
    ids = []
    for item in form["body"]:
        assert item["type"] in INPUT_TYPES, item
        if item["type"] != "markdown":
            assert item["attributes"]["label"], item
            ids.append(item["id"])
        if item["type"] == "dropdown":
            assert item["attributes"]["options"], item
    assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
    assert any(i.get("validations", {}).get("required") for i in form["body"])


def test_bug_report_asks_for_versions_repro_expected_and_actual() -> None:
    fields = {item.get("id") for item in _form("bug_report.yml")["body"]}
    required = {
        "autolog-version",
        "mlflow-version",
        "framework-version",
        "python-version",
        "repro",
        "expected",
        "actual",
    }
    assert required <= fields


def test_config_sends_everyone_through_a_form() -> None:
    assert _form("config.yml")["blank_issues_enabled"] is False


def test_contributor_files_exist() -> None:
    assert (ROOT / ".github" / "pull_request_template.md").is_file()
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for words in ("make run", "make test", "lint", "tf221", "tf215", "docs", "autolog.plugins"):
        assert words in contributing
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog
    assert "## [Unreleased]" in changelog and "## [0.1.0]" in changelog
