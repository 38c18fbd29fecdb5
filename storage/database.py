"""The asyncpg pool, with transactions that every store call joins.

A use case that writes through several stores opens `async with db.transaction():`; every
`db.fetch*`/`db.execute*` call made inside it (in the same task) runs on that transaction's
connection, found through a ContextVar. Outside a transaction each call takes a pooled
connection for just that statement. Spawn no tasks inside a transaction: they would not see it.

Each statement's time (waiting for a pooled connection included: what the caller waits) goes
into `query_latency`, and `pool_usage()` says how busy the pool is, for /metrics.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any

import asyncpg
import orjson

from homeserver.errors import DatabaseUnavailable
from homeserver.stats import Latency

logger = logging.getLogger(__name__)

_current_connection: contextvars.ContextVar[asyncpg.Connection | None] = contextvars.ContextVar(
    "chatgo_db_connection", default=None
)
_after_commit: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = contextvars.ContextVar(
    "chatgo_after_commit", default=None
)


# What a database that is down, restarting or cut off raises: connecting is refused (OSError,
# "the database system is starting up / shutting down"), or the connection dies under a
# statement. Turned into DatabaseUnavailable (503). Query and programming errors are not here.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def _unavailable(err: BaseException, connected: bool) -> DatabaseUnavailable | None:
    """DatabaseUnavailable (logged) for an error that means the database cannot be reached or
    the connection died; None for others (an OSError once connected is the caller's own)."""
    if isinstance(err, OSError) and not isinstance(err, _CONNECTION_LOST) and connected:
        return None
    logger.warning("database unavailable: %s", err or type(err).__name__)
    return DatabaseUnavailable()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSONB columns travel as Python objects, encoded with orjson both ways.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
        format="text",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Run on each return to the pool instead of asyncpg's default reset, which costs a round
    trip (RESET ALL, UNLISTEN *, CLOSE ALL, unlock) per query. Our code leaves no session
    state behind: open transactions are rolled back by asyncpg before this runs, LISTEN is
    undone by `listen`, and the one session advisory lock (migrations) is released by its owner."""


class Database:
    """One connection pool for the whole process."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.query_latency = Latency()

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session,
            # Statements are prepared per connection; keep the cache for the hot queries.
            statement_cache_size=512,
        )
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    def pool_usage(self) -> tuple[int, int, int]:
        """(open connections, connections in use, the most the pool may open)."""
        size = self._pool.get_size()
        return size, size - self._pool.get_idle_size(), self._pool.get_max_size()

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; a database that cannot be reached, or a connection that dies
        under the block, raises DatabaseUnavailable (503). An OSError of the block's own work
        (a file, a socket) after the connection was had passes unchanged."""
        connected = False
        try:
            async with self._pool.acquire() as conn:
                connected = True
                yield conn
        except (*_CONNECTION_LOST, OSError) as err:
            if (lost := _unavailable(err, connected)) is None:
                raise
            raise lost from err

    async def _statement(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        """Run one statement (`method` of asyncpg's Connection) on the ambient transaction's
        connection or a pooled one (as `_acquire`: a lost database raises DatabaseUnavailable),
        and record its time. A plain coroutine rather than async context managers: it runs for
        every query, and the generator-based managers cost more than the rest of our wrapping."""
        start = perf_counter()
        try:
            conn = _current_connection.get()
            if conn is not None:
                return await getattr(conn, method)(query, *args)
            connected = False
            try:
                async with self._pool.acquire() as conn:
                    connected = True
                    return await getattr(conn, method)(query, *args)
            except (*_CONNECTION_LOST, OSError) as err:
                if (lost := _unavailable(err, connected)) is None:
                    raise
                raise lost from err
        finally:
            self.query_latency.observe(perf_counter() - start)

    @contextlib.asynccontextmanager
    async def pinned_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of our own for a block that needs session state (locks, LISTEN)."""
        async with self._pool.acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """Run the block in one transaction; nested calls join the outer one."""
        outer = _current_connection.get()
        if outer is not None:
            yield outer
            return
        callbacks: list[Callable[[], Awaitable[None]]] = []
        async with self._acquire() as conn:
            token = _current_connection.set(conn)
            after_token = _after_commit.set(callbacks)
            try:
                async with conn.transaction():
                    yield conn
            finally:
                _current_connection.reset(token)
                _after_commit.reset(after_token)
        for callback in callbacks:
            await callback()

    async def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` once the ambient transaction has committed (now, outside one).
        For work that must not be seen before the rows it announces, e.g. stream positions."""
        pending = _after_commit.get()
        if pending is None:
            await callback()
        else:
            pending.append(callback)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._statement("fetch", query, args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._statement("fetchrow", query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._statement("fetchval", query, args)

    async def execute(self, query: str, *args: Any) -> str:
        return await self._statement("execute", query, args)

    async def executemany(self, query: str, args: Sequence[Sequence[Any]]) -> None:
        await self._statement("executemany", query, (args,))

    @contextlib.asynccontextmanager
    async def listen(self, channel: str, callback: Callable[[str], Awaitable[None] | None]) -> AsyncIterator[None]:
        """Hold a dedicated connection that LISTENs on `channel` for as long as the block runs."""
        conn = await self._pool.acquire()

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            result = callback(payload)
            if result is not None:
                import asyncio

                asyncio.ensure_future(result)

        await conn.add_listener(channel, on_notify)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await conn.remove_listener(channel, on_notify)
            await self._pool.release(conn)
