"""The autolog command, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.toy import TOYENV


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment (the toy plugins first on PYTHONPATH) with ``extra``; a
    PYTHONPATH in ``extra`` goes before the inherited one, which finds this autolog."""
    full = {**os.environ, **(extra or {})}
    inherited = os.environ.get("PYTHONPATH", "")
    paths = [*(extra or {}).get("PYTHONPATH", "").split(os.pathsep), TOYENV, inherited]
    full["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    return full


def autolog_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = _env(env)
    return subprocess.run(
        [sys.executable, "-m", "autolog", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def test_plugins_table_lists_every_plugin_with_its_state() -> None:
    result = autolog_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["toy"]["state"] == "would be enabled"
    assert rows["toy"]["installed"] == "1.2.0"
    assert rows["toy"]["supported"] == "toyfw>=1.0,<2"
    assert rows["toy_future"]["state"] == "toyfw 1.2.0 is installed, the plugin supports >=9"
    assert rows["toy_future"]["reason"] == "needs toyfw >=9 (1.2.0 installed)"
    assert "broken on purpose" in rows["toy_broken"]["state"]
    assert {"keras", "tf_estimator"} <= set(rows)
    table = autolog_cli("plugins")
    assert table.returncode == 0
    assert "toy_future" in table.stdout and "would be enabled" in table.stdout


def test_version() -> None:
    import autolog

    result = autolog_cli("--version")
    assert result.returncode == 0
    assert autolog.__version__ in result.stdout


SCRIPT = """
import os, subprocess, sys
from autolog.registry import registry
print("ENABLED=" + ",".join(registry.enabled_names()))
opts = registry.enabled("toy").options if registry.enabled("toy") else None
print("N=" + str(opts and opts.log_every_n_steps))
print("USER_SITE=" + os.environ.get("USER_SITECUSTOMIZE_RAN", "no"))
child = subprocess.run([sys.executable, "-c",
    "from autolog.registry import registry; print(registry.enabled_names())"],
    capture_output=True, text=True)
print("CHILD=" + child.stdout.strip())
print("ARGS=" + " ".join(sys.argv[1:]))
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


def test_run_enables_autologging_in_an_unmodified_script(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text(
        "import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = 'yes'\n"
    )
    result = autolog_cli(
        "run",
        "--frameworks",
        "toy",
        "--log-every-n-steps",
        "3",
        "--",
        sys.executable,
        "train.py",
        "--lr",
        "0.1",
        env={"PYTHONPATH": os.pathsep.join([TOYENV, str(user_site)]), "EXIT_CODE": "3"},
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 3, result.stderr  # the script's exit code passes through
    assert "ENABLED=toy" in out
    assert "N=3" in out
    assert "USER_SITE=yes" in out  # the user's own sitecustomize still ran
    assert "CHILD=[]" in out  # child processes are not instrumented
    assert "ARGS=--lr 0.1" in out


def test_run_module_form_and_missing_command(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(textwrap.dedent(SCRIPT))
    result = autolog_cli("run", "--", sys.executable, "-m", "pkg.train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    enabled = next(line for line in result.stdout.splitlines() if line.startswith("ENABLED="))
    assert "toy" in enabled.removeprefix("ENABLED=").split(",")
    missing = autolog_cli("run", "--", "definitely-not-a-command-xyz")
    assert missing.returncode != 0
    assert "cannot run" in missing.stderr


SIGNALLED = """
import signal, sys, time

def on_term(signum, frame):
    print("GOT SIGTERM", flush=True)
    sys.exit(7)

signal.signal(signal.SIGTERM, on_term)
try:
    print("READY", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    time.sleep(1.0)  # the user's own cleanup, longer than subprocess.run's 0.25 s grace
    print("CLEANED UP", flush=True)
    sys.exit(130)
"""


def _start_run_command(tmp_path: Path) -> subprocess.Popen[bytes]:
    script = tmp_path / "signalled.py"
    script.write_text(textwrap.dedent(SIGNALLED))
    # Output goes to files, not pipes: a process the script's interpreter starts in turn
    # (git, for the run's tags) may hold a pipe open after the script ended.
    with open(tmp_path / "out.txt", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "autolog", "run", "--", sys.executable, str(script)],
            stdout=out,
            stderr=err,
            env=_env(),
            start_new_session=True,  # a process group of its own, as a terminal gives it
        )
    deadline = time.monotonic() + 60
    while "READY" not in (tmp_path / "out.txt").read_text():
        assert process.poll() is None and time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    return process


def _stop(process: subprocess.Popen[bytes], tmp_path: Path) -> tuple[str, str]:
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()


def test_ctrl_c_under_run_lets_the_script_finish_and_passes_its_exit_status_on(
    tmp_path: Path,
) -> None:
    process = _start_run_command(tmp_path)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = _stop(process, tmp_path)
    assert process.returncode == 130, err
    assert "CLEANED UP" in out and "Aborted" not in err


def test_sigterm_to_run_reaches_the_script(tmp_path: Path) -> None:
    process = _start_run_command(tmp_path)
    os.kill(process.pid, signal.SIGTERM)  # to `autolog run` alone, as a scheduler sends it
    out, err = _stop(process, tmp_path)
    assert process.returncode == 7, err
    assert "GOT SIGTERM" in out


def test_run_of_a_file_that_is_not_executable_says_so(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('never')\n")
    script.chmod(0o644)
    result = autolog_cli("run", "--", str(script))
    assert result.returncode != 0
    assert f"cannot run {str(script)!r}" in result.stderr
    assert "Traceback" not in result.stderr


# Configuration errors stop `autolog run` before the command starts ------------------------

MARKER_SCRIPT = "import pathlib\npathlib.Path('script-ran').write_text('yes')\n"


def _run_marker(tmp_path: Path, *options: str, env: dict[str, str] | None = None):
    (tmp_path / "train.py").write_text(MARKER_SCRIPT)
    return autolog_cli(
        "run",
        *options,
        "--",
        sys.executable,
        "train.py",
        env={"COLUMNS": "80", **(env or {})},
        cwd=tmp_path,
    )


def test_run_with_an_unknown_framework_stops_before_the_script_and_suggests(
    tmp_path: Path,
) -> None:
    result = _run_marker(tmp_path, "--frameworks", "kears")
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "script-ran").exists()
    error = " ".join(result.stderr.split())  # click wraps nothing, but be safe
    assert "unknown framework 'kears' (did you mean 'keras'?)" in error
    assert "available plugins: keras, " in error and "toy" in error
    assert "Traceback" not in result.stderr


def test_run_with_a_framework_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    result = _run_marker(tmp_path, env={"AUTOLOG_FRAMEWORKS": "toy,sklaern"})
    assert result.returncode == 2
    assert "unknown framework 'sklaern' (did you mean 'sklearn'?)" in result.stderr
    assert not (tmp_path / "script-ran").exists()


def test_an_option_that_is_not_ours_before_the_command_is_refused(tmp_path: Path) -> None:
    result = _run_marker(tmp_path, "--epochs", "3")
    assert result.returncode == 2
    assert "No such option" in result.stderr and "--epochs" in result.stderr
    assert not (tmp_path / "script-ran").exists()


def test_everything_after_the_script_path_is_the_scripts(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    # No `--`: parsing stops at the command, so `--epochs` and `--frameworks` are its own.
    result = autolog_cli(
        "run",
        "--frameworks=toy",
        sys.executable,
        "train.py",
        "--epochs",
        "3",
        "--frameworks",
        "kears",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ENABLED=toy" in result.stdout
    assert "ARGS=--epochs 3 --frameworks kears" in result.stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"log_every_n_step": 1', "AUTOLOG_OPTIONS is not valid JSON"),
        ('["toy"]', "AUTOLOG_OPTIONS must be a JSON object"),
        ('{"log_every_n_step": 1}', "'log_every_n_step' (did you mean 'log_every_n_steps'?)"),
        ('{"toy": {"log_fnal": false}}', "'log_fnal' (did you mean 'log_final'?)"),
        ('{"log_models": "yes"}', "log_models must be True or False"),
        ('{"extra_tags": {"bad key!": "v"}}', "'bad key!' is not a valid MLflow tag name"),
    ],
)
def test_a_bad_autolog_options_variable_stops_before_the_script(
    tmp_path: Path, options: str, message: str
) -> None:
    result = _run_marker(tmp_path, env={"AUTOLOG_OPTIONS": options})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "script-ran").exists()


def test_run_options_override_autolog_options_and_reach_the_script(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "import json\nfrom autolog.registry import registry\n"
        "e = registry.enabled('toy')\n"
        "print('OPTS=' + json.dumps([e.options.log_every_n_steps, e.options.log_final, "
        "dict(e.extra_tags)]))\n"
    )
    result = autolog_cli(
        "run",
        "--frameworks",
        "toy",
        "--log-every-n-steps",
        "4",
        "--tag",
        "team=vision",
        "--",
        sys.executable,
        "train.py",
        env={
            "AUTOLOG_OPTIONS": json.dumps(
                {"log_every_n_steps": 9, "toy": {"log_final": False}, "extra_tags": {"a": "b"}}
            )
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("OPTS="))
    assert json.loads(line.removeprefix("OPTS=")) == [4, False, {"a": "b", "team": "vision"}]


# `autolog plugins` on an 80-column terminal ----------------------------------------------


def _table_rows(lines: list[str]) -> dict[str, str]:
    """{plugin: its cells' text}, a row's wrapped lines joined."""
    rows: dict[str, list[list[str]]] = {}
    name = ""
    for line in lines:
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        name = cells[0] or name
        rows.setdefault(name, []).append(cells)
    return {
        name: " | ".join(" ".join(filter(None, column)) for column in zip(*parts, strict=True))
        for name, parts in rows.items()
    }


def test_plugins_table_fits_80_columns_with_one_short_reason_per_row() -> None:
    result = autolog_cli("plugins", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    rows = _table_rows(lines)
    assert "would be enabled" in rows["toy"]
    assert "needs toyfw >=9 (1.2.0 installed)" in rows["toy_future"]
    assert "failed to load (ImportError)" in rows["toy_broken"]
    assert "broken on purpose" not in result.stdout  # the detail is for --verbose


def test_plugins_verbose_gives_the_whole_reasons() -> None:
    result = autolog_cli("plugins", "--verbose", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    text = " ".join(result.stdout.split())
    assert "state: failed to load: ImportError: this plugin is broken on purpose" in text
    assert "state: toyfw 1.2.0 is installed, the plugin supports >=9" in text
    assert "entry point: autolog_toy.variants:FuturePlugin" in text
    assert "distribution: autolog-toy" in text
