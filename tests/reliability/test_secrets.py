"""No secrets in the store (guarantee 6), checked in the real PostgreSQL-backed store.

* Captured arguments and config values whose names look like credentials are logged as
  ``***``; URLs with ``user:password@`` keep the user and lose the password, wherever they
  appear in a param or tag value (a fit argument, an optimizer config value, an extra tag,
  the server's own PostgreSQL URI).
* The spool directory is 0700, its files 0600, and they hold JSON lines only, free of the
  secrets too.
* ``AUTOLOG_DISABLE_PLUGIN_AUTOLOAD=1`` imports no third-party plugin unless it is named in
  ``frameworks=``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import _fakedist, _support
from tests.support.mlflow_server import free_port

CREDENTIAL_NAMES = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth",
    "credential",
    "private_key",
    # the same words inside longer names
    "db_password",
    "AWS_SECRET_ACCESS_KEY",
    "githubToken",
    "x-api-key",
    "client_credentials",
    "ssh_private_key",
    # plurals
    "tokens",
    "api_keys",
    "passwords",
)
# Credential words run together with another word, lowercase: a common spelling
# (``dbpassword``, ``clientsecret``) that the word-based matcher does not split.
COMPOUND_NAMES = ("dbpassword", "adminpasswd", "clientsecret", "accesstoken", "bearertoken")
URL_PASSWORD = "hunter2-url"
URL = f"https://alice:{URL_PASSWORD}@tracking.example.com/api"

VAULTFW = {
    "vaultfw/__init__.py": '''
        def train(epochs=1, note=None, tracking_uri=None, **credentials):
            """Pretend to train; returns the number of epochs."""
            return epochs
    ''',
}
VAULT_PLUGIN = """
    from autolog import Patch, Plugin

    CAPTURED = {captured!r}


    def _after(call, result):
        # Config values a plugin reads from the framework and logs as params and tags.
        call.sink.log_params({{"config_" + k: v for k, v in (call.get("credentials") or {{}}).items()}})
        call.sink.log_params(
            {{"config_endpoint": call.get("tracking_uri"), "config_note": call.get("note")}}
        )
        call.sink.set_tags({{"auth_header": "Bearer tag-secret-1", "endpoint": call.get("tracking_uri")}})
        call.sink.log_text("report", "report.txt")


    class VaultPlugin(Plugin):
        name = "rel_vault"
        requires = ("vaultfw>=1",)
        patches = (
            Patch("vaultfw:train", capture=("epochs", "note", "tracking_uri", *CAPTURED), after=_after, owns_run=True),
        )
"""


def _secret_value(name: str) -> str:
    return f"value-of-{name}-s3cr3t"


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fake framework and a third-party plugin that captures credential-named arguments."""
    root = tmp_path / "site"
    _fakedist.install(root, "vaultfw", "1.0", modules=VAULTFW)
    captured = [n for n in (*CREDENTIAL_NAMES, *COMPOUND_NAMES) if n.isidentifier()]
    # Arguments reach ``train`` through **credentials; the patch captures them by keyword.
    source = VAULT_PLUGIN.format(captured=tuple(captured))
    _fakedist.install(
        root,
        "autolog-relvault",
        entry_points={"rel_vault": "autolog_relvault:VaultPlugin"},
        modules={"autolog_relvault/__init__.py": source},
    )
    monkeypatch.syspath_prepend(str(root))
    _fakedist.forget("vaultfw", "autolog_relvault")
    import autolog

    autolog.autolog(frameworks=["rel_vault"], extra_tags={"team_store": URL})
    import vaultfw

    yield vaultfw
    autolog.disable()
    _fakedist.forget("vaultfw", "autolog_relvault")


def _call_vault(vaultfw: Any, tracking_uri: str, names: tuple[str, ...]) -> None:
    credentials = {name: _secret_value(name) for name in names}
    vaultfw.train(
        epochs=2,
        note=f"data pulled from {URL} nightly",
        tracking_uri=tracking_uri,
        **credentials,
    )


def _leaks(values: dict[str, str], secrets: list[str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if any(s in v for s in secrets)}


def test_credentials_and_url_passwords_never_reach_the_store(tracking: Any, vault: Any) -> None:
    names = CREDENTIAL_NAMES
    _call_vault(vault, tracking.postgres.uri, names)
    (found,) = tracking.runs()
    run = tracking.run(found.info.run_id)

    for name in names:
        if name.isidentifier():  # captured as an argument (x-api-key can only be config)
            assert run.params[name] == "***", name
        assert run.params[f"config_{name}"] == "***", name
    assert run.tags["auth_header"] == "***"
    pg = tracking.postgres
    assert run.params["tracking_uri"] == pg.uri.replace(pg.password, "***")
    assert run.params["config_endpoint"] == run.params["tracking_uri"]
    assert run.tags["endpoint"] == run.params["tracking_uri"]
    masked_url = URL.replace(URL_PASSWORD, "***")
    assert run.params["note"] == f"data pulled from {masked_url} nightly"
    assert run.params["config_note"] == run.params["note"]
    assert run.params["epochs"] == "2"

    secrets = [_secret_value(n) for n in names] + [URL_PASSWORD, pg.password, "tag-secret-1"]
    assert _leaks(run.params, secrets) == {}
    # extra_tags are checked on their own (test_extra_tags_are_redacted_on_runs_autolog_creates)
    tags = {k: v for k, v in run.tags.items() if k != "team_store"}
    assert _leaks(tags, secrets) == {}
    _support.record("secrets", "credential_values_checked", len(secrets))


def test_extra_tags_are_redacted_on_runs_autolog_creates(tracking: Any, vault: Any) -> None:
    """``extra_tags`` go through the same redaction as every other tag, also when autolog
    creates the run and passes them to ``BatchLogger.start_run(tags=...)``."""
    _call_vault(vault, tracking.url, ())
    (found,) = tracking.runs()
    tags = tracking.run(found.info.run_id).tags
    assert tags["team_store"] == URL.replace(URL_PASSWORD, "***")


def test_compound_credential_names_are_redacted(tracking: Any, vault: Any) -> None:
    """``dbpassword``, ``clientsecret``, ``accesstoken``...: a credential word inside a
    longer name, not a separate word of it, still gets the value redacted."""
    _call_vault(vault, tracking.url, COMPOUND_NAMES)
    (found,) = tracking.runs()
    params = tracking.run(found.info.run_id).params
    leaked = _leaks(params, [_secret_value(n) for n in COMPOUND_NAMES])
    assert leaked == {}, f"logged in clear: {sorted(leaked)}"


def test_keras_optimizer_config_secrets_are_redacted(tracking: Any) -> None:
    import autolog

    keras = _support.keras_module()

    class VaultAdam(keras.optimizers.Adam):
        """An optimizer whose config carries credentials (e.g. for a remote parameter store)."""

        def __init__(
            self,
            api_token: str = "opt-token-123",
            password: str = "opt-password-456",
            callback_url: str = URL,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.vault = {
                "api_token": api_token,
                "password": password,
                "callback_url": callback_url,
            }

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), **self.vault}

    autolog.autolog(frameworks=["keras"], log_models=False)
    x, y = _support.make_data(32)
    model = _support.build_mlp(eager=True, optimizer=VaultAdam(learning_rate=0.01))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    (found,) = tracking.runs()
    params = tracking.run(found.info.run_id).params
    assert params["optimizer_class"] == "VaultAdam"
    assert params["optimizer_api_token"] == "***"
    assert params["optimizer_password"] == "***"
    assert params["optimizer_callback_url"] == URL.replace(URL_PASSWORD, "***")
    assert params["optimizer_learning_rate"] == "0.01"
    assert _leaks(params, ["opt-token-123", "opt-password-456", URL_PASSWORD]) == {}


def test_no_run_in_the_server_holds_the_postgres_password(tracking: Any) -> None:
    """Across every run the reliability suite wrote so far, in every experiment."""
    from mlflow.entities import ViewType

    client = tracking.client
    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    runs = client.search_runs(
        [e.experiment_id for e in experiments], run_view_type=ViewType.ALL, max_results=5000
    )
    password = tracking.postgres.password
    leaked = [
        (r.info.run_id, k)
        for r in runs
        for k, v in {**r.data.params, **r.data.tags}.items()
        if password in v
    ]
    assert leaked == []
    _support.record("secrets", "runs_scanned_for_the_postgres_password", len(runs))


def test_spool_is_private_json_and_free_of_secrets(
    tracking: Any, vault: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens at the tracking URI: everything goes to a fresh spool dir."""
    import mlflow

    _support.default_policy(monkeypatch, retry_timeout=0.5, retry_max_delay=0.2)
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    mlflow.set_tracking_uri(dead)
    spool = tracking.spool / "nested" / "spool"  # created by autolog, parents and all
    monkeypatch.setenv("AUTOLOG_SPOOL_DIR", str(spool))
    names = CREDENTIAL_NAMES
    _call_vault(vault, tracking.postgres.uri, names)

    files = sorted(p for p in spool.rglob("*") if p.is_file())
    assert any(p.suffix == ".jsonl" for p in files), files
    assert any(p.name == "report.txt" for p in files), "the artifact was not spooled"
    modes = {
        str(p.relative_to(spool)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [spool, *spool.rglob("*")]
    }
    expected = {
        str(p.relative_to(spool)): oct(0o700 if p.is_dir() else 0o600)
        for p in [spool, *spool.rglob("*")]
    }
    assert modes == expected
    secrets = [_secret_value(n) for n in names] + [URL_PASSWORD, tracking.postgres.password]
    lines = 0
    for path in (p for p in files if p.suffix == ".jsonl"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            assert isinstance(json.loads(line), dict)
            lines += 1
        assert not [s for s in secrets if s in text]
    _support.record("secrets", "spool_lines_checked", lines)


def test_plugin_autoload_off_imports_no_third_party_plugin(tmp_path: Path) -> None:
    """In a fresh interpreter, so that what gets imported is exactly what autolog imported."""
    root = tmp_path / "site"
    marker = tmp_path / "imported.txt"
    _fakedist.install(root, "spyfw", "1.0", modules={"spyfw/__init__.py": "def fit(): pass\n"})
    _fakedist.install(
        root,
        "autolog-relspy",
        entry_points={"rel_spy": "autolog_relspy:SpyPlugin"},
        modules={
            "autolog_relspy/__init__.py": f"""
                with open({str(marker)!r}, "a") as handle:
                    handle.write("imported\\n")
                from autolog import Patch, Plugin

                class SpyPlugin(Plugin):
                    name = "rel_spy"
                    requires = ("spyfw>=1",)
                    patches = (Patch("spyfw:fit", owns_run=True),)
            """,
        },
    )
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(root)!r})
        import autolog
        from click.testing import CliRunner
        from autolog.cli import main

        report = {{}}
        report["all"] = autolog.autolog(log_models=False)
        report["keras"] = autolog.autolog(frameworks=["keras"], log_models=False)
        report["cli"] = CliRunner().invoke(main, ["plugins", "--json"]).output
        shipped = ("autolog_keras", "autolog_tf_estimator")  # part of autolog-core
        report["before_request"] = sorted(
            m for m in sys.modules
            if m.startswith("autolog_") and m.split(".")[0] not in shipped
        )
        report["requested"] = autolog.autolog(frameworks=["rel_spy"], log_models=False)
        report["after_request"] = "autolog_relspy" in sys.modules
        print("REPORT " + json.dumps(report))
        """
    )
    env = {**os.environ, "AUTOLOG_DISABLE_PLUGIN_AUTOLOAD": "1", "AUTOLOG_TESTING": "1"}
    env.pop("AUTOLOG_DISABLED_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=_support.ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("REPORT "))
    report = json.loads(line[len("REPORT ") :])
    rows = {row["name"]: row for row in json.loads(report["cli"])}
    # Third-party plugins (ours and any installed, e.g. autolog-sklearn) stay unimported...
    assert report["before_request"] == [], report["before_request"]
    assert "rel_spy" not in report["all"] and "keras" in report["all"]
    assert report["keras"] == ["keras"]
    assert "AUTOLOG_DISABLE_PLUGIN_AUTOLOAD" in rows["rel_spy"]["state"]
    # ...until named in frameworks=.
    assert report["requested"] == ["rel_spy"] and report["after_request"] is True
    assert marker.read_text() == "imported\n"
