"""The only hand-written per-side I/O: ``aiohttp.AsyncTransport`` and ``requests.Transport``.

Both expose the same tiny interface: ``send(...)`` (one attempt, no retries),
``stream_lines(...)`` and ``close()``. Retries, errors and decoding live in ``_async``.
"""

from ._base import RawResponse, encode_multipart, encode_params

__all__ = ["RawResponse", "encode_multipart", "encode_params"]
