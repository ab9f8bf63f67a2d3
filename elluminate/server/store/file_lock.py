"""One server per SQLite file: an exclusive lock on ``<database>.lock`` for as long as the
server runs (see :class:`FileLock`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


class DatabaseInUseError(RuntimeError):
    """Another server holds the database file (one server per SQLite file)."""


class FileLock:
    """An exclusive advisory lock on ``<database>.lock``, held while the server runs.

    The operating system releases it when the process ends, however it ends (SIGKILL
    included), so a crashed server never leaves a stale lock. The lock file holds the
    owner's process id, for the message a second server shows. (``fcntl``/``msvcrt`` from
    the standard library: twenty lines do not justify a dependency for every SDK user.)
    """

    def __init__(self, path: str, handle: Any) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def acquire(cls, db_path: str) -> FileLock:
        lock_path = str(Path(db_path).expanduser().resolve()) + ".lock"
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            _lock_exclusive(handle)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            who = f" (process {owner})" if owner.isdigit() else ""
            raise DatabaseInUseError(
                f"database file {db_path} is in use by another elluminate server{who}: only one "
                f"server may use a SQLite file at a time (lock file {lock_path}). Stop that "
                "server, or start this one with another --db."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(lock_path, handle)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closing the descriptor releases the lock


def _lock_exclusive(handle: Any) -> None:
    """Take a non-blocking exclusive lock on an open file (OSError when held elsewhere)."""
    if sys.platform == "win32":  # pragma: no cover - not tested on this platform
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
