"""Fixtures of the browser tests: the distribution's Chromium, headless, driven by selenium,
against one embedded server per module.

Without chromium, chromedriver or selenium the tests are skipped with a message saying what
to install; with ``ELLUMINATE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead, so
CI can never pass them by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elluminate import Client
from elluminate.server import LocalServer

REQUIRE_ENV = "ELLUMINATE_REQUIRE_BROWSER"
#: Chromium as root in a sandbox: no sandbox, no GPU, nothing that phones home.
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1360,1000",
)


def _missing() -> str | None:
    """What is missing to run the browser tests, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return (
            "chromium and chromedriver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (fresh profile) for the module's tests."""
    missing = _missing()
    if missing is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"browser tests cannot run: {missing}; {REQUIRE_ENV} is set, so they must")
        pytest.skip(f"browser tests skipped: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=str(shutil.which("chromedriver")))
    )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One server for the module: echo provider with a small latency, two LLM calls at a
    time, so a run of a few dozen rows lasts long enough to be watched."""
    db = tmp_path_factory.mktemp("viewer") / "viewer.db"
    with LocalServer(db_path=db, llm="echo", echo_latency=0.03, max_concurrency=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(server: LocalServer) -> Iterator[Client]:
    """The SDK's sync client on the module's server (it makes the data the pages show)."""
    with Client(base_url=server.base_url, api_key=server.api_key) as client:
        yield client
