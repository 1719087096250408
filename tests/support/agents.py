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
