"""autolog's own time in a training: what it takes from that training, measured inside it.

Comparing two trainings' wall times cannot settle a 5% target on a noisy 2-core machine:
two neighbouring, identical trainings differ by up to 20% there. This module measures the
cost from the inside instead, in the very training that pays it, as the sum of

* **hooks**: the time the training thread spends in autolog's callbacks or session hooks
  (each hook method of the plugin's classes is wrapped in a timer);
* **background**: the CPU time autolog's threads (named ``autolog-*``) use while training
  runs, taken as time the training thread lost to them: on two cores they mostly run
  beside it, but they hold the GIL whenever they run Python;
* **outside**: the extra time the patched call spends outside training (the run's start,
  its params, the flush and end of the run), which is its time before training begins
  and after it ends, less the same time of a call without autolog.

The own-time ratio of a training is ``wall / (wall - own)``: its time against the time it
would have taken without what autolog did in it. Noise in the wall time moves this ratio
only in proportion, where a ratio of two trainings takes their difference as the cost.

It leaves out indirect costs: the caches and memory autolog's work shares with training,
garbage collections that its objects bring forward, and framework code that runs because
a hook is there (``MonitoredSession`` calling one more hook). The wall-time ratios next to
it in each benchmark are the check on it.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

THREAD_PREFIX = "autolog"


def background_cpu_by_thread(prefix: str = THREAD_PREFIX) -> dict[threading.Thread, float]:
    """CPU seconds used so far by each live thread whose name starts with ``prefix``."""
    used = {}
    for thread in threading.enumerate():
        if thread.ident is None or not thread.name.startswith(prefix):
            continue
        try:
            used[thread] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, ValueError):  # the thread ended since it was listed
            continue
    return used


def background_cpu_since(
    earlier: dict[threading.Thread, float], prefix: str = THREAD_PREFIX
) -> float:
    """CPU seconds autolog's threads used since ``earlier`` (`background_cpu_by_thread`).

    A thread that started since counts from zero. One that ended since is left out, with
    what it used after ``earlier`` (autolog's warm-up thread can end during a process's
    first autologged training; a store's sender threads end only once no run uses it).
    """
    now = background_cpu_by_thread(prefix)
    return sum(seconds - earlier.get(thread, 0.0) for thread, seconds in now.items())


class HookTimer:
    """Adds up the time spent in the hook methods of some classes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._originals: list[tuple[type, str, Any]] = []

    def wrap(self, classes: Iterable[type], names: Callable[[str], bool]) -> None:
        """Time every method of ``classes`` (their own, not inherited) that ``names`` picks."""
        for cls in classes:
            for name, method in list(vars(cls).items()):
                if callable(method) and names(name):
                    self._originals.append((cls, name, method))
                    setattr(cls, name, self._timed(method))

    def unwrap(self) -> None:
        """Put the original methods back."""
        while self._originals:
            cls, name, method = self._originals.pop()
            setattr(cls, name, method)

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += clock() - began
                self.calls += 1

        return timed


@dataclass
class Marks:
    """Clock readings a user callback (or hook) takes as training begins and ends."""

    called: float = 0.0
    began: float = 0.0
    ended: float = 0.0
    returned: float = 0.0
    hooks_at_begin: float = 0.0
    hooks_at_end: float = 0.0
    hooks_at_return: float = 0.0
    background_used: float = 0.0  # CPU of autolog's threads while training ran


class Watch:
    """Takes `Marks` around one training; `returned` turns them into its `parts`."""

    def __init__(self, timer: HookTimer) -> None:
        self.timer = timer
        self.marks = Marks()
        self._hooks_at_call = 0.0
        self._background_at_begin: dict[threading.Thread, float] = {}

    def call(self) -> None:
        self._hooks_at_call = self.timer.seconds
        self.marks = Marks(called=time.perf_counter())

    def training_began(self) -> None:
        self.marks.began = time.perf_counter()
        self.marks.hooks_at_begin = self.timer.seconds - self._hooks_at_call
        self._background_at_begin = background_cpu_by_thread()

    def training_ended(self) -> None:
        self.marks.ended = time.perf_counter()
        self.marks.hooks_at_end = self.timer.seconds - self._hooks_at_call
        self.marks.background_used = background_cpu_since(self._background_at_begin)

    def returned(self) -> dict[str, float]:
        self.marks.returned = time.perf_counter()
        self.marks.hooks_at_return = self.timer.seconds - self._hooks_at_call
        return parts(self.marks)


def time_keras_hooks(timer: HookTimer) -> None:
    """Time the hook methods of the Keras plugin's callbacks (per epoch and per step)."""
    from autolog_keras import callback

    timer.wrap((callback._FitHooks, callback._StepHooks), lambda name: name.startswith("on_"))


def keras_marker(keras: Any, watch: Watch) -> Any:
    """A Keras callback (of the given ``keras`` module) telling ``watch`` when training runs.

    Pass it first among the user's callbacks: autolog adds its own after them.
    """

    class TrainingMarker(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            watch.training_began()

        def on_train_end(self, logs: Any = None) -> None:
            watch.training_ended()

    return TrainingMarker()


def parts(marks: Marks) -> dict[str, float]:
    """One training's wall time and the parts of autolog's own time in it (seconds)."""
    hooks_outside = marks.hooks_at_begin + (marks.hooks_at_return - marks.hooks_at_end)
    outside = (marks.began - marks.called) + (marks.returned - marks.ended)
    return {
        "wall": marks.returned - marks.called,
        "hooks_s": marks.hooks_at_return,
        "background_s": marks.background_used,
        # Hook time before training begins or after it ends is already in hooks_s.
        "outside_s": outside - hooks_outside,
    }


def own_parts(trained: dict[str, float], baseline_outside_s: float) -> dict[str, float]:
    """The parts of autolog's own time in ``trained`` (seconds), given a training without
    autolog's time outside training.

    An outside time below the baseline's counts as none rather than as a saving.
    """
    return {
        "hooks": trained["hooks_s"],
        "background": trained["background_s"],
        "outside": max(0.0, trained["outside_s"] - baseline_outside_s),
    }


def own_seconds(trained: dict[str, float], baseline_outside_s: float) -> float:
    """autolog's own time in ``trained``: the sum of its `own_parts`."""
    return sum(own_parts(trained, baseline_outside_s).values())


def own_ratio(trained: dict[str, float], baseline_outside_s: float) -> float:
    """``wall / (wall - own)``: the training's time against its time without autolog's."""
    wall = trained["wall"]
    return wall / (wall - own_seconds(trained, baseline_outside_s))


def median_parts(fits: Iterable[tuple[dict[str, float], float]]) -> dict[str, float]:
    """The median of each part of autolog's own time (seconds) over (training, baseline
    outside) pairs; the baseline is what `own_seconds` takes."""
    each = [own_parts(fit, base) for fit, base in fits]
    medians = {name: statistics.median(p[name] for p in each) for name in each[0]}
    return {**medians, "total": statistics.median(sum(p.values()) for p in each)}
