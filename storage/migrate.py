"""Numbered schema migrations: `storage/migrations/NNNN_name.sql`, applied in order at start-up.

Each file runs in its own transaction and is recorded in `schema_version`. An advisory lock
keeps two processes starting on one database from migrating at the same time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from storage.database import Database

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every ChatGO process.
_MIGRATION_LOCK_KEY = 0x43_68_61_74_47_4F


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.iterdir()):
        match = _NAME.match(path.name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    return migrations


async def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return the versions applied."""
    applied: list[int] = []
    async with db.pinned_connection() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_version (
                       version INTEGER PRIMARY KEY,
                       name TEXT NOT NULL,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                   )"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_version")}
            for migration in available_migrations(directory):
                if migration.version in done:
                    continue
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                async with conn.transaction():
                    try:
                        await conn.execute(migration.path.read_text())
                    except Exception as exc:
                        raise RuntimeError(f"migration {migration.path.name} failed: {exc}") from exc
                    await conn.execute(
                        "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                        migration.version, migration.name,
                    )
                applied.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied
