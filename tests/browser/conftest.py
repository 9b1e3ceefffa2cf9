"""A real browser for the tests in this folder: Debian's Chromium, driven by Playwright.

Playwright never downloads a browser here (`playwright install` is not run): it launches the
system's Chromium through ``executable_path``, which `make test` installs from Debian
(`make system-deps`). Where no Chromium can be found or started, the tests that use a page
skip and say why. A test that fails leaves a screenshot and the HTML of each of its pages in a
folder that its failure output names.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, Playwright, expect, sync_playwright

# Bounded waits: a selector that never matches fails in seconds, not at pytest's 600 s timeout.
# Generous for a 2-core machine running the suite on every core (the MLflow UI's bundle is
# large); a test that needs longer for one step passes its own timeout to that step.
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 30_000
LAUNCH_TIMEOUT_MS = 60_000
# Where failure screenshots go, when not <repository>/.boltit/browser-failures.
ARTIFACTS_ENV = "BOLTIT_BROWSER_ARTIFACTS"
# The machine's network is closed: without these, Chromium's background connections
# (component updates, sync, QUIC probes) are refused over and over and slow every start.
QUIET_FLAGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


def find_chromium() -> Path | None:
    """The system's Chromium, or None: on PATH, else where Debian's package puts it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.exists() else None


def launch_flags() -> list[str]:
    # Chromium refuses to start its sandbox as root (CI containers); as any other user the
    # sandbox stays on.
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [*QUIET_FLAGS, *(["--no-sandbox"] if as_root else [])]


def launch_failure(error: Error) -> str:
    """Playwright's first line and the end of Chromium's own log (where it says why)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return repr(error)
    said = lines[:1] + [line for line in lines[-3:] if line not in lines[:1]]
    return " | ".join(said)[:600]


# Module scope, not session: while Playwright's sync API runs, its event loop is this thread's
# running loop, and every later test on the worker that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium per test module; skips when there is none."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "no Chromium: `chromium` is not on PATH and /usr/bin/chromium is absent "
            "(`make system-deps` installs Debian's package; it needs root and apt-get)"
        )
    try:
        launched = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=launch_flags(),
            timeout=LAUNCH_TIMEOUT_MS,
        )
    except Error as error:
        pytest.skip(f"Chromium at {chromium} did not start: {launch_failure(error)}")
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in a context of its own (no cookies or storage shared between tests)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def artifacts_root(config: pytest.Config) -> Path:
    # Beside the repository (git ignores .boltit/), not under pytest's basetemp: pytest keeps
    # only its last three basetemps, so another run would delete them before anyone looked.
    chosen = os.environ.get(ARTIFACTS_ENV)
    return Path(chosen) if chosen else config.rootpath / ".boltit" / "browser-failures"


def open_pages(funcargs: dict[str, object]) -> list[Page]:
    """The failed test's pages: its `page`'s context, else every context of its `browser`."""
    page, browser = funcargs.get("page"), funcargs.get("browser")
    if isinstance(page, Page):
        return list(page.context.pages)
    if isinstance(browser, Browser):
        return [each for context in browser.contexts for each in context.pages]
    return []


def save_failure(item: pytest.Item, pages: list[Page]) -> Path:
    """Screenshot, HTML and address of every page the failed test had open."""
    folder = artifacts_root(item.config) / re.sub(r"[^\w.-]+", "_", item.nodeid)[-150:]
    shutil.rmtree(folder, ignore_errors=True)  # only this failure's pages, not an older run's
    folder.mkdir(parents=True, exist_ok=True)
    for index, each in enumerate(pages):
        stem = folder / f"page{index}"
        try:
            each.screenshot(path=f"{stem}.png", full_page=True, timeout=ACTION_TIMEOUT_MS)
            stem.with_suffix(".html").write_text(each.content(), encoding="utf-8")
            stem.with_suffix(".url").write_text(each.url + "\n", encoding="utf-8")
        except Error as error:  # a crashed or closed page: keep what the others give
            stem.with_suffix(".error").write_text(f"{error}\n", encoding="utf-8")
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # In the call phase the test's fixtures are still up, so the pages are what it failed on.
    if report.when == "call" and report.failed:
        pages = open_pages(getattr(item, "funcargs", {}))
        if pages:
            folder = save_failure(item, pages)
            report.sections.append(("browser failure", f"screenshots and HTML saved in {folder}"))
    return report
