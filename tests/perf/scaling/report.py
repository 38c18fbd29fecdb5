"""The scaling benchmark's Markdown report: one row per figure, its growth per step, a verdict.

A figure may grow as fast as the data the user receives: `expect` is that exponent in the
size (0: it should stay flat, 1: it may grow linearly). A step passes when, from the step
before or from the first size, value2/value1 <= (size2/size1)**expect * TOLERANCE (so one
dip in a flat series does not make the next step look like growth), or when the figure
moved by less than the noise floor of its unit (a 2 ms page is not "3x slower" at 6 ms on
a shared 2-core machine).
"""

from __future__ import annotations

import math
from typing import Any

TOLERANCE = 1.5
NOISE_FLOOR = {"ms": 5.0, "MB": 1.0, "kB": 0.0}
DATA_UNITS = ("kB",)  # response sizes: the data itself, reported without a verdict


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) < 100:
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"
    return f"{round(v):,}"


def step_growth(row: dict[str, Any]) -> list[tuple[float | None, float | None, bool | None]]:
    """Per step: (ratio, exponent in size, passes) — None where a value is missing."""
    out = []
    sizes, values, expect, unit = row["sizes"], row["values"], row["expect"], row["unit"]
    first = next(((n, v) for n, v in zip(sizes, values) if v is not None), None)

    def within(n1: float, v1: float, n2: float, v2: float) -> bool:
        if v2 - v1 <= NOISE_FLOOR.get(unit, 0.0):
            return True
        if v1 <= 0:
            return False
        return v2 / v1 <= ((n2 / n1) if n1 > 0 else 1) ** expect * TOLERANCE

    for (n1, v1), (n2, v2) in zip(zip(sizes, values), zip(sizes[1:], values[1:])):
        if v1 is None or v2 is None:
            out.append((None, None, None))
            continue
        ratio = v2 / v1 if v1 > 0 else None
        size_ratio = n2 / n1 if n1 > 0 else None
        exponent = math.log(ratio) / math.log(size_ratio) if ratio and size_ratio and size_ratio > 1 else None
        if unit in DATA_UNITS:
            ok = None
        else:
            ok = within(n1, v1, n2, v2) or (first is not None and within(first[0], first[1], n2, v2))
        out.append((ratio, exponent, ok))
    return out


def verdict(row: dict[str, Any]) -> str:
    steps = step_growth(row)
    if row["unit"] in DATA_UNITS:
        return "(the data received)"
    if sum(v is not None for v in row["values"]) == 1:
        return "one step only"
    if not steps or all(ok is None for _, _, ok in steps):
        return "not measured"
    allowed = "flat" if row["expect"] == 0 else "≤ linear"
    if all(ok in (True, None) for _, _, ok in steps):
        return f"ok ({allowed})"
    return f"**grows too fast** (should be {allowed})"


def growth_cell(row: dict[str, Any]) -> str:
    parts = []
    for ratio, exponent, _ in step_growth(row):
        if ratio is None:
            parts.append("–")
        elif exponent is not None and row["expect"] > 0:
            parts.append(f"×{ratio:.2g} (n^{exponent:.2f})")
        else:
            parts.append(f"×{ratio:.2g}")
    return ", ".join(parts)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| figure | the user receives | sizes | values | growth per step | verdict |",
             "|---|---|---|---|---|---|"]
    for res in results:
        for row in res["result"]["figures"]:
            sizes = " / ".join(f"{n:,}" for n in row["sizes"]) + f" {row['size_name']}"
            values = " / ".join(fmt(v) for v in row["values"]) + f" {row['unit']}"
            lines.append(f"| {row['figure']} | {row['receives']} | {sizes} | {values} | {growth_cell(row)} "
                         f"| {verdict(row)} |")
    return "\n".join(lines)


def conditions(results: list[dict[str, Any]]) -> str:
    lines = ["| section | mode | wall | server CPU | other processes' CPU | load average before → after "
             "| planner statistics |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        stats = "ANALYZE after each fill" if r.get("fresh_statistics") else "as autovacuum left them"
        lines.append(f"| {r['section']} | {'quick' if r['quick'] else 'full'} | {r['wall_s']:,.0f} s "
                     f"| {fmt(r.get('server_cpu_s'))} s | {fmt(r.get('other_cpu_s'))} s "
                     f"| {r['loadavg_before'][0]} → {r['loadavg_after'][0]} | {stats} |")
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]]) -> str:
    latest: dict[str, dict[str, Any]] = {}
    for r in results:  # the last run of each section wins
        latest[r["section"]] = r
    runs = list(latest.values())
    info = "\n".join(f"- {r['section']}: {r['result'].get('error') or r['result'].get('info')}" for r in runs
                     if r["result"].get("info") or r["result"].get("error"))
    return f"{table(runs)}\n\n{conditions(runs)}\n\n{info}\n"
