"""The own-time measure the benchmarks and the fault cases report (`tests.support.own_time`)."""

from __future__ import annotations

import threading
import time

import pytest

from autolog import warmup
from tests.support import own_time


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_parts_keep_hook_time_out_of_the_time_outside_training() -> None:
    marks = own_time.Marks(
        called=10.0,
        began=10.5,  # 0.5 s before training, 0.1 s of it in hooks
        ended=12.5,  # 2.0 s of training, 0.3 s more in hooks
        returned=12.8,  # 0.3 s after training, 0.05 s more in hooks
        hooks_at_begin=0.1,
        hooks_at_end=0.4,
        hooks_at_return=0.45,
        background_used=0.2,
    )
    parts = own_time.parts(marks)
    assert parts["wall"] == pytest.approx(2.8)
    assert parts["hooks_s"] == pytest.approx(0.45)
    assert parts["background_s"] == pytest.approx(0.2)
    assert parts["outside_s"] == pytest.approx(0.8 - 0.15)


def test_own_ratio_counts_only_the_outside_time_beyond_the_baseline() -> None:
    trained = {"wall": 2.0, "hooks_s": 0.05, "background_s": 0.05, "outside_s": 0.3}
    assert own_time.own_seconds(trained, baseline_outside_s=0.2) == pytest.approx(0.2)
    assert own_time.own_ratio(trained, baseline_outside_s=0.2) == pytest.approx(2.0 / 1.8)
    # Less time outside than the baseline is noise, not a saving.
    assert own_time.own_seconds(trained, baseline_outside_s=0.5) == pytest.approx(0.1)


def test_hook_timer_times_the_chosen_methods_and_puts_them_back() -> None:
    class Hooks:
        def on_step(self) -> str:
            time.sleep(0.02)
            return "stepped"

        def helper(self) -> str:
            time.sleep(0.02)
            return "helped"

    original = Hooks.__dict__["on_step"]
    timer = own_time.HookTimer()
    timer.wrap([Hooks], lambda name: name.startswith("on_"))
    hooks = Hooks()
    assert hooks.on_step() == "stepped"
    assert hooks.on_step() == "stepped"
    assert hooks.helper() == "helped"
    assert timer.calls == 2
    assert timer.seconds >= 0.04
    timer.unwrap()
    assert Hooks.__dict__["on_step"] is original


# Counted under a prefix of their own: autolog threads of earlier tests may still be alive.
TEST_THREADS = "autolog-test-"


def test_background_time_is_the_cpu_of_autologs_threads_only() -> None:
    def run(name: str) -> float:
        before = own_time.background_cpu_by_thread(TEST_THREADS)
        spun, done = threading.Event(), threading.Event()

        def work() -> None:
            _spin(0.1)
            spun.set()
            done.wait()  # alive, so that its CPU time can still be read

        thread = threading.Thread(target=work, name=name, daemon=True)
        thread.start()
        assert spun.wait(60)
        used = own_time.background_cpu_since(before, TEST_THREADS)
        done.set()
        thread.join()
        return used

    assert run("autolog-test-worker") >= 0.09
    assert run("someone-elses-worker") == 0.0
    # What a training counts by default: the threads autolog itself names.
    assert warmup.THREAD_NAME.startswith(own_time.THREAD_PREFIX)


def test_background_time_leaves_out_a_thread_that_ended_and_counts_a_new_one() -> None:
    spun, done = threading.Event(), threading.Event()

    def work() -> None:
        _spin(0.05)
        spun.set()
        done.wait()

    ending = threading.Thread(target=work, name="autolog-test-ending", daemon=True)
    ending.start()
    assert spun.wait(60)
    earlier = own_time.background_cpu_by_thread(TEST_THREADS)
    done.set()
    ending.join()
    spun.clear()
    done.clear()
    starting = threading.Thread(target=work, name="autolog-test-starting", daemon=True)
    starting.start()
    assert spun.wait(60)
    used = own_time.background_cpu_since(earlier, TEST_THREADS)
    done.set()
    starting.join()
    # The new thread's 0.05 s, not less for the one that ended with 0.05 s behind it.
    assert used >= 0.045
