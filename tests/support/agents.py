"""Delivery agents started by the processes a test runs: find them, wait for them, stop them.

A script under test prints ``AGENT <pid>`` (``autolog.batching.agent.AGENT.pid``); the
test waits for that agent to finish its delivery, and stops it by that pid should it not.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time


def agent_pid(output: str) -> int:
    """The agent pid a script printed as ``AGENT <pid>``."""
    found = re.findall(r"AGENT (\d+)", output)
    assert found, f"the script printed no agent pid:\n{output}"
    return int(found[-1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone for our purposes.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][:1] != "Z"
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether the process ``pid`` ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(pid: int) -> None:
    """Stop an agent a test started (SIGKILL: it holds no state the test needs)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10)


# MLflow's run and experiment selectors: `mlflow.set_experiment` puts the experiment in
# os.environ for child processes, so a test that ran earlier in this process may have
# left one that names an experiment of another store.
_SELECTORS = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment for a script under test, without MLflow's run and
    experiment selectors (its runs go to the default experiment of its store)."""
    env = {k: v for k, v in os.environ.items() if k not in _SELECTORS}
    env.update(overrides)
    return env
