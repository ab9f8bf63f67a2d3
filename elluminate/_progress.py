"""Optional tqdm progress bar for blocking waits (pure; on by default only interactively)."""

from __future__ import annotations

import os
import sys
from typing import Any


def progress_enabled(requested: bool | None) -> bool:
    """``requested`` if given; else on only for an interactive stderr outside CI with tqdm."""
    if requested is not None:
        return requested
    if os.environ.get("CI") or not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class TaskProgress:
    """Feeds task status payloads into a tqdm bar of rated responses (no-op when disabled)."""

    def __init__(self, description: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=description, unit="response", leave=False)

    def update(self, payload: dict[str, Any]) -> None:
        if self._bar is None:
            return
        total = payload.get("total_responses")
        if total and self._bar.total != total:
            self._bar.total = total
        rated = payload.get("completed_ratings")
        if rated is not None and rated > self._bar.n:
            self._bar.update(rated - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
