"""``AsyncClient``, the asyncio client, under the official package's import path."""

from ._async.client import AsyncClient

__all__ = ["AsyncClient"]
