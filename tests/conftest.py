"""Shared fixtures: a real PostgreSQL for the whole session, a fresh database per test.

The session starts one throwaway embedded cluster (as root it runs as an unprivileged
user), migrates a template database once, and each test that asks for `db` gets a new
database cloned from that template: cheap, isolated, and real. Set CHATGO_TEST_DATABASE_URL
to a server URL (postgresql://user@host:port/postgres) to use an existing server instead.
Tests that need no database never start the cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import yarl

from homeserver.config import Config

from homeserver.config_loading import config_from_dict
from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migrate import migrate

pytest_plugins = ["tests.server_fixtures"]

TEMPLATE = "chatgo_test_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    if url := os.environ.get("CHATGO_TEST_DATABASE_URL"):
        yield url
        return
    directory = Path(tempfile.mkdtemp(prefix="chatgo-test-pg-"))
    embedded = EmbeddedPostgres(directory / "data")
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    url = yarl.URL(server_url)
    # with_path drops the query, which holds the socket directory of the embedded cluster.
    return str(url.with_path("/" + name).with_query(url.query))


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> str:
    async def create() -> None:
        conn = await asyncpg.connect(pg_server_url, database="postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0 ENCODING \'UTF8\'')
        finally:
            await conn.close()
        db = await Database.connect(database_url(pg_server_url, TEMPLATE), min_size=1, max_size=1)
        try:
            await migrate(db)
        finally:
            await db.close()

    asyncio.run(create())
    return TEMPLATE


@pytest.fixture
async def db_url(pg_server_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"chatgo_test_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(pg_server_url, database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await conn.close()
    yield database_url(pg_server_url, name)
    conn = await asyncpg.connect(pg_server_url, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, min_size=1, max_size=5)
    try:
        yield database
    finally:
        await database.close()


def make_test_config(**overrides) -> Config:
    """A config for tests: cheap password hashing, no rate limiting unless asked."""
    raw = {
        "server_name": "test.local",
        "listeners": [{"port": 0, "resources": ["client"]}],
        "registration": {"enabled": True},
        "auth": {"argon2_time_cost": 1, "argon2_memory_cost_kib": 8, "argon2_parallelism": 1},
        "rate_limiting": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return config_from_dict(raw)
