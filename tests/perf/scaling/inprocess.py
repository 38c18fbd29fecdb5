"""State resolution measured in-process, on the running server's database.

Resolving a fork is what federation intake does when a received event's prev events are not
the room's head (`FederationIntake._persist_live` -> `RemoteState.resolve(current state,
the event's state after)`). Driving it over federation needs a second, signing server joined
to the room; instead this calls the same service, `RemoteState.resolve`, from a second process
connected to the server's database, with the room's current state and the same state where
one key (`org.chatgo.scaling`/`probe`) still holds an older event: a two-way fork with one
conflicted key, as when another server sent a state event while we sent ours. It measures
what the resolution loads (auth chains, events, rejections) and computes; not the transport,
the signature checks or the persistence.
"""

from __future__ import annotations

import time
from typing import Any

from homeserver.config import CachesConfig
from homeserver.services.federation.remote_state import RemoteState
from homeserver.services.rooms.state import EventCache, RoomStateCache
from storage.database import Database
from storage.stores import Stores


class Resolver:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._stores = Stores.build(db)

    @classmethod
    async def open(cls, url: str) -> Resolver:
        return cls(await Database.connect(url, min_size=1, max_size=2))

    async def close(self) -> None:
        await self._db.close()

    async def analyze(self) -> None:
        """Fresh planner statistics for every table (Bench.fresh_statistics)."""
        await self._db.execute("ANALYZE")

    async def fork_ms(self, room_id: str, key: tuple[str, str], older_event_id: str,
                      repeats: int = 3) -> dict[str, Any]:
        """Median ms of resolving [current state, current state with `key` -> older event]:
        `cold` with an empty event cache each time (a server that has not seen the room's
        state events lately), `warm` with the cache of the previous resolution."""
        s = self._stores
        caches = CachesConfig()
        snap = await RoomStateCache(s.room_heads, EventCache(s.events, caches.events),
                                    caches.room_snapshots).snapshot(room_id)
        assert snap is not None, room_id
        current = dict(snap.state)
        fork = dict(current)
        fork[key] = older_event_id
        cold, warm, resolved = [], [], None
        for _ in range(repeats):
            cache = EventCache(s.events, caches.events)
            remote = RemoteState(s.state, s.graph, cache)
            t = time.perf_counter()
            resolved = await remote.resolve(room_id, snap.version, [current, fork])
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            await remote.resolve(room_id, snap.version, [current, fork])
            warm.append(time.perf_counter() - t)
        return {"cold_ms": round(sorted(cold)[len(cold) // 2] * 1000, 1),
                "warm_ms": round(sorted(warm)[len(warm) // 2] * 1000, 1),
                "state_entries": len(current), "winner_is_newest": resolved.get(key) == current[key]}
