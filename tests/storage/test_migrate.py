"""Numbered migrations: recorded, idempotent, each in its own transaction."""

import pytest

from storage.migrate import available_migrations, migrate


async def test_template_has_every_migration_recorded(db):
    versions = [r["version"] for r in await db.fetch("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [m.version for m in available_migrations()]
    assert await migrate(db) == []  # nothing left to apply


async def test_failing_migration_leaves_nothing_behind(db, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE t_ok (x INT);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE t_broken (x INT); SELECT no_such_function();")
    await db.execute("DROP TABLE schema_version")
    with pytest.raises(RuntimeError, match="0002_broken.sql"):
        await migrate(db, tmp_path)
    # 0001 committed on its own; 0002 rolled back whole.
    assert await db.fetchval("SELECT to_regclass('t_ok') IS NOT NULL")
    assert not await db.fetchval("SELECT to_regclass('t_broken') IS NOT NULL")
    assert [r["version"] for r in await db.fetch("SELECT version FROM schema_version")] == [1]


async def test_transaction_is_ambient_and_rolls_back(db):
    await db.execute("CREATE TABLE t_tx (x INT)")
    with pytest.raises(ZeroDivisionError):
        async with db.transaction():
            await db.execute("INSERT INTO t_tx VALUES (1)")
            async with db.transaction():  # nested: joins the outer one
                await db.execute("INSERT INTO t_tx VALUES (2)")
            1 / 0
    assert await db.fetchval("SELECT count(*) FROM t_tx") == 0
    async with db.transaction():
        await db.execute("INSERT INTO t_tx VALUES (3)")
    assert await db.fetchval("SELECT count(*) FROM t_tx") == 1


async def test_jsonb_round_trips_as_python_objects(db):
    value = await db.fetchval("SELECT $1::jsonb", {"a": [1, "two", None], "b": {"c": True}})
    assert value == {"a": [1, "two", None], "b": {"c": True}}
