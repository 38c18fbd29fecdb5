"""ChatGO and Synapse measured the same way in one sitting: hscompare on one PostgreSQL.

    python -m tests.perf.compare_synapse [--rounds 2] [--before REV] [--out compare.jsonl] [hsbench options...]

Run by hand (not a pytest test; CI runs no benchmarks), from the checkout to measure, on a
quiet machine: it takes 10-20 minutes with the defaults. Steps:

1. a fresh embedded PostgreSQL cluster in a temporary directory (storage.embedded), with a
   database for each server (`synapse` with the C collation Synapse requires);
2. ChatGO from this checkout (`python -m homeserver run`) with the configuration
   `generate-config` writes, on that database, plain-HTTP client listener, rate limits off;
3. Synapse (`SYNAPSE_VERSION` of tests/federation/synapse.py, its venv from
   `python -m tests.federation.synapse install`, plus psycopg2) on the same cluster, one
   process, plain-HTTP client listener, open registration without verification, every
   `rc_*` limit lifted, presence off (as ../shared/bench/README.md describes);
4. with `--before REV`, a second ChatGO from that commit (a temporary git worktree) on its own
   database, to measure before and after in the same sitting;
5. `../shared/bench/hscompare.py synapse=... [before=...] chatgo=... --rounds N` with every
   server's PID (RSS and CPU sampled) and the postmaster's PID; its JSON goes to stdout and
   `--out`.

Both servers keep their defaults otherwise; ChatGO's presence stays on (its default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import asyncpg
import yaml

from storage.embedded import EmbeddedPostgres
from tests.federation.synapse import install, lifted_rate_limits, log_config

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(os.environ.get("CHATGO_BENCH_DIR", ROOT.parent / "shared" / "bench"))
CHATGO_PORT = 18808
SYNAPSE_PORT = 18828
BEFORE_PORT = 18818


async def _make_databases(server_url: str) -> None:
    conn = await asyncpg.connect(server_url, database="postgres")
    try:
        for name in ("chatgo", "chatgo_before"):
            await conn.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        await conn.execute("CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    finally:
        await conn.close()


def _wait_for(url: str, process: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/_matrix/client/versions", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not answer within {timeout_s:.0f} s")


def _chatgo(work: Path, database_url: str, checkout: Path = ROOT, name: str = "chatgo",
            port: int = CHATGO_PORT) -> subprocess.Popen:
    data = work / name
    subprocess.run([sys.executable, "-m", "homeserver", "generate-config", "--server-name", f"{name}.bench",
                    "--data-dir", str(data), "--client-port", str(port), "--federation-port", str(port + 40),
                    "--enable-registration", "--database-url", database_url],
                   cwd=checkout, check=True, capture_output=True)
    path = data / "homeserver.yaml"
    config = yaml.safe_load(path.read_text())
    config["rate_limiting"] = {**(config.get("rate_limiting") or {}), "enabled": False}
    config["log_level"] = "WARNING"
    path.write_text(yaml.safe_dump(config))
    log = open(work / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "homeserver", "run", "-c", str(path)], cwd=checkout,
                            stdout=log, stderr=subprocess.STDOUT)


def _synapse(work: Path, python: Path, server_url: str) -> subprocess.Popen:
    data = work / "synapse"
    data.mkdir()
    subprocess.run([str(python), "-m", "synapse.app.homeserver", "--server-name", "synapse.bench",
                    "--config-path", str(data / "homeserver.yaml"), "--data-directory", str(data),
                    "--generate-config", "--report-stats=no"], cwd=data, check=True, capture_output=True)
    url = urlparse(server_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    config = yaml.safe_load((data / "homeserver.yaml").read_text())
    (data / "log.yaml").write_text(yaml.safe_dump(log_config(data / "homeserver.log", "WARNING")))
    config.update(lifted_rate_limits())
    config.update({
        "listeners": [{"port": SYNAPSE_PORT, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
        "database": {"name": "psycopg2", "args": {
            "user": url.username or query.get("user", "postgres"), "database": "synapse",
            "host": query.get("host") or url.hostname, "port": int(query.get("port") or url.port or 5432),
            "cp_min": 5, "cp_max": 10}},
        "log_config": str(data / "log.yaml"),
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "presence": {"enabled": False},
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "macaroon_secret_key": secrets.token_hex(16),
    })
    (data / "homeserver.yaml").write_text(yaml.safe_dump(config))
    log = open(work / "synapse.log", "wb")
    return subprocess.Popen([str(python), "-m", "synapse.app.homeserver", "-c", str(data / "homeserver.yaml")],
                            cwd=data, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="compare.jsonl")
    parser.add_argument("--before", metavar="REV", help="also measure ChatGO at this commit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args, hsbench_options = parser.parse_known_args()

    python = install()
    if subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "psycopg2-binary"], check=True)

    work = Path(tempfile.mkdtemp(prefix="chatgo-compare-"))
    cluster = EmbeddedPostgres(work / "postgres")
    server_url = cluster.start()
    processes: list[subprocess.Popen] = []
    try:
        asyncio.run(_make_databases(server_url))
        postmaster = (work / "postgres" / "postmaster.pid").read_text().split()[0]
        chatgo = _chatgo(work, cluster.url("chatgo"))
        processes.append(chatgo)
        synapse = _synapse(work, python, server_url)
        processes.append(synapse)
        targets = [f"synapse=http://127.0.0.1:{SYNAPSE_PORT}@{synapse.pid}"]
        if args.before:
            checkout = work / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), args.before],
                           check=True, capture_output=True)
            before = _chatgo(work, cluster.url("chatgo_before"), checkout, "before", BEFORE_PORT)
            processes.append(before)
            _wait_for(f"http://127.0.0.1:{BEFORE_PORT}", before, f"ChatGO at {args.before}")
            targets.append(f"before=http://127.0.0.1:{BEFORE_PORT}@{before.pid}")
        targets.append(f"chatgo=http://127.0.0.1:{CHATGO_PORT}@{chatgo.pid}")
        _wait_for(f"http://127.0.0.1:{CHATGO_PORT}", chatgo, "ChatGO")
        _wait_for(f"http://127.0.0.1:{SYNAPSE_PORT}", synapse, "Synapse")
        print(f"servers {targets}, PostgreSQL pid {postmaster}; logs in {work}", file=sys.stderr)
        return subprocess.run([sys.executable, str(BENCH / "hscompare.py"), *targets,
                               "--rounds", str(args.rounds), "--out", args.out, "--pg-pid", postmaster,
                               *hsbench_options]).returncode
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        cluster.stop()
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "before")],
                           capture_output=True)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main())
