"""The scaling benchmark's measurements, one coroutine per section.

Each section grows one kind of data in steps (rooms per user, members per room, events in a
room, state events in a room) and measures the same requests at every step. It returns
`figures`: rows of {figure, unit, receives, size_name, sizes, values, expect}, where `expect`
is the exponent the figure may grow with in the step's size (0: flat, 1: linear) because
that is how the data the user receives grows, plus `info` (fill rates, checks).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import quote

from tests.perf.scaling.client import Bench, User, bounded, median_ms, pct, repeat, room_filter, server_cpu_s, timed

PAGE = 50  # /messages page size


def figure(name: str, unit: str, receives: str, size_name: str, sizes: list[int], values: list[Any],
           expect: float) -> dict[str, Any]:
    return {"figure": name, "unit": unit, "receives": receives, "size_name": size_name, "sizes": sizes,
            "values": values, "expect": expect}


def per_1000_kb(before: dict[str, Any], after: dict[str, Any], count: int, key: str = "server_kb") -> float | None:
    """MB of RSS per 1,000 things added; None below 500 things, where the allocator's moods
    (arenas grown or handed back) outweigh what was added."""
    if count < 500 or before.get(key) is None or after.get(key) is None:
        return None
    return round((after[key] - before[key]) / count * 1000 / 1024, 2)  # MB per 1,000


async def wait_quiet(b: Bench, floor_s: float, ceiling_s: float) -> float:
    """Wait until the server has been idle for 0.5 s (all long-polls parked), at least floor_s and
    at most ceiling_s. Without a pid, waits floor_s. Returns the seconds waited."""
    t0 = time.perf_counter()
    await asyncio.sleep(floor_s)
    if not b.pid:
        return floor_s
    while time.perf_counter() - t0 < ceiling_s:
        c0 = server_cpu_s(b.pid)
        await asyncio.sleep(0.5)
        if server_cpu_s(b.pid) - c0 < 0.03:
            break
    return round(time.perf_counter() - t0, 1)


# ------------------------------------------------------------------ initial sync vs rooms
async def section_sync(b: Bench, sizes: list[int], repeats: int = 3) -> dict[str, Any]:
    """One user in 10 / 100 / 1,000 rooms: initial /sync (fresh device each time), and an
    incremental /sync with nothing new."""
    user = (await b.register(1))[0]
    rooms: list[str] = []
    init, first, size_kb, incr, create, mem = [], [], [], [], [], []
    for n in sizes:
        before = b.rss(f"sync: before {n} rooms")
        lat: list[float] = []
        # A unique creation_content: two identical create events in one millisecond would get
        # one room ID (room version 12 derives it from the create event's hash).
        await bounded(4, [timed(lat, b.hs.create_room(user.token, preset="private_chat", name=f"scaling {i}",
                                                      creation_content={"org.chatgo.scaling": i}))
                          for i in range(len(rooms), n)])
        added = n - len(rooms)
        rooms += [""] * added
        after = b.rss(f"sync: after {n} rooms")
        await b.fresh_statistics()
        create.append(median_ms(lat))
        mem.append(per_1000_kb(before, after, added))
        times, body_len, since, dtok = [], 0, None, None
        for _ in range(repeats):
            dtok = await b.login(user)
            t = time.perf_counter()
            j, body_len = await b.hs.sync(dtok)
            times.append(time.perf_counter() - t)
            got = len(j.get("rooms", {}).get("join", {}))
            if got != n:
                raise RuntimeError(f"initial sync saw {got} rooms, expected {n}")
            since = j["next_batch"]
        init.append(median_ms(times))
        first.append(round(times[0] * 1000, 2))
        size_kb.append(round(body_len / 1024, 1))
        incr.append(median_ms(await repeat(5, lambda: b.hs.sync(dtok, since))))
    return {"figures": [
        figure("initial /sync", "ms", "every room's state and timeline", "rooms", sizes, init, 1),
        figure("initial /sync, first (coldest) of each step", "ms", "the same", "rooms", sizes, first, 1),
        figure("initial /sync response size", "kB", "(the data itself)", "rooms", sizes, size_kb, 1),
        figure("incremental /sync, nothing new", "ms", "nothing", "rooms", sizes, incr, 0),
        figure("createRoom (p50 while filling)", "ms", "one room", "rooms", sizes, create, 0),
        figure("server RSS per 1,000 rooms created", "MB", "-", "rooms", sizes, mem, 0),
    ], "info": {}}


# ------------------------------------------------------------------ send and fan-out vs members
async def current_token(b: Bench, user: User, room_id: str) -> str:
    """A sync token of now. Positions are global, so one token serves every receiver, as if
    each had synced just before: 5,000 receivers need not each make an initial /sync (that
    cost is measured on its own: "initial /sync of the room, members lazy-loaded")."""
    flt = json.dumps(room_filter(room_id, limit=1), separators=(",", ":"))
    return (await b.hs.sync(user.token, flt=flt))[0]["next_batch"]


async def fanout(b: Bench, sender: User, receivers: list[User], room_id: str, rounds: int) -> dict[str, Any]:
    """Every receiver long-polls /sync (filtered to the room, members lazy-loaded); one message;
    time until each has it. Returns the medians over rounds of: all received, p50 receiver,
    the sender's request."""
    flt = json.dumps(room_filter(room_id), separators=(",", ":"))
    sinces = [await current_token(b, sender, room_id)] * len(receivers)
    alls, p50s, sends, parked_s = [], [], [], []

    async def wait_one(tok: str, since: str, text: str, t0: list[float]) -> tuple[float, str]:
        while True:  # re-poll until this round's message (matched by its body) arrives
            j, _ = await b.hs.sync(tok, since, 120000, flt)
            since = j["next_batch"]
            evs = j.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
            if any(e.get("content", {}).get("body") == text for e in evs):
                return time.perf_counter() - t0[0], since

    for _ in range(rounds):
        b.counter += 1  # a unique body and transaction ID: a repeated txn ID would send nothing
        text, t0 = f"fanout {b.tag} {b.counter}", [0.0]
        polls = [asyncio.create_task(wait_one(u.token, s, text, t0)) for u, s in zip(receivers, sinces)]
        parked_s.append(await wait_quiet(b, 1.0, 60 + len(receivers) / 20))
        t0[0] = time.perf_counter()
        await timed(sends, b.hs.send(sender.token, room_id, text, f"{b.tag}f{b.counter}"))
        done = await asyncio.wait_for(asyncio.gather(*polls), 600)
        times = [d for d, _ in done]
        sinces = [s for _, s in done]
        alls.append(max(times))
        p50s.append(statistics.median(times))
    return {"all_ms": median_ms(alls), "p50_ms": median_ms(p50s), "send_ms": median_ms(sends),
            "all_runs_ms": [round(x * 1000, 1) for x in alls], "parked_s": parked_s}


async def section_members(b: Bench, sizes: list[int], sends: int = 20, rounds: int = 2,
                          fixed_receivers: int = 50) -> dict[str, Any]:
    """A public room grown to 50 / 500 / 5,000 members: a join, a send with nobody waiting, the
    fan-out to a fixed 50 waiting /syncs, and the fan-out to every member waiting."""
    owner = (await b.register(1))[0]
    room = await b.hs.create_room(owner.token, preset="public_chat", name="scaling members")
    members: list[User] = []
    joins, send_idle, fan_fixed, fan_fixed_send, fan_all, fan_all_p50, fan_all_send, per_recv, lazy_sync = (
        [] for _ in range(9))
    mem_users, mem_members, info = [], [], {}
    for n in sizes:
        before = b.rss(f"members: before registering up to {n}")
        new = await b.register(n - 1 - len(members))
        mid = b.rss(f"members: {n - 1} users registered")
        lat: list[float] = []
        await bounded(10, [timed(lat, b.hs.join(u.token, room)) for u in new])
        after = b.rss(f"members: {n} members joined")
        await b.fresh_statistics()
        members += new
        mem_users.append(per_1000_kb(before, mid, len(new)))
        mem_members.append(per_1000_kb(mid, after, len(new)))
        joins.append(median_ms(lat))
        send_idle.append(median_ms(await repeat(sends, lambda: b.hs.send(
            owner.token, room, "idle send", f"{b.tag}i{time.perf_counter_ns()}"))))
        lazy = json.dumps(room_filter(room, limit=10), separators=(",", ":"))
        lazy_sync.append(median_ms(await repeat(5, lambda: b.hs.sync(members[-1].token, flt=lazy))))
        fixed = await fanout(b, owner, members[:fixed_receivers], room, rounds)
        fan_fixed.append(fixed["all_ms"])
        fan_fixed_send.append(fixed["send_ms"])
        every = await fanout(b, owner, members, room, rounds)
        fan_all.append(every["all_ms"])
        fan_all_p50.append(every["p50_ms"])
        fan_all_send.append(every["send_ms"])
        per_recv.append(round(every["all_ms"] / len(members), 3) if every["all_ms"] else None)
        info[n] = {"fanout_fixed": fixed, "fanout_all": every, "join_p95_ms": pct(lat, 95)}
    recv = f"{fixed_receivers} receivers"
    return {"figures": [
        figure("join (p50 of the step's joins)", "ms", "nothing (a room ID)", "members", sizes, joins, 0),
        figure("send, nobody waiting", "ms", "nothing (an event ID)", "members", sizes, send_idle, 0),
        figure("initial /sync of the room, members lazy-loaded", "ms", "10 events + their senders' members",
               "members", sizes, lazy_sync, 0),
        figure(f"fan-out to {fixed_receivers} waiting /syncs: all have it", "ms", f"{recv} × one event", "members",
               sizes, fan_fixed, 0),
        figure(f"send request while {fixed_receivers} /syncs wait", "ms", "nothing", "members", sizes,
               fan_fixed_send, 0),
        figure("fan-out to every member's waiting /sync: all have it", "ms", "members × one event", "members",
               sizes, fan_all, 1),
        figure("fan-out to every member: median receiver", "ms", "members × one event", "members", sizes,
               fan_all_p50, 1),
        figure("fan-out to every member, per receiver", "ms", "one event each", "members", sizes, per_recv, 0),
        figure("send request while every member's /sync waits", "ms", "nothing", "members", sizes,
               fan_all_send, 0),
        figure("server RSS per 1,000 users registered", "MB", "-", "users", sizes, mem_users, 0),
        figure("server RSS per 1,000 members joined", "MB", "-", "members", sizes, mem_members, 0),
    ], "info": info}


# ------------------------------------------------------------------ /messages and /context vs depth
async def section_history(b: Bench, events: int, depths: list[int], senders: int = 20,
                          pages_per_depth: int = 10) -> dict[str, Any]:
    """A room filled with `events` messages by concurrent senders; then /messages pages back
    50 at a time from the newest event to the oldest, and /context around events at the
    given depths (events counted back from the newest)."""
    users = await b.register(senders)
    owner = users[0]
    room = await b.hs.create_room(owner.token, preset="public_chat", name="scaling history")
    await bounded(10, [b.hs.join(u.token, room) for u in users[1:]])
    before = b.rss("history: before fill")
    nxt, lat = iter(range(events)), []

    async def sender(u: User) -> None:
        for i in nxt:
            await timed(lat, b.hs.send(u.token, room, f"history {i}", f"{b.tag}h{i}"))
    t = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for u in users:
            tg.create_task(sender(u))
    fill_s = time.perf_counter() - t
    after = b.rss(f"history: {events} events sent")
    await b.fresh_statistics()

    flt = json.dumps(room_filter(room, limit=1), separators=(",", ":"))
    j, _ = await b.hs.sync(owner.token, flt=flt)
    token = j["rooms"]["join"][room]["timeline"]["prev_batch"]
    deepest = min(max(depths) + pages_per_depth * PAGE, events)
    pages: list[tuple[int, float]] = []  # (depth of the page's first event, seconds)
    ids_at: dict[int, str] = {}
    depth = 1  # the newest event came with the sync
    path = f"/_matrix/client/v3/rooms/{quote(room)}/messages"
    while depth < deepest and token:
        t = time.perf_counter()
        _, page, _ = await b.hs.req("GET", path, owner.token, params={"dir": "b", "limit": str(PAGE), "from": token})
        pages.append((depth, time.perf_counter() - t))
        for k, ev in enumerate(page.get("chunk", [])):
            ids_at.setdefault(depth + k, ev["event_id"])
        if not page.get("chunk"):
            break
        depth += len(page["chunk"])
        token = page.get("end")
    page_ms, ctx_ms = [], []
    for d in depths:
        near = [s for dd, s in pages if d <= dd < d + pages_per_depth * PAGE]
        page_ms.append(median_ms(near))
        eid = ids_at.get(max(d, 1))
        ctx = await repeat(5, lambda: b.hs.req(
            "GET", f"/_matrix/client/v3/rooms/{quote(room)}/context/{quote(eid)}", owner.token,
            params={"limit": "10"})) if eid else []
        ctx_ms.append(median_ms(ctx))
    return {"figures": [
        figure(f"/messages page of {PAGE}, paging back", "ms", f"{PAGE} events", "events deep", depths, page_ms, 0),
        figure("/context (limit 10)", "ms", "10 events + the room's state", "events deep", depths, ctx_ms, 0),
    ], "info": {"events": events, "fill_per_s": round(events / fill_s, 1), "fill_p50_ms": median_ms(lat),
                "pages": len(pages), "reached_depth": depth,
                "server_rss_mb_per_100k_events": per_1000_kb(before, after, events // 100 or 1)}}


# ------------------------------------------------------------------ state events
async def section_state(b: Bench, sizes: list[int], probes: int = 10, joiners: int = 5) -> dict[str, Any]:
    """A room grown to 100 / 1,000 / 10,000 custom state events (one key each): one state event
    sent into it, one message, one join, and a new member's initial /sync of it."""
    owner = (await b.register(1))[0]
    room = await b.hs.create_room(owner.token, preset="public_chat", name="scaling state")
    flt = json.dumps(room_filter(room, limit=1), separators=(",", ":"))
    have, fill, state_send, msg_send, join, first_sync, sync_kb, mem = 0, [], [], [], [], [], [], []
    res_cold, res_warm, res_info = [], [], {}
    for n in sizes:
        before = b.rss(f"state: before {n} state events")
        lat: list[float] = []
        await bounded(8, [timed(lat, b.send_state(owner.token, room, "org.chatgo.scaling", f"k{i}", {"i": i}))
                          for i in range(have, n)])
        added, have = n - have, n
        after = b.rss(f"state: {n} state events")
        await b.fresh_statistics()
        fill.append(median_ms(lat))
        mem.append(per_1000_kb(before, after, added))
        probe_ids: list[str] = []
        lat = []
        for _ in range(probes):
            probe_ids.append(await timed(lat, b.send_state(owner.token, room, "org.chatgo.scaling", "probe",
                                                           {"t": time.time_ns() // 1000})))
        state_send.append(median_ms(lat))
        if b.resolver is not None:  # a fork: another server's view still has this step's first probe
            fork = await b.resolver.fork_ms(room, ("org.chatgo.scaling", "probe"), probe_ids[0])
            res_cold.append(fork["cold_ms"])
            res_warm.append(fork["warm_ms"])
            res_info[n] = fork
        msg_send.append(median_ms(await repeat(probes, lambda: b.hs.send(
            owner.token, room, "state room", f"{b.tag}m{time.perf_counter_ns()}"))))
        new = await b.register(joiners)
        jl, sl, size = [], [], 0
        for u in new:
            await timed(jl, b.hs.join(u.token, room))
            t = time.perf_counter()
            _, size = await b.hs.sync(u.token, flt=flt)
            sl.append(time.perf_counter() - t)
        join.append(median_ms(jl))
        first_sync.append(median_ms(sl))
        sync_kb.append(round(size / 1024, 1))
    return {"figures": [
        figure("state event send (replacing one key)", "ms", "nothing (an event ID)", "state events", sizes,
               state_send, 0),
        figure("state event send while filling (p50)", "ms", "nothing", "state events", sizes, fill, 0),
        figure("message send into the room", "ms", "nothing", "state events", sizes, msg_send, 0),
        figure("join (a local user)", "ms", "nothing (a room ID)", "state events", sizes, join, 0),
        figure("new member's initial /sync of the room", "ms", "the room's whole state", "state events", sizes,
               first_sync, 1),
        figure("that /sync's size", "kB", "(the data itself)", "state events", sizes, sync_kb, 1),
        figure("server RSS per 1,000 state events", "MB", "-", "state events", sizes, mem, 0),
    ] + ([
        figure("state resolution of a one-key fork (in-process), cold cache", "ms", "nothing (one key differs)",
               "state events", sizes, res_cold, 0),
        figure("state resolution of a one-key fork (in-process), warm cache", "ms", "nothing (one key differs)",
               "state events", sizes, res_warm, 0),
    ] if b.resolver is not None else []), "info": {"state_resolution": res_info or "not measured: no --database-url"}}


SECTIONS = {"sync": section_sync, "members": section_members, "history": section_history, "state": section_state}
