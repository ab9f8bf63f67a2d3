"""The self-hostable elluminate server (aiohttp.web + SQLite).

``python -m elluminate.server --db ./elluminate.db`` runs it; :func:`create_app` builds the
application for embedding; :class:`LocalServer` runs it in a background thread (tests).
"""

from .app import create_app
from .config import ServerConfig
from .embedded import LocalServer

__all__ = ["LocalServer", "ServerConfig", "create_app"]
