"""A throwaway PostgreSQL server for the project's own tests.

:class:`PostgresServer` creates a fresh cluster in a temporary directory with ``initdb``,
starts ``postgres`` on a free port of 127.0.0.1 with durability switched off (nothing in a
throwaway cluster is worth an fsync), waits until it accepts connections and, on
:meth:`PostgresServer.stop`, kills it and deletes every file it wrote::

    from tests.support.postgres import PostgresServer

    with PostgresServer() as pg:
        url = pg.create_database("orders")  # postgresql+asyncpg://postgres@127.0.0.1:PORT/orders
        ...

It needs the PostgreSQL server binaries (``initdb``, ``postgres``, ``pg_isready``, ``psql``)
on the machine, not a running PostgreSQL service. On Debian/Ubuntu ``apt-get install
postgresql`` is enough (``scripts/system-deps.sh`` in the awaithumans repository does it).

PostgreSQL refuses to run as root. When the current process is root, the cluster belongs to
the ``postgres`` system user and the server binaries run as that user; otherwise they run as
the current user.

Only the standard library is used, so importing this module costs nothing and pulls in
neither the awaithumans server nor a database driver.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "PostgresNotInstalledError",
    "PostgresServer",
    "PostgresServerError",
    "find_postgres_bindir",
]

#: Directory-name prefix of every temporary cluster, so leftovers are recognisable.
TEMP_PREFIX = "awaithumans-pg-"
#: File in the temporary directory that records the pid of the Python process owning it.
_OWNER_FILE = "owner.pid"
#: Environment variable that points at a PostgreSQL ``bin`` directory, overriding discovery.
BINDIR_ENV = "AWAITHUMANS_PG_BINDIR"

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_REQUIRED_BINARIES = ("initdb", "postgres", "pg_isready", "psql")
# Identifiers we accept for databases: they need no escaping in SQL or in a URL.
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_INSTALL_HINT = (
    "Install PostgreSQL (on Debian/Ubuntu run scripts/system-deps.sh from the awaithumans "
    f"repository, or `apt-get install postgresql`), or set {BINDIR_ENV} to the directory "
    "holding initdb and postgres."
)

# Speed over durability: a throwaway cluster never needs to survive a crash.
_DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # JIT compilation only slows the short queries tests run.
    "jit": "off",
}


class PostgresServerError(RuntimeError):
    """The throwaway PostgreSQL server could not be created, started or used."""


class PostgresNotInstalledError(PostgresServerError):
    """The PostgreSQL server binaries are not installed on this machine."""


def _has_binaries(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _REQUIRED_BINARIES)


def _version_key(directory: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: prefer the newest major version.
    return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))


def find_postgres_bindir() -> Path:
    """Locate the directory holding the PostgreSQL server binaries.

    Looks, in order, at ``$AWAITHUMANS_PG_BINDIR``, ``pg_config --bindir``, the Debian layout
    ``/usr/lib/postgresql/<version>/bin`` (newest first) and finally ``initdb`` on ``PATH``
    (following symlinks, since shims on ``PATH`` often point into the real directory).

    Returns:
        A directory containing ``initdb``, ``postgres``, ``pg_isready`` and ``psql``.

    Raises:
        PostgresNotInstalledError: If no such directory exists.
    """
    explicit = os.environ.get(BINDIR_ENV)
    if explicit:
        path = Path(explicit)
        if _has_binaries(path):
            return path
        raise PostgresNotInstalledError(
            f"{BINDIR_ENV}={explicit} does not contain {', '.join(_REQUIRED_BINARIES)}. "
            f"{_INSTALL_HINT}"
        )

    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates.extend(sorted(debian, key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)

    for candidate in candidates:
        if _has_binaries(candidate):
            return candidate
    raise PostgresNotInstalledError(f"PostgreSQL server binaries not found. {_INSTALL_HINT}")


def _free_port() -> int:
    # The kernel picks an unused port; another process could take it before postgres binds
    # it, which start() handles by retrying with a new port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    # PGHOST, PGPORT, PGDATA, PGOPTIONS... from the caller's shell would silently point the
    # client tools at some other server or data directory.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to someone else
    return True


def _cmdline(pid: int) -> str | None:
    """The command line of a live process (Linux only); None when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Zombies keep their pid but have an empty command line; they hold no resources.
    return raw.replace(b"\0", b" ").decode(errors="replace") or None


def _reap_orphans(base: Path) -> None:
    """Stop and delete clusters whose owning Python process died without cleaning up.

    ``atexit`` does not run when a process is killed with SIGKILL (an OOM kill, a CI job
    timeout), which would leave a postgres and its files behind for good. Only directories
    with an owner file naming a dead process are touched, and a postmaster is signalled only
    after ``/proc`` confirms it still serves that very directory, so a recycled pid is never
    hit. Without ``/proc`` nothing can be confirmed and nothing is done.
    """
    if not Path("/proc/self/cmdline").exists():
        return
    for path in base.glob(TEMP_PREFIX + "*"):
        try:
            if path.is_symlink() or not path.is_dir():
                continue
            owner = int((path / _OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, unreadable, or still being set up by a live process
        if _pid_alive(owner):
            continue
        data_dir = path / "data"
        try:
            postmaster = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            postmaster = 0
        command = _cmdline(postmaster) if postmaster > 0 else None
        if command is not None and str(data_dir) in command:
            with contextlib.suppress(OSError):
                os.kill(postmaster, signal.SIGQUIT)
            deadline = time.monotonic() + 5
            while _cmdline(postmaster) is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            if _cmdline(postmaster) is not None:
                continue  # refuses to die; leave its files rather than pull them away
        shutil.rmtree(path, ignore_errors=True)


class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1, deleted again on :meth:`stop`.

    The cluster uses trust authentication for the superuser ``postgres`` and listens only on
    the loopback interface, so no password is involved. It is tuned for speed (``fsync``,
    ``synchronous_commit`` and ``full_page_writes`` are off) and allows 200 connections.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` yourself; a server
    that is never stopped is stopped when the interpreter exits.

    Attributes:
        host: Address the server listens on, always ``"127.0.0.1"``.
    """

    host: str = _HOST

    def __init__(
        self,
        *,
        port: int | None = None,
        bindir: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Configure the server; nothing runs until :meth:`start`.

        Args:
            port: TCP port to listen on. By default a free one is picked at start.
            bindir: Directory of the PostgreSQL binaries. By default
                :func:`find_postgres_bindir` locates it.
            base_dir: Where the temporary cluster directory is created. Defaults to the
                system temporary directory; when running as root it must be traversable by
                the ``postgres`` user.
            settings: Extra or overriding server settings (``postgresql.conf`` names).
            startup_timeout: Seconds to wait for the server to accept connections.
        """
        self._requested_port = port
        self._bindir = Path(bindir) if bindir is not None else None
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._settings = {**_DEFAULT_SETTINGS, **(settings or {})}
        self._startup_timeout = startup_timeout
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._port: int | None = None
        self._owner_pid: int | None = None
        self._resolved_bindir: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server process is up."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        """TCP port the server listens on.

        Raises:
            PostgresServerError: If the server has not been started.
        """
        if self._port is None:
            raise PostgresServerError("PostgresServer is not started; call start() first.")
        return self._port

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (inside the temporary directory).

        Raises:
            PostgresServerError: If the server has not been started.
        """
        return self._require_tmp() / "data"

    @property
    def temp_dir(self) -> Path:
        """The temporary directory holding the data directory, socket and log.

        Raises:
            PostgresServerError: If the server has not been started.
        """
        return self._require_tmp()

    def start(self) -> PostgresServer:
        """Create the cluster and start the server, returning once it accepts connections.

        Calling it on a running server does nothing.

        Returns:
            The server itself, so ``pg = PostgresServer().start()`` works.

        Raises:
            PostgresNotInstalledError: If the PostgreSQL binaries are missing.
            PostgresServerError: If ``initdb`` fails or the server does not come up within
                ``startup_timeout`` seconds; the message includes the server log.
        """
        with self._lock:
            if self.running:
                return self
            if self._proc is not None:
                self.stop()  # it died on its own; clean up before starting afresh
            bindir = self._bindir or find_postgres_bindir()
            if not _has_binaries(bindir):
                raise PostgresNotInstalledError(
                    f"{bindir} does not contain {', '.join(_REQUIRED_BINARIES)}. {_INSTALL_HINT}"
                )
            self._resolved_bindir = bindir
            run_as = self._run_as()
            base = self._base_dir or Path(tempfile.gettempdir())
            _reap_orphans(base)
            tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=base))
            self._tmp = tmp
            self._owner_pid = os.getpid()
            # Registered before anything is spawned, so even a failure half-way is cleaned up.
            atexit.register(self._stop_at_exit)
            try:
                (tmp / _OWNER_FILE).write_text(f"{self._owner_pid}\n")
                if run_as is not None:
                    os.chown(tmp, run_as.pw_uid, run_as.pw_gid)
                self._initdb(bindir, run_as)
                self._launch(bindir, run_as)
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Kill the server at once and delete the temporary directory.

        Uses PostgreSQL's immediate shutdown (SIGQUIT, what ``pg_ctl stop -m immediate``
        sends): nothing is flushed, which is fine since the data is deleted anyway. Open
        connections are cut. Safe to call more than once, or on a server never started.
        """
        with self._lock:
            proc, tmp = self._proc, self._tmp
            self._proc = self._tmp = self._port = self._owner_pid = None
            atexit.unregister(self._stop_at_exit)
            if proc is not None:
                _terminate(proc)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.running else "stopped"
        return f"<PostgresServer {state}>"

    # -- databases -------------------------------------------------------------------------

    def dsn(self, database: str = "postgres", *, driver: str | None = "asyncpg") -> str:
        """Connection URL of a database on this server.

        Args:
            database: Database name.
            driver: SQLAlchemy driver suffix. The default gives
                ``postgresql+asyncpg://postgres@127.0.0.1:PORT/DATABASE`` for
                ``create_async_engine``; ``None`` gives a plain ``postgresql://`` URL for
                ``asyncpg.connect``, ``psql`` or psycopg.

        Returns:
            The URL; no password is needed.

        Raises:
            PostgresServerError: If the server has not been started.
        """
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{_SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database.

        Args:
            name: Database name: letters, digits and underscores, not starting with a digit,
                at most 63 characters. Case is preserved.

        Returns:
            The database's async SQLAlchemy URL, as :meth:`dsn` gives it.

        Raises:
            ValueError: If ``name`` is not an acceptable name.
            PostgresServerError: If the database exists already or the server fails.
        """
        self._psql(f'CREATE DATABASE "{_check_name(name)}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, disconnecting any sessions still using it.

        Args:
            name: Database name, as given to :meth:`create_database`.

        Raises:
            ValueError: If ``name`` is not an acceptable name.
            PostgresServerError: If the server fails.
        """
        self._psql(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')

    # -- internals -------------------------------------------------------------------------

    def _require_tmp(self) -> Path:
        if self._tmp is None:
            raise PostgresServerError("PostgresServer is not started; call start() first.")
        return self._tmp

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        """The account the server binaries run as: ``postgres`` under root, else ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresNotInstalledError(
                "Running as root, but there is no 'postgres' user to run PostgreSQL as "
                f"(initdb refuses root). {_INSTALL_HINT}"
            ) from None

    def _spawn_kwargs(self, run_as: pwd.struct_passwd | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"env": _clean_env(), "cwd": self._require_tmp()}
        if run_as is not None:
            # Drop to the postgres user in the child itself (setgroups/setgid/setuid), rather
            # than through runuser/su: no extra process sits between us and the postmaster,
            # so the pid we hold is the server's own and signals reach it directly.
            kwargs.update(user=run_as.pw_uid, group=run_as.pw_gid, extra_groups=[])
            kwargs["env"]["HOME"] = run_as.pw_dir
            kwargs["env"]["USER"] = kwargs["env"]["LOGNAME"] = run_as.pw_name
        return kwargs

    def _initdb(self, bindir: Path, run_as: pwd.struct_passwd | None) -> None:
        argv = [
            str(bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            _SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            # The C locale avoids depending on which locales the machine has generated.
            "--locale",
            "C",
            # Skip fsyncing the new files: the cluster is thrown away anyway.
            "--no-sync",
        ]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=max(self._startup_timeout, 60.0),
            check=False,
            **self._spawn_kwargs(run_as),
        )
        if result.returncode != 0:
            raise PostgresServerError(
                f"initdb failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}".rstrip()
            )

    def _launch(self, bindir: Path, run_as: pwd.struct_passwd | None) -> None:
        tmp = self._require_tmp()
        log_path = tmp / "postgres.log"
        # Only a free port we picked can be retried; a port the caller asked for cannot.
        attempts = 1 if self._requested_port is not None else 5
        for attempt in range(1, attempts + 1):
            port = self._requested_port or _free_port()
            argv = [str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(port)]
            argv += ["-k", str(tmp)]  # unix socket next to the data, not in /var/run
            for key, value in self._settings.items():
                argv += ["-c", f"{key}={value}"]
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C at the terminal goes to us, not straight to
                    # the server, so shutdown stays in stop()'s hands.
                    start_new_session=True,
                    **self._spawn_kwargs(run_as),
                )
            self._proc, self._port = proc, port
            if self._wait_ready(bindir, proc, port):
                return
            log_text = log_path.read_text(errors="replace")
            _terminate(proc)
            self._proc = self._port = None
            port_taken = "could not bind" in log_text or "already in use" in log_text
            if port_taken and attempt < attempts:
                continue
            raise PostgresServerError(
                f"PostgreSQL did not start on {_HOST}:{port} within "
                f"{self._startup_timeout:g}s. Server log:\n{_tail(log_text)}"
            )

    def _wait_ready(self, bindir: Path, proc: subprocess.Popen[bytes], port: int) -> bool:
        """Wait until *our* postmaster accepts connections; False if it dies or time runs out.

        ``pg_isready`` alone cannot tell servers apart: if something else already listens on
        the port, it answers for it while our postmaster is failing to bind. So readiness is
        first read from ``postmaster.pid`` in our own data directory, where the postmaster
        records its pid, port and state (``ready`` once it accepts connections; the same
        signal ``pg_ctl start -w`` uses), and then confirmed over TCP with ``pg_isready``.
        """
        deadline = time.monotonic() + self._startup_timeout
        delay = 0.002
        pid_file = self.data_dir / "postmaster.pid"
        argv = [str(bindir / "pg_isready"), "-q", "-h", _HOST, "-p", str(port)]
        argv += ["-U", _SUPERUSER, "-d", "postgres", "-t", "2"]
        while True:
            if proc.poll() is not None:
                return False
            if _postmaster_ready(pid_file, proc.pid, port):
                ready = subprocess.run(
                    argv, env=_clean_env(), capture_output=True, timeout=10, check=False
                )
                # Exit status 0 means accepting connections. Check we are still alive, in
                # case the answer came from another server after ours exited.
                if ready.returncode == 0 and proc.poll() is None:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _psql(self, sql: str) -> None:
        port = self.port  # first, so an unstarted server fails with a clear message
        bindir = self._resolved_bindir or find_postgres_bindir()
        # psql over TCP as the trusted superuser works from any OS user, root included.
        argv = [str(bindir / "psql"), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", self.host, "-p", str(port), "-U", _SUPERUSER, "-d", "postgres"]
        argv += ["-c", sql]
        result = subprocess.run(
            argv, env=_clean_env(), capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise PostgresServerError(f"{sql!r} failed: {result.stderr.strip()}")

    def _stop_at_exit(self) -> None:
        # A forked child inherits this atexit hook; only the process that started the
        # server may stop it.
        if self._owner_pid == os.getpid():
            self.stop()


def _check_name(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(
            f"Invalid database name {name!r}: use letters, digits and underscores, "
            "not starting with a digit, at most 63 characters."
        )
    return name


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Immediate shutdown of a postmaster, escalating to SIGKILL if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _postmaster_ready(pid_file: Path, pid: int, port: int) -> bool:
    """Whether ``postmaster.pid`` says process ``pid`` is serving ``port`` and is ready."""
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return False  # not written yet
    # Lines: 1 pid, 2 data dir, 3 start time, 4 port, 5 socket dir, 6 listen address,
    # 7 shared memory key, 8 state (space-padded: "starting", "ready", "stopping", ...).
    return (
        len(lines) >= 8
        and lines[0].strip() == str(pid)
        and lines[3].strip() == str(port)
        and lines[7].strip() == "ready"
    )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"
