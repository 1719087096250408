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

from tests.support.toy import TOYENV


def autolog_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = {**os.environ, "PYTHONPATH": TOYENV, **(env or {})}
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
            env={**os.environ, "PYTHONPATH": TOYENV},
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
