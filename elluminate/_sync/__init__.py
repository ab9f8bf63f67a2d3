# DO NOT EDIT: generated from elluminate/_async/__init__.py by scripts/unasync.py; edit the _async original.
"""All client logic, written once for asyncio; ``_sync`` is generated from here."""
