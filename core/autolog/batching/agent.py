"""The delivery agent: a small process that outlives the training process and delivers its logs.

Every run's values are appended to its run log (`autolog.batching.spool`) before they are
sent. If the training process dies (SIGKILL, an OOM kill, ``os._exit``, a preempted node),
what it had not yet delivered is in those logs, and the agent delivers it: nobody has to
run ``autolog sync``.

The training process starts the agent lazily, when its first run log is created, with
spawn/exec (never fork: a forked copy of a process running TensorFlow is not safe to use)
in a session of its own, so a Ctrl-C aimed at the training does not reach it. It tells the
agent, over a pipe, which logs to watch. The agent reads the pipe and does nothing else
(no CPU, no MLflow import) until the pipe ends, which is when the training process is gone,
whichever way it went. Then, for each watched log that still exists:

1. it takes the log's lock (released by the kernel with the dead writer);
2. if the training process created the run and never ended it, it appends the run's end:
   ``KILLED``, at the moment the process was found gone (a process that ends normally or
   with an unhandled exception ends its runs itself, ``FINISHED`` or ``FAILED``);
3. it delivers what is not yet acknowledged, exactly as ``autolog sync`` would, retrying
   while the store is down for up to ``AUTOLOG_AGENT_PATIENCE`` seconds (default one
   hour), and removes the delivered log.

A process that ends normally has delivered and removed its logs by then: the agent finds
nothing and exits. Logs whose writer and agent are both gone (found in a watched spool
folder, unlocked, written by a process that no longer exists) are delivered by the next
agent, in a thread of its own; each gets one attempt per request, as their store may be
gone for good (``autolog sync`` is there for those).

`AgentLink` is the training process's side. ``AUTOLOG_AGENT=0`` turns the agent off:
delivery is then the training process's alone, as are the logs it leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from autolog import env, safety

if TYPE_CHECKING:
    from autolog.batching.policy import BatchPolicy

__all__ = ["AGENT", "AgentLink", "main"]

#: The environment variable that tells an agent which process it serves.
PARENT_ENV: Final = "AUTOLOG_AGENT_PARENT"
_ORPHAN_MIN_AGE: Final = 2.0  # seconds: a log younger than this may be being created
_BUSY_WAIT: Final = 30.0  # seconds to wait for a log's lock (a forked child may hold it)


class AgentLink:
    """The training process's handle on its delivery agent (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.failure: str | None = None  # why there is no agent
        self._reported = False
        self._watched: set[Path] = set()

    @property
    def pid(self) -> int | None:
        """The agent's process id, while it runs."""
        return self.process.pid if self.process is not None and self.alive() else None

    def alive(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    def watch(self, path: Path, policy: BatchPolicy | None = None) -> None:
        """Have the agent deliver ``path`` should this process die (starts it if needed)."""
        if not env.agent_enabled():
            return
        with self._lock:
            if self.process is None and self.failure is None:
                self._start()
            stream = self.process.stdin if self.process is not None else None
            if stream is None or path in self._watched:
                return
            try:
                stream.write(f"watch {path}\n".encode())
                stream.flush()
            except (OSError, ValueError) as exc:
                self._lost(f"{type(exc).__name__}: {exc}")
                return
            self._watched.add(path)

    def check(self) -> None:
        """Warn once if the agent has died; called now and then by the flusher."""
        process = self.process
        if process is None or self._reported:
            return
        code = process.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            with self._lock:
                self._lost(f"it ended ({how})")

    def _start(self) -> None:
        executable = sys.executable
        if not executable:
            self._failed("there is no Python executable to run it with (sys.executable)")
            return
        environment = dict(os.environ)
        environment[PARENT_ENV] = str(os.getpid())
        environment.pop(env.AUTOLOG_TESTING, None)  # nobody would see it raise
        stderr = _agent_stderr()
        try:
            self.process = subprocess.Popen(
                [executable, "-c", "from autolog.batching.agent import main; main()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=environment,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
        finally:
            if not isinstance(stderr, int):
                stderr.close()  # the agent has its own copy; this process needs none

    def _failed(self, why: str) -> None:
        self.failure = why
        if not self._reported:
            self._reported = True
            safety.warn(
                f"autolog: could not start the delivery agent ({why}). Logging goes on; "
                "should this process die, what it had not delivered waits in its run log "
                "for `autolog sync`.",
                once_key=("agent", "start"),
            )

    def _lost(self, why: str) -> None:
        """The agent is gone (under ``_lock``): say so once, carry on without it."""
        self.failure = why
        if self._reported:
            return
        self._reported = True
        pid = self.process.pid if self.process is not None else "?"
        safety.warn(
            f"autolog: the delivery agent (pid {pid}) stopped: {why}. Training and "
            "logging go on; should this process die, what it had not delivered waits in "
            "its run log for `autolog sync`.",
            once_key=("agent", "lost"),
        )

    def reset_after_fork(self) -> None:
        """In a forked child: let go of the parent's agent (the child starts its own)."""
        process = self.process
        if process is not None and process.stdin is not None:
            # The parent's agent must see the pipe end when the parent dies, not when
            # this child does.
            with contextlib.suppress(OSError):
                os.close(process.stdin.fileno())
            process.stdin = None
            process.returncode = 0  # not our child: never wait for it
        self.__init__()  # type: ignore[misc]


def _agent_stderr() -> IO[bytes] | int:
    """Where the agent's own messages go: a private log beside the spool, else nowhere."""
    try:
        directory = env.spool_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(
            directory / f"agent-{os.getpid()}.log",
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o600,
        )
        return os.fdopen(fd, "ab")
    except OSError:
        return subprocess.DEVNULL


AGENT = AgentLink()


# -- the agent process --------------------------------------------------------------------


def main() -> None:
    """The agent's entry point: watch until the training process is gone, then deliver."""
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is not for us
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    watched: list[Path] = []
    orphan_threads: list[threading.Thread] = []
    seen_dirs: set[Path] = set()
    for raw in sys.stdin.buffer:
        command, _, argument = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
        if command != "watch" or not argument:
            continue
        path = Path(argument)
        watched.append(path)
        if path.parent not in seen_dirs:
            seen_dirs.add(path.parent)
            thread = threading.Thread(
                target=_deliver_orphans, args=(path.parent, parent), daemon=True
            )
            thread.start()
            orphan_threads.append(thread)
    gone_at = int(time.time() * 1000)
    left = [path for path in dict.fromkeys(watched) if path.exists()]
    if left:
        _deliver_left(left, gone_at)
    for thread in orphan_threads:
        thread.join()
    _remove_empty_log(parent)


def _remove_empty_log(parent: int) -> None:
    with contextlib.suppress(OSError):
        log = env.spool_dir() / f"agent-{parent}.log"
        if log.stat().st_size == 0:
            log.unlink()


def _patience() -> float:
    try:
        return max(0.0, float(os.environ.get(env.AUTOLOG_AGENT_PATIENCE, "") or 3600.0))
    except ValueError:
        return 3600.0


def _deliver_left(paths: list[Path], gone_at: int) -> None:
    from autolog.batching.spool import SpoolBusy, SpoolFile, SpoolGone, read_spool

    unreachable: set[str] = set()
    for path in paths:
        deadline = time.monotonic() + _BUSY_WAIT
        while True:
            try:
                spool = SpoolFile.open(path)
                break
            except SpoolBusy:
                if time.monotonic() > deadline:
                    _say(f"{path} stays locked by another process; left for `autolog sync`")
                    spool = None
                    break
                time.sleep(0.2)
            except (SpoolGone, FileNotFoundError):
                spool = None
                break
        if spool is None:
            continue
        try:
            contents = read_spool(path)
            if contents.owns_run and not contents.has_end:
                spool.write_end("KILLED", gone_at)
            _deliver_one(spool, contents.header, unreachable, patience=_patience())
        except Exception as exc:
            _say(f"could not deliver {path} ({type(exc).__name__}: {exc}); left for `autolog sync`")
            with contextlib.suppress(OSError):
                spool.close()


def _deliver_one(
    spool: object, header: dict[str, object], unreachable: set[str], *, patience: float
) -> bool:
    """Deliver one opened log; remove it if all of it went. Whether it did."""
    from autolog.batching import sync, transport
    from autolog.batching.errors import Reporter
    from autolog.batching.spool import SpoolFile

    assert isinstance(spool, SpoolFile)
    uri = str(header.get("tracking_uri") or "")
    if not uri:
        _say(f"{spool.path} names no tracking store; left for `autolog sync --tracking-uri`")
        spool.close()
        return False
    client = transport.client_for(uri, 30.0)
    retry = transport.Retry(
        timeout=patience,
        initial_delay=0.5,
        max_delay=30.0,
        abort=threading.Event(),
        single_attempt=lambda: uri in unreachable,
    )
    delivery = sync.deliver(spool, client, retry, Reporter(f"run log {spool.path.name}"))
    if delivery.complete:
        try:
            spool.close(delete=True)
        except OSError as exc:
            _say(f"delivered {spool.path} but could not remove it ({exc})")
        return True
    if delivery.failure and "unreachable" in delivery.failure:
        unreachable.add(uri)
    _say(f"{spool.path}: {delivery.failure}; left for `autolog sync {spool.path.parent}`")
    spool.close()
    return False


def _deliver_orphans(directory: Path, parent: int) -> None:
    """Deliver the logs in ``directory`` that nobody holds and whose writer is gone."""
    from autolog.batching.spool import SUFFIX, SpoolBusy, SpoolFile, SpoolGone, read_spool

    with contextlib.suppress(Exception):
        candidates = sorted(directory.glob(f"*{SUFFIX}"))
        unreachable: set[str] = set()
        for path in candidates:
            try:
                if time.time() - path.stat().st_mtime < _ORPHAN_MIN_AGE:
                    continue
                header = read_spool(path).header
            except (OSError, ValueError):
                continue
            writer = header.get("pid")
            if writer == parent or (isinstance(writer, int) and _alive(writer)):
                continue  # its writer lives and delivers it (or its agent will)
            try:
                spool = SpoolFile.open(path)
            except (SpoolBusy, SpoolGone, OSError):
                continue
            try:
                # One attempt per request: its store may be gone for good.
                _deliver_one(spool, header, unreachable, patience=0.0)
            except Exception as exc:
                _say(f"could not deliver {path} ({type(exc).__name__}: {exc})")
                with contextlib.suppress(OSError):
                    spool.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _say(message: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"autolog agent: {message}\n")
        sys.stderr.flush()
