"""A throwaway PostgreSQL server on 127.0.0.1, for tests that need MLflow's production store.

    if postgres_available():
        with PostgresServer() as pg:
            pg.uri   # postgresql+psycopg2://mlflow:<password>@127.0.0.1:<port>/mlflow

The data directory, the unix socket and the log live in one temp folder that is removed on
:meth:`PostgresServer.stop`. ``postgres`` refuses to run as root, so when the tests run as
root every server command runs as the ``postgres`` OS user (through ``runuser``) and the
temp folder is handed to that user. The server is stopped with ``pg_ctl stop -m fast`` and,
if that does not work, by its own pid (read from ``postmaster.pid``), never by name.

The URI names the driver (``postgresql+psycopg2``): SQLAlchemy 2.1 made ``psycopg`` (v3)
the default driver of plain ``postgresql://`` URIs, and MLflow's SQL store only needs one
of the two; the test environment installs ``psycopg2-binary``.

Where PostgreSQL lives: ``$AUTOLOG_TEST_PG_BIN`` if set, else the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's layout), else ``pg_ctl`` on ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.mlflow_server import free_port

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir", "postgres_available"]

BIN_ENV = "AUTOLOG_TEST_PG_BIN"
_TOOLS = ("initdb", "pg_ctl", "postgres")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL (or the driver MLflow needs for it) is not installed here."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    candidates: list[str] = []
    if os.environ.get(BIN_ENV):
        candidates.append(os.environ[BIN_ENV])
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        path = Path(candidate)
        if all(os.access(path / tool, os.X_OK) for tool in _TOOLS):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why a PostgreSQL-backed MLflow cannot run here (``None``: it can)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install Debian's "
            f"'postgresql' package or set {BIN_ENV}"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is not available to drop to the postgres user"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return (
            "the PostgreSQL driver for MLflow's SQL store is missing: pip install psycopg2-binary"
        )
    return None


def postgres_available() -> bool:
    """Whether :class:`PostgresServer` can start here (see :func:`unavailable_reason`)."""
    return unavailable_reason() is None


class PostgresServer:
    """One PostgreSQL cluster in a temp folder, listening on 127.0.0.1 only.

    Args:
        database: Database created for the caller (MLflow creates its tables in it).
        user: Superuser name; the password is random and only in :attr:`uri`.
        port: TCP port (default: a free one).
        startup_timeout: Seconds ``pg_ctl start`` may take.
    """

    def __init__(
        self,
        *,
        database: str = "mlflow",
        user: str = "mlflow",
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise PostgresUnavailable(reason)
        self.bin_dir = find_bin_dir()
        assert self.bin_dir is not None
        self.database = database
        self.user = user
        self.password = secrets.token_hex(12)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.root: Path | None = None
        self._pid: int | None = None

    # -- addresses --

    @property
    def uri(self) -> str:
        """SQLAlchemy URI of the database, with the driver MLflow should use."""
        return (
            f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    @property
    def dsn(self) -> str:
        """libpq URI (no driver suffix), e.g. for ``psycopg2.connect``."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._pid

    @property
    def running(self) -> bool:
        if self._pid is None:
            return False
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    # -- running commands as the right user --

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_owner(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def log_text(self) -> str:
        if self.root is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.root / "postgres.log").read_text(errors="replace")
        return ""

    # -- lifecycle --

    def start(self) -> PostgresServer:
        if self.running:
            return self
        assert self.bin_dir is not None
        self.root = Path(tempfile.mkdtemp(prefix="autolog-pg-"))
        os.chmod(self.root, 0o700)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if os.geteuid() == 0:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            initdb = self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "-A",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                timeout=120,
            )
            if initdb.returncode != 0:
                raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.root}",  # the unix socket stays in our folder
                    "-c max_connections=200",
                    # A test database: durability across OS crashes is not needed.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            started = self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.root / "postgres.log"),
                    "-w",
                    "-t",
                    str(int(self.startup_timeout)),
                    "-o",
                    options,
                    "start",
                ],
                timeout=self.startup_timeout + 30,
            )
            self._pid = self._read_pid()
            if started.returncode != 0 or self._pid is None:
                raise RuntimeError(
                    f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n"
                    f"{self.log_text()[-3000:]}"
                )
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        return None

    def _create_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                connection = psycopg2.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=self.user,
                    password=self.password,
                    dbname="postgres",
                    connect_timeout=5,
                )
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; if the server is still there, signal its pid. Idempotent."""
        if self.root is None:
            return
        if self.data_dir.exists() and self.running:
            assert self.bin_dir is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "20",
                        "stop",
                    ],
                    timeout=40,
                )
        self._kill_by_pid()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self._pid = None

    def _kill_by_pid(self) -> None:
        pid = self._pid
        if pid is None:
            return
        for signum, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if not self.running:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            deadline = time.monotonic() + wait
            while self.running and time.monotonic() < deadline:
                time.sleep(0.1)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
