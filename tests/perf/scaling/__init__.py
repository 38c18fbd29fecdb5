"""The scaling benchmark (`python -m tests.perf.scaling`): how each cost grows with the data.

Run by hand against a running server (tests/perf/README.md), never collected by pytest:
client.py (hsbench's client, shared-secret registration, RSS probes), sections.py (the
measurements), report.py (the Markdown table and its verdicts), __main__.py (the CLI).
"""
