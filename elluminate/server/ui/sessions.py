"""Sign-in sessions of the web viewer, kept in the server's memory.

A session is created when a project API key signs in. The browser only ever holds the
session id, in an ``HttpOnly``, ``SameSite=Lax`` cookie scoped to the viewer's path; the key
stays here, so every request is authenticated again with the same function the API uses
(a key removed from the database ends its sessions at once).

Sessions live in memory: **they end when the server restarts** (sign in again), after
:data:`IDLE_SECONDS` without a request and :data:`MAX_AGE_SECONDS` after sign-in. At most
:data:`MAX_SESSIONS` exist; beyond that the least recently used one is dropped.

Each session carries its own CSRF token (:attr:`Session.csrf_token`), which every form that
changes something (sign-out, cancel, retry-failed) sends back.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..store.projects import Principal

COOKIE_NAME = "elluminate_session"
#: The sign-in form's CSRF cookie (double submit: there is no session yet).
LOGIN_COOKIE_NAME = "elluminate_signin"
IDLE_SECONDS = 8 * 3600.0
MAX_AGE_SECONDS = 7 * 24 * 3600.0
MAX_SESSIONS = 10_000
MAX_FLASHES = 5


@dataclass
class Session:
    """One signed-in browser."""

    id: str
    api_key: str = field(repr=False)
    principal: Principal
    csrf_token: str = field(repr=False)
    created: float
    last_seen: float
    #: one-time messages shown on the next page (``(kind, text)``, kind ``ok`` or ``error``)
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page."""
        self.flashes = [*self.flashes, (kind, text)][-MAX_FLASHES:]

    def take_flashes(self) -> list[tuple[str, str]]:
        """The queued messages (each is shown once)."""
        taken, self.flashes = self.flashes, []
        return taken

    def csrf_ok(self, token: str | None) -> bool:
        """True if ``token`` is this session's CSRF token (constant-time compare)."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token)


class SessionStore:
    """The sessions of one server (in memory; see the module docstring)."""

    def __init__(
        self,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, api_key: str, principal: Principal) -> Session:
        """A new session (a new random id: an id from before sign-in is never reused)."""
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            api_key=api_key,
            principal=principal,
            csrf_token=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle time restarts), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if (
            now - session.last_seen > self.idle_seconds
            or now - session.created > self.max_age_seconds
        ):
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str | None) -> None:
        """End a session (sign-out); unknown ids are ignored."""
        if session_id:
            self._sessions.pop(session_id, None)


def new_token() -> str:
    """A random token (the sign-in form's CSRF value)."""
    return secrets.token_urlsafe(32)
