"""A real headless browser for the admin page: the system's Chromium (Debian package `chromium`)
driven by Playwright's async API, in the test's own event loop beside the aiohttp test server.

Playwright's own browser download is not used (`executable_path` names the system browser).
Without Chromium or Playwright the browser tests skip, unless CHATGO_REQUIRE_BROWSER=1 (CI),
which makes them fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture then skips (or fails, in CI)
    expect = None


def _unavailable(reason: str) -> None:
    if os.environ.get("CHATGO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CHATGO_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator:
    chromium = shutil.which("chromium")
    if chromium is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed (the test extra)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser, client) -> AsyncIterator:
    """A fresh browser tab on the test server. Confirmation dialogs are accepted; a script error
    or a Content-Security-Policy violation on the page fails the test (an error status the
    test asked for is not a problem)."""
    context = await browser.new_context(base_url=str(client.http.make_url("")).rstrip("/"))
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("dialog", lambda dialog: dialog.accept())
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    try:
        yield tab
    finally:
        await context.close()
    assert not problems, problems
