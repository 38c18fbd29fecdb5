"""The scaling benchmark's client: hsbench's HTTP client, fast user creation, RSS probes.

The HTTP client, percentiles and process sampling come from hsbench (`../shared/bench`),
so every figure is measured the same way as the house benchmark measures a whole server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[3]
BENCH_DIR = Path(os.environ.get("HSBENCH_DIR", REPO.parent / "shared" / "bench"))
sys.path.insert(0, str(BENCH_DIR))
try:
    import hsbench  # noqa: E402  (../shared/bench/hsbench.py)
except ImportError as exc:  # pragma: no cover - a hand-run tool
    raise SystemExit(f"hsbench.py not found in {BENCH_DIR} (set HSBENCH_DIR): {exc}") from exc

HS = hsbench.HS
HTTPError = hsbench.HTTPError
dist, pct, bounded, timed = hsbench.dist, hsbench.pct, hsbench.bounded, hsbench.timed

# What every waiting /sync of the benchmark asks for: one room, members lazy-loaded (a
# 5,000-member room would otherwise send 5,000 member events to each receiver), no
# presence or account data.
def room_filter(room_id: str, limit: int = 10) -> dict[str, Any]:
    return {"room": {"rooms": [room_id], "timeline": {"limit": limit},
                     "state": {"lazy_load_members": True}, "ephemeral": {"types": []},
                     "account_data": {"types": []}},
            "presence": {"types": []}, "account_data": {"types": []}}


@dataclass
class User:
    user_id: str
    token: str
    name: str


@dataclass
class Bench:
    """One benchmark run against one server: the client, the shared secret, the sampled pids."""
    hs: Any
    secret: str
    password: str
    tag: str
    pid: int | None
    pg_pid: int | None
    counter: int = 0
    resolver: Any = None  # inprocess.Resolver, with --database-url
    rss_log: list[dict[str, Any]] = field(default_factory=list)

    async def register(self, n: int, conc: int = 8) -> list[User]:
        """n users through Synapse's shared-secret admin API (nonce + HMAC), which answers with
        an access token: no UIA round trip, no separate login."""
        names = []
        for _ in range(n):
            self.counter += 1
            names.append(f"{self.tag}u{self.counter}")
        return await bounded(conc, [self._register_one(name) for name in names])

    async def _register_one(self, name: str) -> User:
        _, j, _ = await self.hs.req("GET", "/_synapse/admin/v1/register")
        nonce = j["nonce"]
        mac = hmac.new(self.secret.encode(), b"\x00".join(
            [nonce.encode(), name.encode(), self.password.encode(), b"notadmin"]), hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": name, "password": self.password, "admin": False, "mac": mac}
        _, j, _ = await self.hs.req("POST", "/_synapse/admin/v1/register", body=body)
        return User(j["user_id"], j["access_token"], name)

    async def login(self, user: User) -> str:
        """A fresh device (and token) for user: its first /sync is uncached."""
        return await self.hs.login(user.name, self.password)

    async def sync_filter(self, user: User, room_id: str, limit: int = 10) -> str:
        _, j, _ = await self.hs.req("POST", f"/_matrix/client/v3/user/{quote(user.user_id)}/filter",
                                    user.token, body=room_filter(room_id, limit))
        return j["filter_id"]

    async def send_state(self, token: str, room_id: str, event_type: str, state_key: str,
                         content: dict[str, Any]) -> str:
        path = (f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/"
                f"{quote(state_key, safe='')}")
        return (await self.hs.req("PUT", path, token, body=content))[1]["event_id"]

    async def fresh_statistics(self) -> None:
        """ANALYZE after a fill, as autovacuum does on a running server within a minute or so
        (it visits each database once per autovacuum_naptime): measured seconds after a fill, a
        step of a fresh database otherwise runs on plans made for its empty tables (see
        docs/performance.md, "The state section run on its own"). Needs --database-url."""
        if self.resolver is not None:
            await self.resolver.analyze()

    def rss(self, label: str) -> dict[str, Any]:
        """RSS (kB) of the server process alone and of PostgreSQL's process tree, logged."""
        row = {"label": label, "t": round(time.time(), 1), "server_kb": process_rss_kb(self.pid),
               "postgres_kb": hsbench.tree_sample(self.pg_pid)[0] if self.pg_pid else None}
        self.rss_log.append(row)
        return row


def process_rss_kb(pid: int | None) -> int | None:
    """VmRSS of one process (not its children: an embedded PostgreSQL is sampled apart)."""
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def server_cpu_s(pid: int | None) -> float | None:
    if not pid:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / hsbench.CLK_TCK


async def repeat(times: int, make) -> list[float]:
    """Seconds taken by `times` sequential awaits of make()."""
    lat: list[float] = []
    for _ in range(times):
        await timed(lat, make())
    return lat


def median_ms(xs: list[float]) -> float | None:
    return pct(xs, 50)


async def settle(seconds: float) -> None:
    """Quiet between measurements, so one step's tail does not land in the next one."""
    await asyncio.sleep(seconds)
