"""python -m tests.perf.scaling: how each cost of a homeserver grows with its data.

    python -m tests.perf.scaling http://127.0.0.1:16808 --shared-secret SECRET \\
        --pid SERVER_PID --pg-pid POSTMASTER_PID [--quick] [--sections sync,members,history,state] \\
        [--database-url postgresql://...] [--out runs.jsonl]
    python -m tests.perf.scaling --report runs.jsonl      # the Markdown table from saved runs

Runs by hand against a running server, never in CI (pytest does not collect it). Users are
created through Synapse's shared-secret admin API (/_synapse/admin/v1/register), which
answers with an access token: registration is not what is measured here. The server needs
that secret, rate limits off, and (to keep fan-out about messages) presence off; see
tests/perf/README.md. Prints the Markdown table and appends one JSON line per section to
--out, so sections can be run apart and reported together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from datetime import datetime, timezone

import aiohttp

from tests.perf.scaling.client import HS, Bench, hsbench, server_cpu_s
from tests.perf.scaling.report import markdown
from tests.perf.scaling.sections import SECTIONS

FULL = {"sync": {"sizes": [10, 100, 1000]},
        "members": {"sizes": [50, 500, 5000]},
        "history": {"events": 100_000, "depths": [0, 1_000, 10_000, 50_000, 99_000]},
        "state": {"sizes": [100, 1_000, 10_000]}}
QUICK = {"sync": {"sizes": [10, 30, 100]},
         "members": {"sizes": [10, 50, 200], "sends": 10},
         "history": {"events": 2_000, "depths": [0, 500, 1_400], "senders": 10, "pages_per_depth": 4},
         "state": {"sizes": [30, 100, 300], "probes": 5, "joiners": 3}}


async def run(a: argparse.Namespace) -> list[dict]:
    sizes = QUICK if a.quick else FULL
    names = [s.strip() for s in a.sections.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad:
        sys.exit(f"unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
    results = []
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=900)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        bench = Bench(HS(a.base_url, session), a.shared_secret, "scaling-" + secrets.token_hex(6),
                      "sc" + secrets.token_hex(3), a.pid, a.pg_pid)
        if a.database_url:
            from tests.perf.scaling.inprocess import Resolver
            bench.resolver = await Resolver.open(a.database_url)
        for name in names:
            print(f"scaling: {name} {sizes[name]} ...", file=sys.stderr, flush=True)
            load0, busy0, t0, c0 = os.getloadavg(), hsbench.machine_busy_s(), time.perf_counter(), os.times()
            s0, _ = server_cpu_s(a.pid), None
            pg0 = hsbench.tree_sample(a.pg_pid)[1] if a.pg_pid else None
            try:
                result = await SECTIONS[name](bench, **sizes[name])
            except Exception as e:  # a failed section is reported, the others still run
                while isinstance(e, BaseExceptionGroup) and e.exceptions:
                    e = e.exceptions[0]
                print(f"scaling: {name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                result = {"figures": [], "error": f"{type(e).__name__}: {e}"[:500]}
            c1 = os.times()
            client_cpu = (c1.user - c0.user) + (c1.system - c0.system)
            server_cpu = server_cpu_s(a.pid) - s0 if a.pid else None
            pg_cpu = hsbench.tree_sample(a.pg_pid)[1] - pg0 if a.pg_pid else None
            busy = hsbench.machine_busy_s() - busy0
            other = busy - client_cpu - server_cpu - pg_cpu if a.pid and a.pg_pid else None
            row = {"tool": "scaling", "section": name, "quick": a.quick, "base_url": a.base_url,
                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "params": sizes[name], "wall_s": round(time.perf_counter() - t0, 1),
                   "loadavg_before": [round(x, 2) for x in load0],
                   "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                   "server_cpu_s": round(server_cpu, 1) if server_cpu is not None else None,
                   "postgres_cpu_s": round(pg_cpu, 1) if pg_cpu is not None else None,
                   "client_cpu_s": round(client_cpu, 1), "machine_cpu_s": round(busy, 1),
                   "other_cpu_s": round(other, 1) if other is not None else None,
                   "fresh_statistics": bench.resolver is not None,
                   "result": result, "rss_log": bench.rss_log}
            bench.rss_log = []
            results.append(row)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"scaling: {name} done in {row['wall_s']} s", file=sys.stderr, flush=True)
        if bench.resolver is not None:
            await bench.resolver.close()
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tests.perf.scaling", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("base_url", nargs="?", help="client API base, e.g. http://127.0.0.1:16808")
    ap.add_argument("--shared-secret", default=os.environ.get("CHATGO_REGISTRATION_SHARED_SECRET"),
                    help="registration.shared_secret of the server (or $CHATGO_REGISTRATION_SHARED_SECRET)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="small sizes: a check of the script in minutes")
    ap.add_argument("--pid", type=int, help="server PID: its RSS and CPU are sampled")
    ap.add_argument("--pg-pid", type=int, help="PostgreSQL postmaster PID, sampled apart")
    ap.add_argument("--database-url", help="the server's PostgreSQL: the state section then also times "
                    "state resolution of a fork in-process (tests/perf/scaling/inprocess.py), and every "
                    "fill is followed by ANALYZE (Bench.fresh_statistics)")
    ap.add_argument("--out", help="append one JSON line per section to this file")
    ap.add_argument("--report", help="print the Markdown table of the runs saved in this file and exit")
    a = ap.parse_args(argv)
    if not a.report and not (a.base_url and a.shared_secret):
        ap.error("a base URL and --shared-secret are needed (or --report FILE)")
    return a


def main() -> int:
    a = parse()
    if a.report:
        with open(a.report) as f:
            results = [json.loads(line) for line in f if line.strip()]
    else:
        results = asyncio.run(run(a))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
