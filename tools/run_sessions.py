"""What `make test` runs: every nox session, in the order that keeps the timed cases fair.

1. Every environment is built, all at once (their dependencies install side by side; the
   noxfile lets one at a time write this repository's editable install).
2. ``lint``, ``docs`` and the suites of both stacks, side by side. A suite keeps about one
   of two cores busy on average (it waits on servers, subprocesses and sleeps), so two at
   once take little longer than the slower alone. ``mlflow-lowest`` (the core's tests on
   the lowest MLflow allowed) follows ``lint`` in its lane: a fifth session at once would
   only slow the other four.
3. The fault cases of each stack, one stack after the other, with nothing else running:
   they time fits with autologging against fits without, on half of the cores
   (``tests/reliability/test_fault_injection.py``).

Lines of sessions that run side by side are printed as they come, behind the session's
name. A failure does not stop the other sessions, so one run reports every failure; the
exit status is 1 when any session failed, and the report at the end repeats what each
failed session said of its failures (a CI log is often read from its tail only).
Standard library only: this runs on the interpreter that runs nox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOX = [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py")]


@dataclass(frozen=True)
class Step:
    label: str
    session: str
    part: str = ""  # AUTOLOG_TEST_PART of a stack's session: "suite" or "faults"
    install_only: bool = False

    @property
    def nox_args(self) -> tuple[str, ...]:
        return ("-s", self.session, "--install-only" if self.install_only else "--no-install")

    def describe(self) -> str:
        part = f"AUTOLOG_TEST_PART={self.part} " if self.part else ""
        return part + " ".join(["nox", *self.nox_args])


ENVIRONMENTS = ("tf221", "tf215", "lint", "docs", "mlflow-lowest")
# Lanes that run side by side; the steps of one lane run one after the other.
SIDE_BY_SIDE = [
    (Step("tf221", "tf221", part="suite"),),
    (Step("tf215", "tf215", part="suite"),),
    (Step("lint", "lint"), Step("mlflow-lowest", "mlflow-lowest")),
    (Step("docs", "docs"),),
]
ALONE = [
    Step("tf221-faults", "tf221", part="faults"),
    Step("tf215-faults", "tf215", part="faults"),
]


@dataclass
class Outcome:
    step: Step
    passed: bool
    seconds: float
    tail: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        """What a failed step said of its failures: the lines of its last pytest short
        summary that name a test (a session may run pytest more than once; what Python
        prints at exit after the summary is left out), else its tail."""
        for index in range(len(self.tail) - 1, -1, -1):
            if "short test summary info" in self.tail[index]:
                summary = self.tail[index + 1 :]
                named = [line for line in summary if line.startswith(SUMMARY_LINES)]
                return named or summary[-TAIL_ON_FAILURE:]
        return self.tail[-TAIL_ON_FAILURE:]


TAIL_KEPT = 400  # lines of each step kept for the report; a summary of failures fits
TAIL_ON_FAILURE = 30  # lines repeated when a failed step printed no pytest summary
# Lines of pytest's short summary that name a test, and its last line ("== 1 failed ...").
SUMMARY_LINES = ("FAILED ", "ERROR ", "=")
LINE_KEPT = 240  # characters of each repeated line: the test's name and the start of why


class Runner:
    def __init__(self) -> None:
        self._print_lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._prefixed = False

    def say(self, text: str) -> None:
        with self._print_lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def run(self, step: Step) -> bool:
        """Run one step to its end, relaying its output; record and return whether it passed."""
        self.say(f"==> {step.describe()}")
        began = time.monotonic()
        proc = subprocess.Popen(
            [*NOX, *step.nox_args],
            cwd=ROOT,
            env={**os.environ, "AUTOLOG_TEST_PART": step.part},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        tail: deque[str] = deque(maxlen=TAIL_KEPT)
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            with self._print_lock:
                sys.stdout.write(f"[{step.label}] {line}" if self._prefixed else line)
                sys.stdout.flush()
        passed = proc.wait() == 0
        self._outcomes.append(Outcome(step, passed, time.monotonic() - began, list(tail)))
        return passed

    def side_by_side(self, lanes: list[tuple[Step, ...]]) -> list[bool]:
        """Run ``lanes`` at once, the steps of each in turn, each line behind its step's
        label; whether each lane passed (a failed step does not stop its lane)."""
        results = [False] * len(lanes)

        def run(index: int) -> None:
            results[index] = all([self.run(step) for step in lanes[index]])

        self._prefixed = True
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(lanes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._prefixed = False
        return results

    def report(self, began: float) -> bool:
        """The table of steps, then each failed step's failures: last, so that a reader who
        sees only the end of the output (a CI page, a pager) still sees which tests failed."""
        self.say("\nstep             result    minutes")
        for outcome in self._outcomes:
            result = "passed" if outcome.passed else "FAILED"
            self.say(f"{outcome.step.label:<16} {result:<9} {outcome.seconds / 60:6.1f}")
        self.say(f"{'all':<26} {(time.monotonic() - began) / 60:6.1f}")
        for outcome in self._outcomes:
            if not outcome.passed:
                self.say(f"\n==> {outcome.step.label} FAILED; what it said of its failures:")
                for line in outcome.failures():
                    self.say(f"[{outcome.step.label}] {line[:LINE_KEPT]}")
        return all(outcome.passed for outcome in self._outcomes)


def main() -> int:
    began = time.monotonic()
    runner = Runner()
    builds = [(Step(f"{name} env", name, install_only=True),) for name in ENVIRONMENTS]
    built = runner.side_by_side(builds)
    broken = {name for name, ok in zip(ENVIRONMENTS, built, strict=True) if not ok}
    lanes = [tuple(s for s in lane if s.session not in broken) for lane in SIDE_BY_SIDE]
    runner.side_by_side([lane for lane in lanes if lane])
    for step in ALONE:
        if step.session not in broken:
            runner.run(step)
    if broken:
        runner.say(f"not run, their environment could not be built: {', '.join(sorted(broken))}")
    return 0 if runner.report(began) else 1  # a broken environment's build step FAILED


if __name__ == "__main__":
    sys.exit(main())
