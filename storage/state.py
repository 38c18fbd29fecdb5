"""StateStore: reads state snapshots. Tables read: state_groups, state_group_entries
(both written by EventStore.persist, in the same statement as the events they describe).

A snapshot is resolved in one query: walk the parent chain up to its full copy and keep,
for each (type, state_key), the entry nearest to the snapshot.
"""

from __future__ import annotations

from storage.database import Database

_RESOLVE = """
WITH RECURSIVE chain(id, prev, n) AS (
    SELECT id, prev_group, 0 FROM state_groups WHERE id = $1
    UNION ALL
    SELECT g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
)
SELECT DISTINCT ON (e.type, e.state_key) e.type, e.state_key, e.event_id
FROM chain JOIN state_group_entries e ON e.group_id = chain.id
ORDER BY e.type, e.state_key, chain.n
"""


_RESOLVE_MANY = """
WITH RECURSIVE chain(root, id, prev, n) AS (
    SELECT id, id, prev_group, 0 FROM state_groups WHERE id = ANY($1::bigint[])
    UNION ALL
    SELECT c.root, g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
)
SELECT DISTINCT ON (chain.root, e.type, e.state_key) chain.root, e.type, e.state_key, e.event_id
FROM chain JOIN state_group_entries e ON e.group_id = chain.id
ORDER BY chain.root, e.type, e.state_key, chain.n
"""


class StateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def state_ids(self, group_id: int) -> dict[tuple[str, str], str]:
        rows = await self._db.fetch(_RESOLVE, group_id)
        return {(r["type"], r["state_key"]): r["event_id"] for r in rows}

    async def state_ids_of_groups(self, group_ids: list[int]) -> dict[int, dict[tuple[str, str], str]]:
        """state_ids of many snapshots in one query."""
        rows = await self._db.fetch(_RESOLVE_MANY, group_ids)
        out: dict[int, dict[tuple[str, str], str]] = {group_id: {} for group_id in group_ids}
        for r in rows:
            out[r["root"]][(r["type"], r["state_key"])] = r["event_id"]
        return out

    async def chain_length(self, group_id: int) -> int:
        return await self._db.fetchval("SELECT chain_length FROM state_groups WHERE id = $1", group_id)
