"""sytest, the Matrix ecosystem's integration suite, against a fresh ChatGO: no test listed in
tests/sytest/passing.txt may fail (tests/sytest/run.py does the work; NOTES.md explains).

Skipped when ../shared/sytest is absent, or when its Perl dependencies cannot be installed
(setup.sh needs root for apt-get) — unless CHATGO_REQUIRE_SYTEST=1 (as in CI), which turns
those skips into failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sytest.run import PASSING, ROOT, SYTEST, read_results
from tests.sytest.run import test_key as name_key

REQUIRED = os.environ.get("CHATGO_REQUIRE_SYTEST") == "1"

# What CI runs: sytest's test files (or folders) under its src/. The whole suite when empty.
CI_TESTS: list[str] = []
# Runs of their own files given to tests that failed in both whole runs.
SOLO_RUNS = 3


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"sytest is required (CHATGO_REQUIRE_SYTEST=1) but {reason}")
    pytest.skip(reason)


def test_every_listed_sytest_test_passes(tmp_path):
    if not (SYTEST / "run.sh").exists():
        _unavailable(f"{SYTEST} is absent")
    setup = subprocess.run([str(SYTEST / "setup.sh")], capture_output=True, text=True)
    if setup.returncode != 0:
        _unavailable(f"sytest's setup.sh failed: {setup.stderr[-2000:]}")
    assert PASSING.exists() and PASSING.read_text().strip(), "tests/sytest/passing.txt is empty"
    first = _run(tmp_path / "run1")
    if first.returncode == 1:
        # A few sytest tests race on timing (Synapse's own results have such flakes): a test
        # counts as regressed only when it fails in a second whole run too.
        second = _run(tmp_path / "run2")
        assert second.returncode != 2, f"sytest could not run:\n{_report(second)}"
        both = _regressions(first) & _regressions(second)
        # A race that a fast server loses in the whole run's rhythm (NOTES.md, "Timing races")
        # is given its own file's run, up to SOLO_RUNS times: a real regression fails them all.
        for attempt in range(SOLO_RUNS):
            if not both:
                break
            files = sorted(_files_of(both, tmp_path / "run2" / "sytest.tap"))
            if not files:  # tests that did not run at all: nothing to retry
                break
            _run(tmp_path / f"solo{attempt + 1}", files)
            both -= _passed(tmp_path / f"solo{attempt + 1}" / "results.tsv")
        assert not both, (f"tests in passing.txt failed in both whole runs and {SOLO_RUNS} runs of "
                          f"their own files: {sorted(both)}\n{_report(second)}")
    else:
        assert first.returncode == 0, f"sytest could not run:\n{_report(first)}"
        assert "sytest: total" in first.stdout, _report(first)


def _run(out, tests: list[str] = CI_TESTS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.sytest.run", "--out", str(out), *tests],
                          cwd=ROOT, capture_output=True, text=True, timeout=45 * 60)


def _files_of(names: set[str], tap: Path) -> set[str]:
    """The sytest files (relative to its src/) the tests named ran from: the TAP heads each
    file's tests with a line "tests/.../NAME.pl:"."""
    files, current = set(), None
    for line in tap.read_text(errors="replace").splitlines():
        if line.startswith("tests/") and line.endswith(".pl:"):
            current = line[:-1]
        elif current and line.startswith(("ok ", "not ok ")):
            name = name_key(line.split(" ", 3 if line.startswith("not") else 2)[-1].split(" # skip")[0])
            if name in names:
                files.add(current)
    return files


def _passed(tsv: Path) -> set[str]:
    return {name_key(name) for status, name in read_results(tsv) if status == "pass"} if tsv.exists() else set()


def _regressions(result: subprocess.CompletedProcess) -> set[str]:
    prefix = "REGRESSION (in passing.txt, did not pass): "
    return {name_key(line[len(prefix):]) for line in result.stdout.splitlines() if line.startswith(prefix)}


def _report(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-20000:] + result.stderr[-5000:]


def test_the_files_of_failed_tests_are_read_from_the_tap(tmp_path):
    tap = tmp_path / "sytest.tap"
    tap.write_text(
        "tests/10apidoc/01register.pl:\n"
        "    Test 1 GET /register yields a set of flows... OK\n"
        "ok 1 GET /register yields a set of flows\n"
        "ok 2 Register with a recaptcha (2 subtests)\n"
        "tests/50federation/40devicelists.pl:\n"
        "not ok 679 If a device list update goes missing, the server resyncs on the next one\n"
        "# Started: 2026-12-05 22:06:31.990\n"
        "ok 680 Can query remote device keys # skip no remote server\n")
    assert _files_of({"Register with a recaptcha"}, tap) == {"tests/10apidoc/01register.pl"}
    assert _files_of({"If a device list update goes missing, the server resyncs on the next one",
                      "Can query remote device keys"}, tap) == {"tests/50federation/40devicelists.pl"}
    assert _files_of({"A test that never ran"}, tap) == set()
