"""``Client``, the blocking client, under the official package's import path."""

from ._defaults import CollectionDefaults, CriterionSetDefaults, LLMConfigDefaults
from ._sync.client import Client

__all__ = ["Client", "CollectionDefaults", "CriterionSetDefaults", "LLMConfigDefaults"]
