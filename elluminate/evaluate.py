"""``evaluate()`` under the official package's import path (``aevaluate`` for asyncio code)."""

from ._async.evaluate import aevaluate
from ._sync.evaluate import evaluate, reset_default_client

__all__ = ["aevaluate", "evaluate", "reset_default_client"]
