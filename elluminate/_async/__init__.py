"""All client logic, written once for asyncio; ``_sync`` is generated from here."""
