"""The state every part of the batching engine shares, and the sender threads' endpoint.

`EngineCore` holds the engine's state (runs, endpoints, the lock, the flusher's wake-up
event, what was left in or lost from run logs) and declares what its parts ask of one
another; `Endpoint` is the pool of sender threads for one tracking store.

Which thread owns what (see `autolog.batching.state.RunState` for a run's fields): callers
touch only their logger's inbox (a ``deque``: appends are atomic) and never take a lock;
operation queues and in-flight counts are guarded by `EngineCore.lock`; the validation
state, the builder and the records of the current pass belong to the flusher thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import env
from autolog.batching.state import (
    Op,
    RunState,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient


_worker = threading.local()


def in_worker_thread() -> bool:
    return bool(getattr(_worker, "active", False))


class Endpoint:
    """Sender threads for one client (one tracking store)."""

    def __init__(self, engine: EngineCore, make_client: Callable[[], MlflowClient]) -> None:
        self.engine = engine
        self._make_client = make_client
        self._client: MlflowClient | None = None
        self._client_lock = threading.Lock()
        self.tasks: queue.SimpleQueue[tuple[RunState, Op] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def client(self) -> MlflowClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def ensure_threads(self, count: int) -> None:
        while len(self.threads) < min(count, 16):
            thread = threading.Thread(
                target=self.engine.sender_loop,
                args=(self,),
                name=f"autolog-sender-{len(self.threads)}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Let each thread finish the task it holds, then exit.

        Called once no run uses this store any more: a long-lived process that logs to
        many stores (or through many clients) would otherwise keep idle threads for each
        of them for good. A later run of the same store makes a new endpoint.
        """
        for _ in self.threads:
            self.tasks.put(None)


class EngineCore:
    """The engine's state, and the methods its parts call on one another.

    Which part owns what: `autolog.batching.inbox` (validating what callers enqueued),
    `autolog.batching.runlog` (the run log, its acks, spooling), `autolog.batching.scheduler`
    (which operation goes out when), `autolog.batching.senders` (the sender threads) and
    `autolog.batching.lifecycle` (exit, fork). `autolog.batching.flusher.Engine` is all of
    them together, with the flusher thread's loop. The stubs below name what one part asks
    of another; the part that owns each defines it.
    """

    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.runs: list[RunState] = []
        self.endpoints: dict[tuple[Any, ...], Endpoint] = {}
        self.thread: threading.Thread | None = None
        self.exiting = False
        self.left_in_spool: dict[Path, tuple[int, int]] = {}  # closed files: (values, artifacts)
        # What neither the store nor the spool took, by spool dir: (values, artifacts, why).
        self.lost: dict[Path, tuple[int, int, str]] = {}

    def is_exiting(self) -> bool:
        return self.exiting

    def register(self, run: RunState) -> None:
        with self.lock:
            self.runs.append(run)
        self.ensure_started(run)

    def nudge(self, run: RunState) -> None:
        """Called by a logger when its inbox is long, or it needs an answer (flush...)."""
        if run.wake_at == 0:
            run.wake_at = run.wake_every
            self.ensure_started(run)
        else:
            # Until the flusher drains, further appends need not wake it again.
            run.wake_at = len(run.inbox) + run.wake_every
        self.wake.set()

    def ensure_started(self, run: RunState) -> None:
        with self.lock:
            endpoint = self.endpoints.get(run.endpoint_key)
            if endpoint is None:
                endpoint = self.endpoints[run.endpoint_key] = Endpoint(self, run.make_client)
            endpoint.ensure_threads(run.max_in_flight)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._flusher_loop, name="autolog-flusher", daemon=True
                )
                self.thread.start()

    def _internal_error(self, run: RunState, where: str, exc: BaseException) -> None:
        run.errors.append(exc)
        if not env.testing():
            run.reporter.problem(
                f"internal:{where}",
                f"autolog's batching layer failed while {where} ({type(exc).__name__}: {exc}); "
                "please report this bug.",
            )

    # -- provided by the parts --

    def _log_pass(self, run: RunState, new_ops: list[Op]) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _cut(self, run: RunState, new_ops: list[Op]) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _log_control(self, run: RunState, op: Op, new_ops: list[Op]) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _pump(self, run: RunState) -> None:
        raise NotImplementedError  # autolog.batching.scheduler

    def _enter_spooling(self, run: RunState, reason: str) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _spool_op(self, run: RunState, op: Op, values: int | None = None) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _close_spool(self, run: RunState) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _finish(self, run: RunState, op: Op) -> None:
        raise NotImplementedError  # autolog.batching.scheduler

    def _complete(self, run: RunState, op: Op) -> None:
        raise NotImplementedError  # autolog.batching.runlog

    def _append_to_log(
        self, run: RunState, record: dict[str, Any] | None, new_ops: list[Op] | None
    ) -> int:
        raise NotImplementedError  # autolog.batching.runlog

    @staticmethod
    def _control_record(op: Op) -> dict[str, Any] | None:
        raise NotImplementedError  # autolog.batching.runlog

    def _flusher_loop(self) -> None:
        raise NotImplementedError  # autolog.batching.flusher

    def sender_loop(self, endpoint: Endpoint) -> None:
        raise NotImplementedError  # autolog.batching.senders
