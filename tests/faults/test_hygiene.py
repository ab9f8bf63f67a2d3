"""Resource hygiene: 1,000 create/use/close cycles of each client leave nothing behind.

After the cycles this process has no more file descriptors (sockets included: the server runs
in this process too, so both ends of every connection are counted), no more threads, and no
"Unclosed client session" / "Unclosed connector" / unclosed-socket ResourceWarning, even
after ``gc.collect()``. A control test shows the same checks do catch a client left open.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from typing import Any

import pytest

from elluminate import AsyncClient, Client

CYCLES = 1000
SLACK = 2  # file descriptors that may come and go on their own (e.g. a server-side accept)


def open_fds() -> tuple[int, int]:
    """(all file descriptors, sockets) of this process."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, already closed
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return fds, sockets


def settle(baseline: tuple[int, int], timeout: float = 3.0) -> tuple[int, int]:
    """The fd counts once the server thread has closed its ends (at most ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        now = open_fds()
        if (now[0] <= baseline[0] + SLACK and now[1] <= baseline[1]) or (
            time.monotonic() > deadline
        ):
            return now
        time.sleep(0.02)


def unclosed(records: list[warnings.WarningMessage], logs: Any) -> list[str]:
    found = [str(w.message) for w in records if issubclass(w.category, ResourceWarning)]
    found += [r.getMessage() for r in logs.records if "Unclosed" in r.getMessage()]
    return found


def report(name: str, **figures: Any) -> None:
    """Print the figures (shown with ``pytest -s`` or on failure)."""
    print(f"\n[hygiene] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def check(name: str, before: tuple[int, int], threads_before: int, **figures: Any) -> None:
    after = settle(before)
    threads_after = threading.active_count()
    report(
        name,
        fds=f"{before[0]}->{after[0]}",
        sockets=f"{before[1]}->{after[1]}",
        threads=f"{threads_before}->{threads_after}",
        **figures,
    )
    assert after[0] <= before[0] + SLACK, f"file descriptors leaked: {before} -> {after}"
    assert after[1] <= before[1], f"sockets leaked: {before} -> {after}"
    assert threads_after <= threads_before, "threads leaked"


async def test_async_client_cycles(server, caplog):
    async def cycle() -> None:
        async with AsyncClient(
            base_url=server.base_url, api_key=server.api_key, skip_version_check=True
        ) as client:
            assert await client.list_prompt_templates() == []

    await cycle()  # warm up (imports, first connections of the server)
    before, threads_before = settle(open_fds(), 0.5), threading.active_count()
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        started = time.perf_counter()
        for _ in range(CYCLES):
            await cycle()
        elapsed = time.perf_counter() - started
        gc.collect()
    check("AsyncClient", before, threads_before, seconds=f"{elapsed:.2f}")
    assert unclosed(records, caplog) == []
    assert elapsed < 20


def test_sync_client_cycles(server, caplog):
    def cycle() -> None:
        with Client(
            base_url=server.base_url, api_key=server.api_key, skip_version_check=True
        ) as client:
            assert client.list_prompt_templates() == []

    cycle()
    before, threads_before = settle(open_fds(), 0.5), threading.active_count()
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        started = time.perf_counter()
        for _ in range(CYCLES):
            cycle()
        elapsed = time.perf_counter() - started
        gc.collect()
    check("Client", before, threads_before, seconds=f"{elapsed:.2f}")
    assert unclosed(records, caplog) == []
    assert elapsed < 20


# ---- controls: the same checks see clients that are not closed -------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_control_an_unclosed_async_client_is_seen(server, caplog):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        client = AsyncClient(
            base_url=server.base_url, api_key=server.api_key, skip_version_check=True
        )
        assert await client.list_prompt_templates() == []
        del client
        gc.collect()
        gc.collect()
    messages = unclosed(records, caplog)
    assert any("Unclosed client session" in m for m in messages), messages


def test_control_open_sync_clients_are_counted(server):
    before = settle(open_fds(), 0.5)
    clients = [
        Client(base_url=server.base_url, api_key=server.api_key, skip_version_check=True)
        for _ in range(5)
    ]
    during = open_fds()
    for client in clients:
        client.close()
    after = settle(before)
    assert during[1] >= before[1] + 5  # one pooled connection each (and the server's ends)
    assert after[1] <= before[1]
