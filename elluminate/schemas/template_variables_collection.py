"""Collections, columns and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._enums import ColumnTypeEnum
from ._requests import (
    CreateCollectionRequest,
    TemplateVariablesCollectionFilter,
    TemplateVariablesCollectionSort,
    UpdateCollectionRequest,
)
from ._wire import (
    CollectionColumn,
    TemplateVariablesCollection,
    TemplateVariablesCollectionWithEntries,
)

__all__ = [
    "CollectionColumn",
    "ColumnTypeEnum",
    "CreateCollectionRequest",
    "TemplateVariablesCollection",
    "TemplateVariablesCollectionFilter",
    "TemplateVariablesCollectionSort",
    "TemplateVariablesCollectionWithEntries",
    "UpdateCollectionRequest",
]
