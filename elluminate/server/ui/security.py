"""Response headers of every viewer page, and the CSRF checks.

* **Content-Security-Policy** :data:`CSP`: scripts, styles, images and connections only from
  this server, no inline script or style, no plugins, no framing, forms only to this server.
  Together with Jinja2's autoescaping (every user-supplied string is escaped) an injected
  string can neither run nor restyle the page.
* **CSRF**: every form that changes something (sign-out, cancel, retry-failed) carries the
  session's token (:func:`form_token`), checked in constant time; the sign-in form, which has
  no session yet, uses a double-submit cookie. The session cookie is ``SameSite=Lax`` too.
"""

from __future__ import annotations

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def add_headers(response: web.StreamResponse, *, static: bool = False) -> None:
    """Put the security headers (and the caching rule) on a response not yet sent."""
    if response.prepared:
        return
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    # pages show live data and must not outlive a sign-out in any cache; assets revalidate
    response.headers.setdefault("Cache-Control", "no-cache" if static else "no-store")


async def form_token(request: web.Request) -> str | None:
    """The CSRF token a request sent: the form field, else the header."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached: the handler reads the same form
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return request.headers.get(CSRF_HEADER)
