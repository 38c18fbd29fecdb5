"""StateStore: reads state snapshots. Tables read: state_groups, state_group_entries
(both written by EventStore.persist, in the same statement as the events they describe).

A snapshot is resolved in one query: walk the parent chain up to its full copy and keep,
for each (type, state_key), the entry nearest to the snapshot. The entries of each group of
the chain are read through a LATERAL subquery, so by the primary key (group_id, type,
state_key); its OFFSET 0 keeps the planner from flattening it into a plain join, which it
planned as a hash join over a sequential scan of every snapshot of every room (it cannot tell
how short the chain is): a read cost as much as all the state on the server. Now it costs
the chain's entries.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.database import Database

_CHAIN = """
WITH RECURSIVE chain(id, prev, n) AS (
    SELECT id, prev_group, 0 FROM state_groups WHERE id = $1
    UNION ALL
    SELECT g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
)
"""

# Every entry of the chain, farthest group first: the caller keeps the last entry of each key
# (the nearest). Sorting by the integer alone costs a fraction of DISTINCT ON's text sort.
_RESOLVE = _CHAIN + """
SELECT e.type, e.state_key, e.event_id
FROM chain CROSS JOIN LATERAL (
    SELECT s.type, s.state_key, s.event_id FROM state_group_entries s WHERE s.group_id = chain.id OFFSET 0
) e
ORDER BY chain.n DESC
"""

# Only the given keys ($2 types, $3 state keys, pairwise): one index probe per key and group.
_RESOLVE_KEYS = _CHAIN + """
SELECT DISTINCT ON (e.type, e.state_key) e.type, e.state_key, e.event_id
FROM chain CROSS JOIN LATERAL (
    SELECT s.type, s.state_key, s.event_id FROM state_group_entries s
    WHERE s.group_id = chain.id
      AND (s.type, s.state_key) IN (SELECT * FROM unnest($2::text[], $3::text[])) OFFSET 0
) e
ORDER BY e.type, e.state_key, chain.n
"""

_RESOLVE_MANY = """
WITH RECURSIVE chain(root, id, prev, n) AS (
    SELECT id, id, prev_group, 0 FROM state_groups WHERE id = ANY($1::bigint[])
    UNION ALL
    SELECT c.root, g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev
)
SELECT chain.root, e.type, e.state_key, e.event_id
FROM chain CROSS JOIN LATERAL (
    SELECT s.type, s.state_key, s.event_id FROM state_group_entries s WHERE s.group_id = chain.id OFFSET 0
) e
ORDER BY chain.n DESC
"""


class StateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def state_ids(self, group_id: int) -> dict[tuple[str, str], str]:
        rows = await self._db.fetch(_RESOLVE, group_id)
        return {(r["type"], r["state_key"]): r["event_id"] for r in rows}  # the nearest entry last wins

    async def state_ids_for_keys(self, group_id: int, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The snapshot's entries at `keys` only (those it has): for a reader that wants a few
        keys (one state event, the senders' member events) of a big room."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        rows = await self._db.fetch(_RESOLVE_KEYS, group_id, [k[0] for k in keys], [k[1] for k in keys])
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
