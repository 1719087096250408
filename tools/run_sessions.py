"""What `make test` runs: every nox session, in the order that keeps the timed cases fair.

1. Every session's environment, one after the other (concurrent editable installs of this
   repository would write its ``.egg-info`` at the same time).
2. ``lint``, the docs session and the suites of both stacks, side by side. A suite keeps
   about one of two cores busy on average (it waits on servers, subprocesses and sleeps),
   so two at once take little longer than the slower alone.
3. The fault cases of each stack, one stack after the other, with nothing else running:
   they time fits with autologging against fits without, on half of the cores
   (``tests/reliability/test_fault_injection.py``).

Sessions that run side by side print their lines as they come, each behind its session's
name. Every step runs even when an earlier one failed, so that one run reports every
failure; the exit status is 1 when any session failed. Standard library only: this runs
on the interpreter that runs nox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOX = [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py")]


@dataclass(frozen=True)
class Step:
    label: str
    nox_args: tuple[str, ...]
    part: str = ""  # AUTOLOG_TEST_PART for a stack's session: "suite", "faults" or both


SESSIONS = ("lint", "tf221", "tf215", "docs")
PLAN: list[list[Step]] = [
    [Step("install", ("-s", *SESSIONS, "--install-only"))],
    [
        Step("lint", ("-s", "lint", "--no-install")),
        Step("tf221", ("-s", "tf221", "--no-install"), part="suite"),
        Step("tf215", ("-s", "tf215", "--no-install"), part="suite"),
        Step("docs", ("-s", "docs", "--no-install")),
    ],
    [Step("tf221-faults", ("-s", "tf221", "--no-install"), part="faults")],
    [Step("tf215-faults", ("-s", "tf215", "--no-install"), part="faults")],
]

_print_lock = threading.Lock()


def _describe(step: Step) -> str:
    part = f"AUTOLOG_TEST_PART={step.part} " if step.part else ""
    return part + " ".join(["nox", *step.nox_args])


def _relay(step: Step, stream: object, prefixed: bool) -> None:
    for line in stream:  # type: ignore[attr-defined]
        with _print_lock:
            sys.stdout.write(f"[{step.label}] {line}" if prefixed else line)
            sys.stdout.flush()


def _run_together(steps: list[Step]) -> list[tuple[Step, int, float]]:
    prefixed = len(steps) > 1
    started = time.monotonic()
    running = []
    for step in steps:
        env = {**os.environ, "AUTOLOG_TEST_PART": step.part}
        proc = subprocess.Popen(
            [*NOX, *step.nox_args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        relay = threading.Thread(target=_relay, args=(step, proc.stdout, prefixed))
        relay.start()
        running.append((step, proc, relay))
    results = []
    for step, proc, relay in running:
        code = proc.wait()
        relay.join()
        results.append((step, code, time.monotonic() - started))
    return results


def main() -> int:
    results: list[tuple[Step, int, float]] = []
    began = time.monotonic()
    for steps in PLAN:
        print("==> " + "  &  ".join(_describe(step) for step in steps))
        sys.stdout.flush()
        results.extend(_run_together(steps))
    print("\nsession        result   minutes")
    for step, code, seconds in results:
        print(f"{step.label:<14} {'passed' if code == 0 else 'FAILED':<8} {seconds / 60:6.1f}")
    print(f"{'all':<14} {'':<8} {(time.monotonic() - began) / 60:6.1f}")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
