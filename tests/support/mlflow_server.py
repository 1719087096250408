"""A real ``mlflow server`` subprocess on 127.0.0.1, for tests that need a tracking server.

    with MlflowServer(f"sqlite:///{tmp}/db.sqlite", tmp / "artifacts") as server:
        client = MlflowClient(server.url)
        server.kill()      # SIGKILL, like a crash
        server.restart()   # same port, same stores

The server runs in its own session (process group), so its uvicorn workers go with it:
``kill``/``stop`` signal that group, whose id is the server's own pid, and nothing else.
The port is a free one picked by the OS; ``restart`` reuses it, so clients keep working.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["MlflowServer", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class MlflowServer:
    """Start, kill, restart and stop one ``mlflow server`` process.

    Args:
        backend_store_uri: The server's ``--backend-store-uri`` (e.g. a SQLite file).
        artifacts_dir: Where the server stores artifacts (``--artifacts-destination``).
        workers: Uvicorn worker processes (fewer start faster).
        startup_timeout: Seconds to wait for ``/health`` to answer.
    """

    def __init__(
        self,
        backend_store_uri: str,
        artifacts_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        workers: int = 2,
        startup_timeout: float = 90.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifacts_dir = Path(artifacts_dir)
        self.port = port or free_port()
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="mlflow-server-", suffix=".log", delete=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    # -- lifecycle --

    def start(self) -> MlflowServer:
        if self.running:
            return self
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 30
        while not _port_is_free(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} is still busy")
            time.sleep(0.2)
        env = {**os.environ, **self.extra_env}
        env.pop("MLFLOW_TRACKING_URI", None)
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: the workers die with it
        )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"mlflow server exited at startup:\n{self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    healthy = response.status == 200
                if healthy:
                    self._warm_up(deadline)
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(
            f"mlflow server not healthy after {self.startup_timeout}s:\n{self.log_text()[-3000:]}"
        )

    def _warm_up(self, deadline: float) -> None:
        # /health answers before the tracking store is opened; the first API call opens
        # it (seconds). Pay that here, so callers do not mistake it for a slow server.
        url = f"{self.url}/api/2.0/mlflow/experiments/get?experiment_id=0"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=max(1.0, deadline - time.monotonic())):
                    return
            except urllib.error.HTTPError:
                return  # it answered: the store is open
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.2)

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # The group id is the server's own pid (start_new_session): only its workers.
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the server (and its workers), as a crash would."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reap_group()

    def _reap_group(self) -> None:
        # Workers may outlive the master by a moment; wait until the port is released.
        deadline = time.monotonic() + 15
        while not _port_is_free(self.port) and time.monotonic() < deadline:
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.1)

    def restart(self) -> MlflowServer:
        """Start again on the same port with the same stores."""
        if self.running:
            self.kill()
        self.process = None
        return self.start()

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        # Anything left in its group (a stuck worker) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reap_group()
        self.process = None

    def close(self) -> None:
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
